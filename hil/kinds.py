"""The fault kinds the bench can inject, shared by the script language and the simulated hardware."""

FAULT_KINDS = ("short", "adc", "diode", "rcm", "rcmdead", "weld", "stuck", "lock", "meter", "overcurrent", "temp",
               "pp", "reader", "insulation", "evsilent", "overvoltage", "estop", "cc1", "psu")
#: The kinds only a DC connector has.
DC_FAULT_KINDS = ("insulation", "evsilent", "overvoltage", "estop", "cc1", "psu")
#: The kinds only an AC connector has.
AC_FAULT_KINDS = ("short", "adc", "diode", "rcm", "rcmdead", "overcurrent", "pp")
