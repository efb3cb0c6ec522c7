"""GB/T 27930-2015 charger side: frame layouts and the session sequence."""
