"""The bench CSMS's OCPP 1.6 side: transaction ids, idTag answers, the recorder's rules, built on the ``ocpp``
package's v16 (its schemas check what the station sends before a handler runs)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from ocpp.exceptions import InternalError
from ocpp.routing import after, on
from ocpp.v16 import ChargePoint, call, call_result
from ocpp.v16.enums import Action, AuthorizationStatus, DataTransferStatus, RegistrationStatus

from hil.csms import CsmsTransaction, local_now
from hil.scripted import ScriptedAnswers

if TYPE_CHECKING:
    from hil.csms import CsmsSimulator


class CentralChargePoint16(ScriptedAnswers, ChargePoint):
    """One station's 1.6 connection, as the bench CSMS serves it."""

    def __init__(self, cp_id: str, connection: Any, csms: CsmsSimulator) -> None:
        super().__init__(cp_id, connection, response_timeout=10)
        self._csms = csms

    @on(Action.boot_notification)
    def on_boot(self, **_: Any) -> Any:
        self._csms.boots.append(self.id)
        status = self._csms.boot_answers.pop(0) if self._csms.boot_answers else RegistrationStatus.accepted
        interval = self._csms.heartbeat_interval if status == RegistrationStatus.accepted else self._csms.boot_retry
        return call_result.BootNotification(current_time=local_now(), interval=interval, status=status)

    @on(Action.heartbeat)
    def on_heartbeat(self) -> Any:
        return call_result.Heartbeat(current_time=local_now())

    @on(Action.status_notification)
    def on_status(self, connector_id: int, error_code: str, status: str, **_: Any) -> Any:
        self._csms.statuses.append((time.monotonic(), self.id, connector_id, status, error_code))
        return call_result.StatusNotification()

    @on(Action.authorize)
    def on_authorize(self, id_tag: str) -> Any:
        return call_result.Authorize(id_tag_info=self._csms.tag_info(id_tag))

    @on(Action.start_transaction)
    def on_start(self, connector_id: int, id_tag: str, meter_start: int, timestamp: str, **_: Any) -> Any:
        if self._csms.refuse_starts or self._csms.refuse_next_starts > 0:
            self._csms.refuse_next_starts = max(0, self._csms.refuse_next_starts - 1)
            raise InternalError(description="bench CSMS refuses StartTransaction")
        tx_id = next(self._csms._ids)
        self._csms.transactions[tx_id] = CsmsTransaction(
            tx_id, self.id, connector_id, id_tag, meter_start, timestamp
        )
        status = AuthorizationStatus.invalid if id_tag.upper() in self._csms.invalid_at_start else (
            self._csms.tag_status(id_tag))
        return call_result.StartTransaction(transaction_id=tx_id, id_tag_info={"status": status})

    @on(Action.stop_transaction)
    def on_stop(self, meter_stop: int, timestamp: str, transaction_id: int, **kwargs: Any) -> Any:
        tx = self._csms.transactions.get(transaction_id)
        if tx is None:
            self._csms.unknown_stops.append(transaction_id)
        else:
            if tx.meter_stop is not None:
                self._csms.duplicate_stops.append(transaction_id)
            tx.meter_stop, tx.stop_time, tx.reason = meter_stop, timestamp, kwargs.get("reason", "Local")
        return call_result.StopTransaction()

    @on(Action.data_transfer)
    def on_data_transfer(self, vendor_id: str, message_id: str | None = None, data: str | None = None) -> Any:
        # Vendor "bench" echoes what it gets; any other vendor is unknown here.
        self._csms.data_transfers.append((vendor_id, message_id, data))
        if vendor_id != "bench":
            return call_result.DataTransfer(status=DataTransferStatus.unknown_vendor_id)
        return call_result.DataTransfer(status=DataTransferStatus.accepted, data=data)

    @on(Action.meter_values)
    def on_meter_values(self, connector_id: int, meter_value: list[dict[str, Any]], **kwargs: Any) -> Any:
        tx = self._csms.transactions.get(kwargs.get("transaction_id", -2))
        if tx is not None:
            tx.meter_values.extend(meter_value)
        return call_result.MeterValues()

    @on(Action.diagnostics_status_notification)
    def on_diagnostics_status(self, status: str, **_: Any) -> Any:
        self._csms.file_statuses.append(("DiagnosticsStatusNotification", status, None))
        return call_result.DiagnosticsStatusNotification()

    @on(Action.firmware_status_notification)
    def on_firmware_status(self, status: str, **_: Any) -> Any:
        self._csms.file_statuses.append(("FirmwareStatusNotification", status, None))
        return call_result.FirmwareStatusNotification()

    @on(Action.signed_firmware_status_notification)
    def on_signed_firmware_status(self, status: str, request_id: int | None = None, **_: Any) -> Any:
        self._csms.file_statuses.append(("SignedFirmwareStatusNotification", status, request_id))
        return call_result.SignedFirmwareStatusNotification()

    @on(Action.log_status_notification)
    def on_log_status(self, status: str, request_id: int | None = None, **_: Any) -> Any:
        self._csms.file_statuses.append(("LogStatusNotification", status, request_id))
        return call_result.LogStatusNotification()

    @on(Action.security_event_notification)
    def on_security_event(self, type: str, timestamp: str, **_: Any) -> Any:
        self._csms.security_events.append(type)
        return call_result.SecurityEventNotification()

    @on(Action.sign_certificate)
    def on_sign_certificate(self, csr: str, **_: Any) -> Any:
        return call_result.SignCertificate(status=self._csms.csr_received(csr))

    @after(Action.sign_certificate)
    def after_sign_certificate(self, csr: str, **_: Any) -> None:
        self._csms.answer_csr(self, csr, lambda chain: call.CertificateSigned(certificate_chain=chain))
