"""The rules a transaction follows that the CSMS may change (1.6 keys, 2.0.1 TxCtrlr variables)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class TransactionPolicy:
    """How an EVSE treats its transactions; the OCPP core keeps it in step with the device model."""

    #: Seconds an authorisation waits for a cable before it is dropped (ConnectionTimeOut / EVConnectionTimeOut).
    connection_timeout: float = 60.0
    #: End the transaction when the cable is pulled at the vehicle; false keeps it open (SuspendedEV).
    stop_on_ev_disconnect: bool = True
    #: Unlock a socket's cable when it is pulled at the vehicle; false keeps it with the station.
    unlock_on_ev_disconnect: bool = True
