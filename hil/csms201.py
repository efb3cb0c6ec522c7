"""The bench CSMS's OCPP 2.0.1 side: the same recorder and rules as 1.6, built on the ``ocpp`` package's v201.

It accepts every idToken except the simulator's rejected set, records each TransactionEvent by transactionId
(seqNo, eventType, triggerReason, offline flag), and validates what the station sends against the 2.0.1 schemas
(the ``ocpp`` package does, before a handler runs: an invalid frame gets a CALLERROR and is recorded).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from ocpp.routing import after, on
from ocpp.v201 import ChargePoint, call, call_result
from ocpp.v201.enums import Action

from hil.scripted import ScriptedAnswers

if TYPE_CHECKING:
    from hil.csms import CsmsSimulator


class CentralChargePoint201(ScriptedAnswers, ChargePoint):
    """One station's 2.0.1 connection, as the bench CSMS serves it."""

    def __init__(self, cp_id: str, connection: Any, csms: CsmsSimulator) -> None:
        super().__init__(cp_id, connection, response_timeout=10)
        self._csms = csms

    def _info(self, id_token: dict[str, Any]) -> dict[str, Any]:
        value = str(id_token.get("id_token", ""))
        info: dict[str, Any] = {"status": self._csms.tag_status(value)}
        group = self._csms.parents.get(value.upper())
        if group is not None:
            info["group_id_token"] = {"id_token": group, "type": "Central"}
        return info

    @on(Action.boot_notification)
    def on_boot(self, charging_station: dict[str, Any], reason: str, **_: Any) -> Any:
        self._csms.boots.append(self.id)
        self._csms.boot_reasons.append(reason)
        status = self._csms.boot_answers.pop(0) if self._csms.boot_answers else "Accepted"
        interval = self._csms.heartbeat_interval if status == "Accepted" else self._csms.boot_retry
        return call_result.BootNotification(current_time=self._csms.now(), interval=interval, status=status)

    @on(Action.heartbeat)
    def on_heartbeat(self, **_: Any) -> Any:
        return call_result.Heartbeat(current_time=self._csms.now())

    @on(Action.status_notification)
    def on_status(self, timestamp: str, connector_status: str, evse_id: int, connector_id: int, **_: Any) -> Any:
        self._csms.statuses.append((time.monotonic(), self.id, evse_id, connector_status, ""))
        return call_result.StatusNotification()

    @on(Action.authorize)
    def on_authorize(self, id_token: dict[str, Any], **_: Any) -> Any:
        return call_result.Authorize(id_token_info=self._info(id_token))

    @on(Action.transaction_event)
    def on_transaction_event(self, event_type: str, timestamp: str, trigger_reason: str, seq_no: int,
                             transaction_info: dict[str, Any], **kwargs: Any) -> Any:
        tx_id = str(transaction_info["transaction_id"])
        events = self._csms.events.setdefault(tx_id, [])
        seq = [e["seq_no"] for e in events]
        if seq_no in seq:
            self._csms.duplicate_events.append((tx_id, seq_no))
        evse = next((e["evse"]["id"] for e in [*events, kwargs] if e.get("evse")), None)  # the first event has it
        state = next((e["transaction_info"].get("charging_state") for e in reversed(events)
                      if e["transaction_info"].get("charging_state")), None)
        self._csms.charging_states.append((time.monotonic(), self.id, evse, event_type,
                                           transaction_info.get("charging_state") or state))
        events.append({"event_type": event_type, "timestamp": timestamp, "trigger_reason": trigger_reason,
                       "seq_no": seq_no, "transaction_info": transaction_info, **kwargs})
        id_token = kwargs.get("id_token")
        if id_token is not None:
            return call_result.TransactionEvent(id_token_info=self._info(id_token))
        return call_result.TransactionEvent()

    @on(Action.meter_values)
    def on_meter_values(self, evse_id: int, meter_value: list[dict[str, Any]], **_: Any) -> Any:
        return call_result.MeterValues()

    @on(Action.data_transfer)
    def on_data_transfer(self, vendor_id: str, message_id: str | None = None, data: Any = None, **_: Any) -> Any:
        self._csms.data_transfers.append((vendor_id, message_id, data))
        if vendor_id != "bench":
            return call_result.DataTransfer(status="UnknownVendorId")
        return call_result.DataTransfer(status="Accepted", data=data)

    @on(Action.firmware_status_notification)
    def on_firmware_status(self, status: str, request_id: int | None = None, **_: Any) -> Any:
        self._csms.file_statuses.append(("FirmwareStatusNotification", status, request_id))
        return call_result.FirmwareStatusNotification()

    @on(Action.log_status_notification)
    def on_log_status(self, status: str, request_id: int | None = None, **_: Any) -> Any:
        self._csms.file_statuses.append(("LogStatusNotification", status, request_id))
        return call_result.LogStatusNotification()

    @on(Action.notify_event)
    def on_notify_event(self, generated_at: str, seq_no: int, event_data: list[dict[str, Any]], **_: Any) -> Any:
        self._csms.notified.extend(event_data)
        return call_result.NotifyEvent()

    @on(Action.notify_report)
    def on_notify_report(self, request_id: int, generated_at: str, seq_no: int, **kwargs: Any) -> Any:
        self._csms.reports.setdefault(request_id, []).append({"seq_no": seq_no, **kwargs})
        return call_result.NotifyReport()

    @on(Action.notify_customer_information)
    def on_notify_customer_information(self, data: str, seq_no: int, generated_at: str, request_id: int,
                                       **_: Any) -> Any:
        self._csms.customer_data.append((request_id, data))
        return call_result.NotifyCustomerInformation()

    @on(Action.reservation_status_update)
    def on_reservation_status_update(self, reservation_id: int, reservation_update_status: str, **_: Any) -> Any:
        self._csms.reservation_updates.append((reservation_id, reservation_update_status))
        return call_result.ReservationStatusUpdate()

    @on(Action.report_charging_profiles)
    def on_report_charging_profiles(self, request_id: int, charging_limit_source: str, evse_id: int,
                                    charging_profile: list[dict[str, Any]], **kwargs: Any) -> Any:
        self._csms.profile_reports.setdefault(request_id, []).append(
            {"evse_id": evse_id, "source": charging_limit_source, "profiles": charging_profile, **kwargs})
        return call_result.ReportChargingProfiles()

    @on(Action.sign_certificate)
    def on_sign_certificate(self, csr: str, **_: Any) -> Any:
        return call_result.SignCertificate(status=self._csms.csr_received(csr))

    @after(Action.sign_certificate)
    def after_sign_certificate(self, csr: str, **_: Any) -> None:
        self._csms.answer_csr(self, csr, lambda chain: call.CertificateSigned(
            certificate_chain=chain, certificate_type="ChargingStationCertificate"))

    @on(Action.security_event_notification)
    def on_security_event(self, type: str, timestamp: str, **_: Any) -> Any:
        self._csms.security_events.append(type)
        return call_result.SecurityEventNotification()


def transaction_summary(tx_id: str, events: list[dict[str, Any]]) -> dict[str, Any]:
    """One 2.0.1 transaction as the bench CSMS received it: its events, their order, how it started and ended."""
    first, last = events[0], events[-1]
    token = next((e["id_token"]["id_token"] for e in events if e.get("id_token")), None)
    return {"transaction_id": tx_id, "id_token": token, "events": len(events),
            "in_seq_order": [e["seq_no"] for e in events] == sorted(e["seq_no"] for e in events),
            "started": first["timestamp"] if first["event_type"] == "Started" else None,
            "ended": last["timestamp"] if last["event_type"] == "Ended" else None,
            "stopped_reason": last["transaction_info"].get("stopped_reason") if last["event_type"] == "Ended"
            else None,
            "meter_values": sum(len(e.get("meter_value", [])) for e in events)}

