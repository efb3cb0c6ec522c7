"""OCPP 2.0.1: the adapter, its handlers and its spellings."""
