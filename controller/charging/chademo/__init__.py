"""CHAdeMO (IEEE 2030.1.1) charger side: frame layouts and the session sequence."""
