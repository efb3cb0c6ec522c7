"""The fault kinds the bench can inject, shared by the script language and the simulated hardware."""

FAULT_KINDS = ("short", "adc", "diode", "rcm", "rcmdead", "weld", "stuck", "lock", "meter", "overcurrent", "temp",
               "pp", "reader")
