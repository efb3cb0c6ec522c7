"""OCPP 2.0.1 spelt out: the station's events and questions as 2.0.1 messages, and 2.0.1 answers as domain values.

The core decides what to send and when; here a transaction is TransactionEvent Started / Updated / Ended with the
station's own transactionId (its local id), a seqNo per transaction numbered as the message is queued (inside the
same store transaction, so a kill never leaves a gap or a repeat) and the offline flag of a message made while the
link was down. Statuses are per EVSE and connector; the station as a whole has no StatusNotification in 2.0.1.
"""

from __future__ import annotations

import math
import sqlite3
from datetime import datetime
from typing import TYPE_CHECKING, Any

from controller.clock import iso_utc
from controller.domain.events import (
    ChargingStateChanged,
    LimitChanged,
    ReservationEnded,
    StatusChanged,
    Transaction,
)
from controller.domain.faults import Fault
from controller.domain.types import (
    AuthDecision,
    AuthSource,
    ChargingState,
    EvseStatus,
    IdToken,
    PowerLimit,
    StopReason,
    TriggerReason,
)
from controller.evse.machine import Evse
from controller.evse.port import VehicleStatus
from controller.ocpp import device_model as dm
from controller.ocpp.adapter import Message, SessionEdge, SharedSpelling, firmware_version
from controller.ocpp.firmware_request import FirmwareRequest, FwStatus
from controller.ocpp.queue import START, STOP, UPDATE, TxMessage
from controller.ocpp.sampling import BEGIN, CLOCK, END, TRIGGER, MeterValue, meter_value
from controller.ocpp.smart_charging import NOMINAL_VOLTS
from controller.ocpp.v201.codes import (
    CONNECTOR_STATUS,
    FAULT_COMPONENTS,
    RULES,
    STOPPED_REASONS,
    auth_status,
    token_type,
)
from controller.ocpp.v201.handlers import StationChargePoint201
from controller.ocpp.v201.txpoints import TxPoints
from controller.storage import Store, StoredMessage, StoredTransaction

if TYPE_CHECKING:
    from controller.ocpp.client import OcppClient

#: The connector of each EVSE: this station has one per EVSE.
CONNECTOR = 1
#: A confirmed start: 2.0.1 gives a transaction no CSMS id, the station's own is the id.
CONFIRMED = 0


