"""OCPP 1.6J: the messages, keys and codes of that version, spelt here and nowhere else."""
