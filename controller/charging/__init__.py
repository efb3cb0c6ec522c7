"""Charging protocols behind the EVSE's port: IEC 61851 on the AC pilot (CHAdeMO and GB/T come next)."""