class Ocpp201Adapter(SharedSpelling):
    """OCPP 2.0.1 for one client."""

    version = "2.0.1"
    subprotocol = "ocpp2.0.1"
    rules = RULES

    def __init__(self, client: OcppClient) -> None:
        self.client = client
        #: What the next BootNotification says caused it (PowerUp, RemoteReset, ...).
        cause = client.take_boot_cause() or ""
        self.boot_reason = "FirmwareUpdate" if cause == "firmware" or client.firmware.switched() else {
            "reset": "RemoteReset", "scheduled_reset": "ScheduledReset"}.get(cause, "PowerUp")
        self._faults: dict[int, Fault | None] = {}
        self._first_connection = True
        self._event_ids = 0
        self.points = TxPoints(self)
        #: Each EVSE's offer limit as last told (amps per phase at 230 V; inf: none), for ChargingRateChanged.
        self._rates: dict[int, float] = {}

    def connection(self, ws: Any) -> StationChargePoint201:
        """The 2.0.1 handlers of one websocket connection."""
        cp = StationChargePoint201(self.client.cp_id, ws, self.client.commands, self.client.model)
        cp.setup(self.client.network.active.message_timeout, self.client.silenced)
        return cp

    def stamp(self, db: sqlite3.Connection, local_id: str, role: str, payload: dict[str, Any]) -> dict[str, Any]:
        """Number a transaction's event as it is queued (0, 1, 2, ... per transaction)."""
        key = f"v201.seqNo.{local_id}"
        stamped = {**payload, "seqNo": Store.take_number(db, key)}
        if role == STOP:
            Store.drop_setting(db, key)
        return stamped

    def diagnostics_status(self) -> Message:
        """2.0.1's diagnostics status is LogStatusNotification."""
        return self.log_status()

    @staticmethod
    def firmware_status_of(status: FwStatus, request: FirmwareRequest) -> Message:
        """FirmwareStatusNotification of an update's state, with its requestId."""
        payload: dict[str, Any] = {"status": status.value}
        if status != FwStatus.IDLE and request.request_id is not None:
            payload["requestId"] = request.request_id
        return "FirmwareStatusNotification", payload

    def firmware_status(self, *, signed: bool = False) -> Message:
        """FirmwareStatusNotification of the moment, for TriggerMessage (Idle with no update under way)."""
        firmware = self.client.firmware
        if firmware.current is None or firmware.status == FwStatus.IDLE:
            return "FirmwareStatusNotification", {"status": "Idle"}
        return self.firmware_status_of(firmware.status, firmware.current)

    # ------------------------------------------------------------------ boot

    def boot(self) -> Message:
        """BootNotification with the reason and what the station knows of itself."""
        station = self.client.config.station
        info: dict[str, Any] = {"model": station.model[:20], "vendorName": station.vendor[:50],
                                "firmwareVersion": firmware_version()[:50]}
        if station.serial_number:
            info["serialNumber"] = station.serial_number[:25]
        return "BootNotification", {"chargingStation": info, "reason": self.boot_reason}

    def booted(self) -> None:
        """After each accepted boot. The first of a run is a security event (StartupOfTheDevice, or ResetOrReboot
        after a CSMS reset). The faults' NotifyEvents start over: every status follows, and each fault still
        present is told again (one that came and went while offline is not)."""
        self._faults.clear()
        if self._first_connection:
            self._first_connection = False
            self.client.security_event("StartupOfTheDevice" if self.boot_reason == "PowerUp" else "ResetOrReboot")

    @staticmethod
    def reservation_ended(event: ReservationEnded) -> Message:
        """ReservationStatusUpdate: a reservation ran out unused (Expired) or the station removed it (Removed)."""
        return "ReservationStatusUpdate", {"reservationId": event.reservation_id,
                                           "reservationUpdateStatus": "Expired" if event.expired else "Removed"}

    #: The security event of a CertificateSigned the station refuses.
    invalid_station_certificate = "InvalidChargingStationCertificate"

    @staticmethod
    def sign_certificate(csr: str) -> Message:
        """SignCertificate of a new station certificate (A02/A03)."""
        return "SignCertificate", {"csr": csr, "certificateType": "ChargingStationCertificate"}

    def status(self, event: StatusChanged) -> Message | None:
        """StatusNotification of an EVSE's connector (None for the station: 2.0.1 has no such report)."""
        if event.evse_id == 0:
            return None
        return "StatusNotification", {"timestamp": iso_utc(self.client.clock.utcnow()),
                                      "connectorStatus": CONNECTOR_STATUS[event.status], "evseId": event.evse_id,
                                      "connectorId": CONNECTOR}

    def notices(self, event: StatusChanged) -> list[Message]:
        """NotifyEvent for a fault an EVSE starts or stops reporting (2.0.1 reports faults apart from statuses)."""
        before = self._faults.get(event.evse_id)
        if event.fault == before or event.evse_id == 0:
            return []
        self._faults[event.evse_id] = event.fault
        messages = []
        for fault, cleared in ((before, True), (event.fault, False)):
            if fault is None:
                continue
            component, variable = FAULT_COMPONENTS[fault]
            self._event_ids += 1
            data: dict[str, Any] = {
                "eventId": self._event_ids, "timestamp": iso_utc(self.client.clock.utcnow()), "trigger": "Alerting",
                "actualValue": "false" if cleared else "true", "eventNotificationType": "HardWiredNotification",
                "component": {"name": component, "evse": {"id": event.evse_id, "connectorId": CONNECTOR}},
                "variable": {"name": variable}, "techCode": fault.info.code[:50]}
            if cleared:
                data["cleared"] = True
            elif event.detail:
                data["techInfo"] = event.detail[:500]
            messages.append(("NotifyEvent", {"generatedAt": data["timestamp"], "seqNo": 0, "eventData": [data]}))
        return messages

    # -------------------------------------------------------- authorisation

    @staticmethod
    def id_token(token: IdToken) -> dict[str, Any]:
        """An IdTokenType."""
        return {"idToken": token.value, "type": token.type.value}

    def authorize(self, token: IdToken) -> Message:
        """Authorize."""
        return "Authorize", {"idToken": self.id_token(token)}

    def authorize_answer(self, result: dict[str, Any]) -> AuthDecision:
        """Authorize's idTokenInfo as the station's decision."""
        return self.decision(result["idTokenInfo"])

    def decision(self, info: dict[str, Any], source: AuthSource = AuthSource.CSMS) -> AuthDecision:
        """An IdTokenInfoType as the station's decision."""
        group = info.get("groupIdToken")
        return AuthDecision(auth_status(info.get("status")), source,
                            IdToken(group["idToken"], token_type(group.get("type"))) if group else None,
                            self._expiry(info.get("cacheExpiryDateTime")))

    # --------------------------------------------------------- transactions

    def event_payload(self, kind: str, at: datetime | str, trigger: TriggerReason | str, evse_id: int,
                      local_id: str, info: dict[str, Any]) -> dict[str, Any]:
        """A TransactionEvent's payload (its seqNo comes as it is queued)."""
        payload: dict[str, Any] = {
            "eventType": kind, "timestamp": at if isinstance(at, str) else iso_utc(at),
            "triggerReason": str(trigger), "transactionInfo": {"transactionId": local_id, **info},
            "evse": {"id": evse_id, "connectorId": CONNECTOR}}
        self.mark_offline(payload)
        return payload

    def mark_offline(self, payload: dict[str, Any]) -> None:
        """Flag an event made while the link is down (the CSMS learns it late)."""
        payload.pop("offline", None)
        if not self.client.connected.is_set():
            payload["offline"] = True

    @staticmethod
    def stopped_reason(reason: StopReason) -> str:
        """A stoppedReason."""
        return STOPPED_REASONS[reason]

    def start(self, tx: Transaction) -> TxMessage:
        """TransactionEvent Started and the transaction's row, or an Updated of the transaction a start point
        opened before."""
        info: dict[str, Any] = {"chargingState": ChargingState.EV_CONNECTED.value}
        if tx.remote_start_id is not None:
            info["remoteStartId"] = tx.remote_start_id
        payload = self.event_payload("Started", tx.started_at, tx.trigger, tx.evse_id, tx.local_id, info)
        payload["idToken"] = self.id_token(tx.id_token)
        if tx.reservation_id is not None:
            payload["reservationId"] = tx.reservation_id
        evse = self.client.station.evses[tx.evse_id]
        started = self.client.model.items(dm.TX_STARTED_MEASURANDS)
        if tx.start_reading is not None and started:
            value = meter_value(tx.start_reading, tx.started_at, evse.phases, started, BEGIN)
            payload["meterValue"] = [self.sampled(value)]
        at = iso_utc(tx.started_at)
        stored = StoredTransaction(tx.local_id, tx.evse_id, tx.id_token.value, tx.meter_start_wh, at, None,
                                   tx.meter_start_wh, at, True)
        return self.points.session_started(tx, TxMessage(START, tx.local_id, "TransactionEvent", payload,
                                                         tx.meter_start_wh, at, stored))

    def sample(self, evse_id: int, value: MeterValue) -> Message:
        """TransactionEvent Updated with the sample (periodic or clock-aligned)."""
        tx = self.client.station.evses[evse_id].transaction
        assert tx is not None
        clock = any(s.context == CLOCK for s in value.samples)
        trigger = TriggerReason.METER_VALUE_CLOCK if clock else TriggerReason.METER_VALUE_PERIODIC
        payload = self.event_payload("Updated", value.at, trigger, evse_id, tx.local_id, {})
        payload["meterValue"] = [self.sampled(value)]
        return "TransactionEvent", payload

    def charging_state(self, event: ChargingStateChanged) -> Message | None:
        """TransactionEvent Updated (ChargingStateChanged) as energy starts, pauses or stops in a transaction."""
        tx = self.client.station.evses[event.evse_id].transaction
        if tx is None:
            return None
        return "TransactionEvent", self.event_payload("Updated", self.client.clock.utcnow(),
                                               TriggerReason.CHARGING_STATE_CHANGED, event.evse_id, tx.local_id,
                                               {"chargingState": event.state.value})

    def rate_changed(self, event: LimitChanged) -> Message | None:
        """TransactionEvent Updated (ChargingRateChanged) when a transaction's offer limit moved by more than
        SmartChargingCtrlr.LimitChangeSignificance (a fraction) from the last one told (or the one it began with)."""
        evse = self.client.station.evses[event.evse_id]
        now = _comparable(event.limit, evse.phases)
        told = self._rates.get(event.evse_id)
        if evse.transaction is None or told is None:
            self._rates[event.evse_id] = now
            return None
        significance = float(self.client.model.get(dm.LIMIT_CHANGE_SIGNIFICANCE))
        if now == told or (math.isfinite(now) and math.isfinite(told) and abs(now - told) <= significance * told):
            return None
        self._rates[event.evse_id] = now
        return "TransactionEvent", self.event_payload("Updated", self.client.clock.utcnow(),
                                               TriggerReason.CHARGING_RATE_CHANGED, event.evse_id,
                                               evse.transaction.local_id, {})

    def idle_sample(self, evse_id: int, value: MeterValue) -> Message:
        """MeterValues outside any transaction."""
        return "MeterValues", {"evseId": evse_id, "meterValue": [self.sampled(value)]}

    def stop(self, tx: Transaction, aligned: list[MeterValue]) -> TxMessage:
        """TransactionEvent Ended, with SampledDataCtrlr.TxEndedMeasurands and the aligned values taken between
        (an Updated instead when TxStopPoint keeps the transaction open until the cable leaves)."""
        assert tx.stopped_at is not None and tx.stop_reason is not None and tx.meter_stop_wh is not None
        trigger = tx.stop_trigger or _trigger_for(tx.stop_reason)
        # Idle only once the cable is out; a stop with the car still connected leaves it EVConnected.
        connected = self.client.station.evses[tx.evse_id].vehicle not in (VehicleStatus.ABSENT, VehicleStatus.UNKNOWN)
        state = ChargingState.EV_CONNECTED if connected else ChargingState.IDLE
        payload = self.event_payload("Ended", tx.stopped_at, trigger, tx.evse_id, tx.local_id,
                              {"stoppedReason": STOPPED_REASONS[tx.stop_reason], "chargingState": state.value})
        if tx.stop_id_token is not None:
            payload["idToken"] = self.id_token(tx.stop_id_token)
        phases = self.client.station.evses[tx.evse_id].phases
        sampled = self.client.model.items(dm.TX_ENDED_MEASURANDS) or ["Energy.Active.Import.Register"]
        data = []
        if tx.start_reading is not None:
            data.append(meter_value(tx.start_reading, tx.started_at, phases, sampled, BEGIN))
        data.extend(aligned)
        if tx.stop_reading is not None:
            data.append(meter_value(tx.stop_reading, tx.stopped_at, phases, sampled, END))
        data = [v for v in data if v.samples]
        if data:
            payload["meterValue"] = [self.sampled(v) for v in data]
        return self.points.session_ended(tx, TxMessage(STOP, tx.local_id, "TransactionEvent", payload,
                                                       tx.meter_stop_wh, iso_utc(tx.stopped_at)))

    def around(self, event: SessionEdge) -> list[TxMessage]:
        """Events of a transaction that TxStartPoint / TxStopPoint open or close outside a charging session."""
        return self.points.around(event)

    def end_open(self, reason: StopReason, trigger: TriggerReason) -> list[TxMessage]:
        """The Ended events of transactions open outside a charging session, for a reset."""
        return self.points.end_open(reason, trigger)

    def power_loss(self, tx: StoredTransaction) -> Message:
        """The Ended event of a transaction a dead process left open: its last persisted reading."""
        payload = self.event_payload("Ended", tx.last_at, TriggerReason.ABNORMAL_CONDITION, tx.connector_id,
                                     tx.local_id, {"stoppedReason": STOPPED_REASONS[StopReason.POWER_LOSS]})
        payload["offline"] = True
        payload["meterValue"] = [{"timestamp": tx.last_at, "sampledValue": [
            {"value": tx.last_wh, "context": END, "measurand": "Energy.Active.Import.Register",
             "unitOfMeasure": {"unit": "Wh"}}]}]
        return "TransactionEvent", payload

    @staticmethod
    def queued(message: StoredMessage) -> dict[str, Any]:
        """A queued event goes out as it was made (its id and seqNo are in it already)."""
        return dict(message.payload)

    def queued_answer(self, message: StoredMessage, result: dict[str, Any]) -> tuple[
            int | None, IdToken | None, AuthDecision | None]:
        """(a start's confirmation, the idToken and the idTokenInfo's decision) from an event's answer."""
        info = result.get("idTokenInfo")
        decision = self.decision(info) if info else None
        token_data = message.payload.get("idToken")
        token = IdToken(token_data["idToken"], token_type(token_data.get("type"))) if token_data else None
        return (CONFIRMED if message.role == START else None), token, decision

    def triggered_event(self, evse: Evse) -> TxMessage:
        """TransactionEvent Updated (triggerReason Trigger) of the EVSE's transaction, with its chargingState and
        the TxUpdatedMeasurands of the moment."""
        tx = evse.transaction
        assert tx is not None
        now = self.client.clock.utcnow()
        info = {"chargingState": _charging_state(evse).value}
        payload = self.event_payload("Updated", now, TriggerReason.TRIGGER, evse.id, tx.local_id, info)
        wh = tx.meter_start_wh
        if evse.reading is not None:
            wh = round(evse.reading.energy_wh)
            value = meter_value(evse.reading, now, evse.phases, self.client.model.items(dm.TX_UPDATED_MEASURANDS),
                                TRIGGER)
            payload["meterValue"] = [self.sampled(value)]
        return TxMessage(UPDATE, tx.local_id, "TransactionEvent", payload, wh, iso_utc(now))

    def triggered_sample(self, evse: Evse) -> Message:
        """MeterValues for TriggerMessage (context Trigger)."""
        assert evse.reading is not None
        value = meter_value(evse.reading, self.client.clock.utcnow(), evse.phases,
                            self.client.model.items(dm.TX_UPDATED_MEASURANDS), TRIGGER)
        return "MeterValues", {"evseId": evse.id, "meterValue": [self.sampled(value)]}

    @staticmethod
    def sampled(value: MeterValue) -> dict[str, Any]:
        """A MeterValueType."""
        samples = []
        for s in value.samples:
            entry: dict[str, Any] = {"value": round(s.value, s.decimals) if s.decimals else round(s.value),
                                     "context": s.context, "measurand": s.measurand,
                                     "unitOfMeasure": {"unit": s.unit}}
            if s.phase is not None:
                entry["phase"] = s.phase
            if s.location is not None:
                entry["location"] = s.location
            samples.append(entry)
        return {"timestamp": iso_utc(value.at), "sampledValue": samples}


