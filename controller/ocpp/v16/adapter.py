"""OCPP 1.6J spelt out: the station's events and questions as 1.6 messages, and 1.6 answers as domain values.

The version-neutral core (:mod:`controller.ocpp.client`) decides what to send and when; this adapter says how
1.6 writes it (wire JSON, OCPP's own field names) and what a 1.6 answer means.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from controller.clock import iso_utc
from controller.domain.events import StatusChanged, Transaction
from controller.domain.types import AuthDecision, AuthSource, IdToken, StopReason
from controller.evse.machine import Evse
from controller.ocpp import device_model as dm
from controller.ocpp.adapter import Message, SharedSpelling, firmware_version
from controller.ocpp.diagnostics import Upload
from controller.ocpp.firmware_request import FirmwareRequest, FwStatus
from controller.ocpp.queue import START, STOP, TxMessage
from controller.ocpp.sampling import BEGIN, END, TRIGGER, MeterValue, meter_value
from controller.ocpp.v16.codes import (
    CSMS_TOKEN,
    ERROR_CODES,
    PLAIN_FIRMWARE,
    PLAIN_SO_FAR,
    REASONS,
    RULES,
    auth_status,
)
from controller.ocpp.v16.handlers import StationChargePoint
from controller.ocpp.v16.keys import ConfigurationKeys
from controller.storage import StoredMessage, StoredTransaction

if TYPE_CHECKING:
    from controller.ocpp.client import OcppClient




class Ocpp16Adapter(SharedSpelling):
    """OCPP 1.6J for one client."""

    version = "1.6"
    subprotocol = "ocpp1.6"
    rules = RULES

    #: The security event of a CertificateSigned the station refuses (the whitepaper's name).
    invalid_station_certificate = "InvalidChargePointCertificate"

    def __init__(self, client: OcppClient) -> None:
        self.client = client
        #: What started this run (a CSMS reset or a power-up), for the whitepaper's first security event.
        self._reset = client.take_boot_cause() is not None
        self._first_connection = True
        self.keys = ConfigurationKeys(client.model, {"SecurityProfile": lambda value: client.security.raise_profile(
            value)})

    def booted(self) -> None:
        """After each accepted boot: the first of a run is the whitepaper's StartupOfTheDevice (ResetOrReboot
        after a CSMS reset) security event."""
        if self._first_connection:
            self._first_connection = False
            self.client.security_event("ResetOrReboot" if self._reset else "StartupOfTheDevice")

    @staticmethod
    def sign_certificate(csr: str) -> Message:
        """SignCertificate (the security whitepaper's A02/A03)."""
        return "SignCertificate", {"csr": csr}

    def connection(self, ws: Any) -> StationChargePoint:
        """The 1.6 handlers of one websocket connection."""
        cp = StationChargePoint(self.client.cp_id, ws, self.client.commands, self.keys)
        cp.setup(self.client.network.active.message_timeout, self.client.silenced)
        return cp

    def diagnostics_status(self) -> Message:
        """DiagnosticsStatusNotification of the moment: Uploading while a GetDiagnostics upload runs, else Idle."""
        diagnostics = self.client.diagnostics
        uploading = diagnostics.state == Upload.UPLOADING and diagnostics.current is not None \
            and diagnostics.current.request_id is None
        return "DiagnosticsStatusNotification", {"status": "Uploading" if uploading else "Idle"}

    def firmware_status_of(self, status: FwStatus, request: FirmwareRequest) -> Message | None:
        """A signed update's SignedFirmwareStatusNotification; a plain UpdateFirmware's FirmwareStatusNotification,
        in its smaller vocabulary (None: a state it has no word for)."""
        if request.request_id is not None:
            payload: dict[str, Any] = {"status": status.value}
            if status != FwStatus.IDLE:
                payload["requestId"] = request.request_id
            return "SignedFirmwareStatusNotification", payload
        word = PLAIN_FIRMWARE.get(status)
        return None if word is None else ("FirmwareStatusNotification", {"status": word})

    def firmware_status(self, *, signed: bool = False) -> Message:
        """The firmware status of the moment for a trigger: TriggerMessage's plain FirmwareStatusNotification, or
        ExtendedTriggerMessage's SignedFirmwareStatusNotification (``signed``)."""
        firmware = self.client.firmware
        request = firmware.current
        if signed:
            if request is None or request.request_id is None or firmware.status == FwStatus.IDLE:
                return "SignedFirmwareStatusNotification", {"status": "Idle"}
            return "SignedFirmwareStatusNotification", {"status": firmware.status.value,
                                                         "requestId": request.request_id}
        word = PLAIN_FIRMWARE.get(firmware.status) or PLAIN_SO_FAR.get(firmware.status, "Idle")
        return "FirmwareStatusNotification", {"status": word}

    # ------------------------------------------------------------------ boot

    def boot(self) -> Message:
        """BootNotification, with what the station knows of itself."""
        station = self.client.config.station
        payload: dict[str, Any] = {"chargePointVendor": station.vendor[:20], "chargePointModel": station.model[:20],
                                   "firmwareVersion": firmware_version()[:50]}
        if station.serial_number:
            payload["chargePointSerialNumber"] = station.serial_number[:25]
        if self.client.meter_serial:
            payload["meterSerialNumber"] = self.client.meter_serial[:25]
        return "BootNotification", payload



    def status(self, event: StatusChanged) -> Message:
        """StatusNotification: 1.6 codes for the fault, its name as vendorErrorCode, its detail as info."""
        fault = event.fault
        payload: dict[str, Any] = {"connectorId": event.evse_id, "status": event.status.value,
                                   "errorCode": ERROR_CODES[fault] if fault else "NoError",
                                   "timestamp": iso_utc(self.client.clock.utcnow())}
        if fault is not None:
            payload["info"] = (event.detail or fault.info.description)[:50]
            payload["vendorErrorCode"] = fault.info.code[:50]
        return "StatusNotification", payload

    # -------------------------------------------------------- authorisation

    @staticmethod
    def authorize(token: IdToken) -> Message:
        """Authorize."""
        return "Authorize", {"idTag": token.value}

    def authorize_answer(self, result: dict[str, Any]) -> AuthDecision:
        """Authorize.conf's idTagInfo as the station's decision."""
        return self.decision(result["idTagInfo"])

    def decision(self, info: dict[str, Any], source: AuthSource = AuthSource.CSMS) -> AuthDecision:
        """An idTagInfo as the station's decision."""
        parent = info.get("parentIdTag")
        return AuthDecision(auth_status(info.get("status")), source,
                            IdToken(parent, CSMS_TOKEN) if parent else None, self._expiry(info.get("expiryDate")))

    @staticmethod
    def token(id_tag: str) -> IdToken:
        """An idTag from the CSMS."""
        return IdToken(id_tag, CSMS_TOKEN)

    # --------------------------------------------------------- transactions

    def start(self, tx: Transaction) -> TxMessage:
        """StartTransaction, and the transaction's row."""
        at = iso_utc(tx.started_at)
        payload: dict[str, Any] = {"connectorId": tx.evse_id, "idTag": tx.id_token.value,
                                   "meterStart": tx.meter_start_wh, "timestamp": at}
        if tx.reservation_id is not None:
            payload["reservationId"] = tx.reservation_id
        stored = StoredTransaction(tx.local_id, tx.evse_id, tx.id_token.value, tx.meter_start_wh, at, None,
                                   tx.meter_start_wh, at, True)
        return TxMessage(START, tx.local_id, "StartTransaction", payload, tx.meter_start_wh, at, stored)

    def sample(self, evse_id: int, value: MeterValue) -> Message:
        """MeterValues within a transaction (its transactionId is filled in when it is sent)."""
        return "MeterValues", {"connectorId": evse_id, "meterValue": [self._value(value)]}

    def idle_sample(self, evse_id: int, value: MeterValue) -> Message:
        """MeterValues outside any transaction."""
        return "MeterValues", {"connectorId": evse_id, "meterValue": [self._value(value)]}

    def stop(self, tx: Transaction, aligned: list[MeterValue]) -> TxMessage:
        """StopTransaction with StopTxnSampledData at both ends and the StopTxnAlignedData taken between."""
        assert tx.stopped_at is not None and tx.stop_reason is not None and tx.meter_stop_wh is not None
        payload: dict[str, Any] = {"meterStop": tx.meter_stop_wh, "timestamp": iso_utc(tx.stopped_at),
                                   "reason": REASONS[tx.stop_reason]}
        if tx.stop_id_token is not None:
            payload["idTag"] = tx.stop_id_token.value
        phases = self.client.station.evses[tx.evse_id].phases
        sampled = self.client.model.items(dm.TX_ENDED_MEASURANDS)
        data = []
        if sampled and tx.start_reading is not None:
            data.append(meter_value(tx.start_reading, tx.started_at, phases, sampled, BEGIN))
        data.extend(aligned)
        if sampled and tx.stop_reading is not None:
            data.append(meter_value(tx.stop_reading, tx.stopped_at, phases, sampled, END))
        data = [v for v in data if v.samples]
        if data:
            payload["transactionData"] = [self._value(v) for v in data]
        return TxMessage(STOP, tx.local_id, "StopTransaction", payload, tx.meter_stop_wh, payload["timestamp"])

    @staticmethod
    def power_loss(tx: StoredTransaction) -> Message:
        """The StopTransaction of a transaction a dead process left open: its last persisted reading."""
        return "StopTransaction", {"meterStop": tx.last_wh, "timestamp": tx.last_at,
                                   "reason": REASONS[StopReason.POWER_LOSS]}

    def queued(self, message: StoredMessage) -> dict[str, Any]:
        """A queued message as it goes out: later messages carry the CSMS's transactionId (or -1)."""
        payload = dict(message.payload)
        if message.role != START:
            payload["transactionId"] = self.client.queue.transaction_id(message.tx_local_id)
        return payload

    def queued_answer(self, message: StoredMessage, result: dict[str, Any]) -> tuple[
            int | None, IdToken | None, AuthDecision | None]:
        """(the transactionId a start got, the idTag and idTagInfo's decision) from a queued message's answer."""
        info = result.get("idTagInfo")
        decision = self.decision(info) if info else None
        token = self.token(message.payload["idTag"]) if "idTag" in message.payload else None
        if message.role == START:
            return int(result["transactionId"]), token, decision
        return None, token, decision

    def triggered_sample(self, evse: Evse) -> Message:
        """MeterValues for TriggerMessage (context Trigger), with the running transaction's id if any."""
        assert evse.reading is not None
        value = meter_value(evse.reading, self.client.clock.utcnow(), evse.phases,
                            self.client.model.items(dm.TX_UPDATED_MEASURANDS), TRIGGER)
        payload: dict[str, Any] = {"connectorId": evse.id, "meterValue": [self._value(value)]}
        if evse.transaction is not None:
            payload["transactionId"] = self.client.queue.transaction_id(evse.transaction.local_id)
        return "MeterValues", payload

    @staticmethod
    def _value(value: MeterValue) -> dict[str, Any]:
        samples = []
        for s in value.samples:
            entry: dict[str, Any] = {"value": f"{s.value:.{s.decimals}f}", "context": s.context,
                                     "measurand": s.measurand, "unit": s.unit}
            if s.phase is not None:
                entry["phase"] = s.phase
            if s.location is not None:
                entry["location"] = s.location
            samples.append(entry)
        return {"timestamp": iso_utc(value.at), "sampledValue": samples}
