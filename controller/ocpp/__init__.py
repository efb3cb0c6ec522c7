"""OCPP: the station's side of the CSMS link (1.6J now; 2.0.1 joins as a second adapter)."""