def _trigger_for(reason: StopReason) -> TriggerReason:
    """The triggerReason of an Ended event the EVSE gave no trigger for."""
    return {StopReason.EV_DISCONNECTED: TriggerReason.EV_DEPARTED, StopReason.REMOTE: TriggerReason.REMOTE_STOP,
            StopReason.LOCAL: TriggerReason.STOP_AUTHORIZED, StopReason.UNLOCK_COMMAND: TriggerReason.UNLOCK_COMMAND,
            StopReason.DE_AUTHORIZED: TriggerReason.DEAUTHORIZED}.get(reason, TriggerReason.ABNORMAL_CONDITION)


def _charging_state(evse: Evse) -> ChargingState:
    """An EVSE's chargingState now."""
    by_status = {EvseStatus.CHARGING: ChargingState.CHARGING, EvseStatus.SUSPENDED_EV: ChargingState.SUSPENDED_EV,
                 EvseStatus.SUSPENDED_EVSE: ChargingState.SUSPENDED_EVSE}
    if evse.status in by_status:
        return by_status[evse.status]
    return ChargingState.EV_CONNECTED if evse.vehicle.plugged else ChargingState.IDLE


def _comparable(limit: PowerLimit, phases: int) -> float:
    """A limit as amps per phase at the nominal 230 V (DC: watts / 230), so amps and watts limits compare."""
    amps = limit.amps_at(NOMINAL_VOLTS, phases or 1)
    return math.inf if amps is None else amps
