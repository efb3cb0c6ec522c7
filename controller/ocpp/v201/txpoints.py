"""TxStartPoint and TxStopPoint: where a 2.0.1 transaction begins and ends around the station's charging session.

The core's transaction is the charging session: it runs while a vehicle is both connected and authorised (2.0.1's
PowerPathClosed) and ends when either stops. TxCtrlr lets the CSMS move the edges. A start point of EVConnected
or Authorized opens the transaction at the first of them (Started at the plug or the tap) and the session that
follows is an Updated event of it, with the same transactionId (the EVSE is told the id, so RequestStop,
GetTransactionStatus and the queue's record all know one). A stop point without Authorized or PowerPathClosed
(only EVConnected) keeps it open after a stop tap until the cable leaves. Each point is read as it applies, so
a SetVariables changes the next transaction, never one that runs.

Everything goes through the queue like the session's own events: numbered, durable, and ended as PowerLoss by
the next start when the process dies in between.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from controller.clock import iso_utc
from controller.domain.events import AuthorizationWithdrawn, Authorized, Transaction, VehicleConnected
from controller.domain.types import ChargingState, StopReason, TriggerReason
from controller.ocpp import device_model as dm
from controller.ocpp.adapter import SessionEdge
from controller.ocpp.queue import START, STOP, UPDATE, TxMessage
from controller.ocpp.sampling import BEGIN, meter_value
from controller.storage import StoredTransaction

if TYPE_CHECKING:
    from controller.ocpp.v201.adapter import Ocpp201Adapter

EV_CONNECTED, AUTHORIZED, POWER_PATH_CLOSED = dm.TX_POINTS
#: Stops that end the transaction whatever TxStopPoint says: the station restarts or loses power right after.
_FINAL = frozenset({StopReason.HARD_RESET, StopReason.SOFT_RESET, StopReason.IMMEDIATE_RESET, StopReason.REBOOT,
                    StopReason.POWER_LOSS})


@dataclass
class Opened:
    """A 2.0.1 transaction that runs on an EVSE."""

    tx_id: str
    #: The start point that opened it.
    by: str
    #: Its idToken went out already.
    token_sent: bool
    #: The Ended event, made when the session ended, held until the cable leaves (TxStopPoint EVConnected).
    held_end: dict[str, Any] | None = None


class TxPoints:
    """The 2.0.1 transaction of each EVSE, opened and closed at the configured points."""

    def __init__(self, adapter: Ocpp201Adapter) -> None:
        self.adapter = adapter
        self.opened: dict[int, Opened] = {}

    def _points(self, ref: dm.Ref) -> set[str]:
        return set(self.adapter.client.model.items(ref))

    # ---------------------------------------------------- outside a session

    def around(self, event: SessionEdge) -> list[TxMessage]:
        """A plug, a tap, a withdrawn authorisation or a departure: the events it makes, if any."""
        evse = self.adapter.client.station.evses[event.evse_id]
        now = self.adapter.client.clock.utcnow()
        opened = self.opened.get(event.evse_id)
        if isinstance(event, VehicleConnected | Authorized):
            start = self._points(dm.TX_START_POINT)
            if opened is not None:
                return []  # the session that follows is an event of it
            if isinstance(event, VehicleConnected) and EV_CONNECTED in start and evse.session is None:
                return [self._open(evse.id, EV_CONNECTED, TriggerReason.CABLE_PLUGGED_IN, ChargingState.EV_CONNECTED)]
            if isinstance(event, Authorized) and AUTHORIZED in start and not evse.vehicle.plugged:
                # With the cable in, the session starts at once and its Started says Authorized.
                session = evse.session
                assert session is not None
                return [self._open(evse.id, AUTHORIZED, session.trigger, ChargingState.IDLE)]
            return []
        if opened is None or evse.transaction is not None:
            return []  # nothing opened early, or a session still runs (its end comes next)
        if isinstance(event, AuthorizationWithdrawn):
            if opened.by != AUTHORIZED:
                return []  # opened by the cable: it lasts until the cable leaves
            return [self._close(evse.id, now, event.trigger, event.reason, ChargingState.IDLE)]
        # The cable left.
        if opened.held_end is not None:
            payload = dict(opened.held_end, timestamp=iso_utc(now), triggerReason=str(TriggerReason.EV_DEPARTED))
            payload["transactionInfo"] = dict(payload["transactionInfo"], chargingState=ChargingState.IDLE.value)
            self.adapter.mark_offline(payload)
            del self.opened[evse.id]
            return [self._message(STOP, opened.tx_id, payload, iso_utc(now))]
        return [self._close(evse.id, now, TriggerReason.EV_DEPARTED, StopReason.EV_DISCONNECTED, ChargingState.IDLE)]

    def end_open(self, reason: StopReason, trigger: TriggerReason) -> list[TxMessage]:
        """End every transaction open outside a charging session (a reset: the process restarts next)."""
        now, ended = self.adapter.client.clock.utcnow(), []
        for evse_id, opened in list(self.opened.items()):
            evse = self.adapter.client.station.evses[evse_id]
            if evse.transaction is not None:
                continue  # its session ends it
            if opened.held_end is None:
                state = ChargingState.EV_CONNECTED if evse.vehicle.plugged else ChargingState.IDLE
                ended.append(self._close(evse_id, now, trigger, reason, state))
                continue
            payload = dict(opened.held_end, timestamp=iso_utc(now), triggerReason=str(trigger))
            payload["transactionInfo"] = dict(payload["transactionInfo"],
                                              stoppedReason=self.adapter.stopped_reason(reason))
            self.adapter.mark_offline(payload)
            del self.opened[evse_id]
            ended.append(self._message(STOP, opened.tx_id, payload, iso_utc(now)))
        return ended

    def _open(self, evse_id: int, by: str, trigger: TriggerReason, state: ChargingState) -> TxMessage:
        adapter, evse = self.adapter, self.adapter.client.station.evses[evse_id]
        tx_id = uuid.uuid4().hex
        evse.next_transaction_id = tx_id  # the session that follows is this transaction
        at = adapter.client.clock.utcnow()
        info: dict[str, Any] = {"chargingState": state.value}
        session = evse.session if by == AUTHORIZED else None
        if session is not None and session.remote_start_id is not None:
            info["remoteStartId"] = session.remote_start_id
        payload = adapter.event_payload("Started", at, trigger, evse_id, tx_id, info)
        if session is not None:
            payload["idToken"] = adapter.id_token(session.id_token)
            if session.reservation_id is not None:
                payload["reservationId"] = session.reservation_id
        started = adapter.client.model.items(dm.TX_STARTED_MEASURANDS)
        if evse.reading is not None and started:
            value = meter_value(evse.reading, at, evse.phases, started, BEGIN)
            if value.samples:
                payload["meterValue"] = [adapter.sampled(value)]
        wh = round(evse.reading.energy_wh) if evse.reading is not None else 0
        record = StoredTransaction(tx_id, evse_id, session.id_token.value if session else "", wh, iso_utc(at), None,
                                   wh, iso_utc(at), True)
        self.opened[evse_id] = Opened(tx_id, by, token_sent=session is not None)
        return TxMessage(START, tx_id, "TransactionEvent", payload, wh, iso_utc(at), record)

    def _close(self, evse_id: int, at: Any, trigger: TriggerReason, reason: StopReason,
               state: ChargingState) -> TxMessage:
        adapter, evse = self.adapter, self.adapter.client.station.evses[evse_id]
        opened = self.opened.pop(evse_id)
        evse.next_transaction_id = None
        payload = adapter.event_payload("Ended", at, trigger, evse_id, opened.tx_id,
                                        {"stoppedReason": adapter.stopped_reason(reason), "chargingState": state.value})
        return self._message(STOP, opened.tx_id, payload, iso_utc(at))

    def _message(self, role: str, tx_id: str, payload: dict[str, Any], at: str) -> TxMessage:
        evse = self.adapter.client.station.evses[payload["evse"]["id"]]
        wh = round(evse.reading.energy_wh) if evse.reading is not None else 0
        return TxMessage(role, tx_id, "TransactionEvent", payload, wh, at)

    # ------------------------------------------------------- the session

    def session_started(self, tx: Transaction, started: TxMessage) -> TxMessage:
        """The charging session began: its Started event, or an Updated of the transaction opened before."""
        opened = self.opened.get(tx.evse_id)
        if opened is None:
            self.opened[tx.evse_id] = Opened(tx.local_id, POWER_PATH_CLOSED, token_sent=True)
            return started
        payload = dict(started.payload, eventType="Updated")
        payload.pop("meterValue", None)  # the Started event had TxStartedMeasurands
        if opened.by == AUTHORIZED:
            payload["triggerReason"] = str(TriggerReason.CABLE_PLUGGED_IN)
        if opened.token_sent:
            payload.pop("idToken", None)
        opened.token_sent = True
        return TxMessage(UPDATE, tx.local_id, started.action, payload, started.wh, started.at)

    def session_ended(self, tx: Transaction, ended: TxMessage) -> TxMessage:
        """The charging session ended: the transaction's Ended, or (stop point EVConnected only, cable still in)
        an Updated that says why, the Ended held until the cable leaves."""
        opened = self.opened.get(tx.evse_id)
        evse = self.adapter.client.station.evses[tx.evse_id]
        stop = self._points(dm.TX_STOP_POINT)
        if opened is None or not evse.vehicle.plugged or AUTHORIZED in stop or POWER_PATH_CLOSED in stop \
                or tx.stop_reason in _FINAL:
            self.opened.pop(tx.evse_id, None)
            return ended
        opened.held_end = ended.payload
        payload = dict(ended.payload, eventType="Updated")
        info = dict(payload["transactionInfo"])
        info.pop("stoppedReason", None)
        payload["transactionInfo"] = info
        payload.pop("meterValue", None)  # they go with the Ended event
        return TxMessage(UPDATE, tx.local_id, ended.action, payload, ended.wh, ended.at)
