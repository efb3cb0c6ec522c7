"""CSMS -> station requests of OCPP 2.0.1: translate into a command or a device-model access, spell its answer.

Every request has passed :mod:`controller.ocpp.framing` (with the 2.0.1 schemas and CALLERROR codes) before it
gets here. Handlers run inside the connection's receive loop and never wait for a CALL of their own; ``@after``
hooks run once the answer is on the wire.
"""

from __future__ import annotations

import logging
from typing import Any

from ocpp.routing import after, on
from ocpp.v201 import ChargePoint, call_result
from ocpp.v201.enums import Action

from controller.clock import iso_utc, parse_time
from controller.domain.types import Answer, AuthDecision, IdToken
from controller.ocpp import device_model as dm
from controller.ocpp.commands import Commands, Trigger
from controller.ocpp.device_model import READ_ONLY, WRITE_ONLY, DeviceModel, Ref
from controller.ocpp.framing import CallError, Frame
from controller.ocpp.rpc import Connection, frame_log
from controller.ocpp.v201.codes import (
    AVAILABILITY,
    RESERVATION,
    RULES,
    SET_VARIABLE,
    UNLOCK,
    auth_status,
    spell,
    token_type,
)
from controller.ocpp.v201.files import FileHandlers201
from controller.ocpp.v201.security import SecurityHandlers201
from controller.ocpp.v201.smart import SmartChargingHandlers, Unreadable, profile_from

log = logging.getLogger(__name__)

_TRIGGERS = {"BootNotification": Trigger.BOOT, "Heartbeat": Trigger.HEARTBEAT,
             "StatusNotification": Trigger.STATUS, "MeterValues": Trigger.METER_VALUES,
             "TransactionEvent": Trigger.TRANSACTION_EVENT,
             "FirmwareStatusNotification": Trigger.FIRMWARE_STATUS, "LogStatusNotification": Trigger.DIAGNOSTICS_STATUS,
             "SignChargingStationCertificate": Trigger.SIGN_CERTIFICATE}
_CHECKED = {"skip_schema_validation": True}  # framing.py checked it, with exact decimals
#: Requests DeviceDataCtrlr limits: (items variable, bytes variable, the list they count).
_LIMITS = {"GetVariables": (dm.GET_VARIABLES_ITEMS, dm.GET_VARIABLES_BYTES, "getVariableData"),
           "SetVariables": (dm.SET_VARIABLES_ITEMS, dm.SET_VARIABLES_BYTES, "setVariableData")}


def _status(answer: Answer) -> str:
    return "Accepted" if answer == Answer.ACCEPTED else "Rejected"


class StationChargePoint201(SmartChargingHandlers, SecurityHandlers201, FileHandlers201, Connection,
                             ChargePoint):
    """The 2.0.1 handlers of one connection."""

    def __init__(self, cp_id: str, connection: Any, commands: Commands, model: DeviceModel) -> None:
        super().__init__(cp_id, connection, logger=frame_log)
        self.rules = RULES
        self.commands = commands
        self.model = model

    # ------------------------------------------------------------ the device model

    def limit_problem(self, frame: Frame, size: int) -> CallError | None:
        """B06.FR.16/17 (and B05's): more items or bytes than DeviceDataCtrlr says a request may carry."""
        limits = _LIMITS.get(frame.action or "")
        if limits is None:
            return None
        items_ref, bytes_ref, field = limits
        codes = self.rules.codes
        if size > self.model.number(bytes_ref):
            return CallError(frame.unique_id, codes.formation, f"{frame.action} of {size} bytes: at most "
                             f"{self.model.number(bytes_ref)} ({bytes_ref})")
        items = len((frame.payload or {}).get(field, []))
        if items > self.model.number(items_ref):
            return CallError(frame.unique_id, codes.occurrence, f"{frame.action} of {items} items: at most "
                             f"{self.model.number(items_ref)} ({items_ref})")
        return None

    def _ref(self, component: dict[str, Any], variable: dict[str, Any]) -> tuple[Ref | None, str]:
        """The variable a component/variable pair names, or None with the status saying which part is unknown."""
        evse = component.get("evse") or {}
        if evse.get("connector_id", 1) != 1:
            return None, "UnknownComponent"  # one connector per EVSE here
        ref = Ref(component["name"], variable["name"], variable.get("instance") or "", evse.get("id", 0))
        if ref in self.model.variables:
            return ref, "Accepted"
        known = any((r.component, r.evse) == (ref.component, ref.evse) for r in self.model.variables)
        return None, "UnknownVariable" if known else "UnknownComponent"

    @on(Action.get_variables, **_CHECKED)
    def on_get_variables(self, get_variable_data: list[dict[str, Any]], **_: Any) -> Any:
        results = []
        for item in get_variable_data:
            component, variable = item["component"], item["variable"]
            attribute = item.get("attribute_type", "Actual")
            ref, status = self._ref(component, variable)
            result: dict[str, Any] = {"attribute_status": status, "attribute_type": attribute,
                                      "component": component, "variable": variable}
            if ref is not None and attribute != "Actual":
                result["attribute_status"] = "NotSupportedAttributeType"
            elif ref is not None and self.model.variables[ref].mutability == WRITE_ONLY:
                result["attribute_status"] = "Rejected"  # a password is set, never read
            elif ref is not None:
                result["attribute_value"] = self.model.get(ref)[:2500]
            results.append(result)
        return call_result.GetVariables(get_variable_result=results)

    @on(Action.set_variables, **_CHECKED)
    def on_set_variables(self, set_variable_data: list[dict[str, Any]], **_: Any) -> Any:
        results = []
        for item in set_variable_data:
            component, variable = item["component"], item["variable"]
            attribute = item.get("attribute_type", "Actual")
            ref, status = self._ref(component, variable)
            if ref is not None and attribute != "Actual":
                status = "NotSupportedAttributeType"
            elif ref is not None:
                spec = self.model.variables[ref]
                status = "Rejected" if spec.mutability == READ_ONLY else spell(
                    SET_VARIABLE, self.model.set(ref, str(item["attribute_value"])))
            results.append({"attribute_status": status, "attribute_type": attribute, "component": component,
                            "variable": variable})
        return call_result.SetVariables(set_variable_result=results)

    @on(Action.get_base_report, **_CHECKED)
    def on_get_base_report(self, request_id: int, report_base: str, **_: Any) -> Any:
        return call_result.GetBaseReport(status="Accepted")

    @after(Action.get_base_report)
    def after_get_base_report(self, request_id: int, report_base: str, **_: Any) -> None:
        self.commands.send_later(report(self.model, request_id, report_base, at=iso_utc(self.commands.now())))

    # ------------------------------------------------------------ transactions

    @on(Action.request_start_transaction, **_CHECKED)
    def on_request_start(self, id_token: dict[str, Any], remote_start_id: int, evse_id: int | None = None,
                         charging_profile: dict[str, Any] | None = None, **_: Any) -> Any:
        smart = self.commands.smart
        profile = None
        if charging_profile is not None:
            try:
                profile = profile_from(charging_profile, evse_id or 0)
            except Unreadable as exc:
                log.info("RequestStartTransaction refused: %s", exc)
                return call_result.RequestStartTransaction(status="Rejected")
            # K05.FR.02: the transaction does not exist yet, so its profile cannot name it.
            if profile.transaction_id is not None or smart.remote_start_problem(profile) is not None:
                return call_result.RequestStartTransaction(status="Rejected")
        token = IdToken(id_token["id_token"], token_type(id_token.get("type")))
        answer = self.commands.remote_start(token, evse_id, remote_start_id=remote_start_id)
        if profile is not None and answer == Answer.ACCEPTED:
            smart.expect_remote_start(profile, token.value, remote_start_id)
        return call_result.RequestStartTransaction(status=_status(answer))

    @on(Action.request_stop_transaction, **_CHECKED)
    def on_request_stop(self, transaction_id: str, **_: Any) -> Any:
        return call_result.RequestStopTransaction(status=_status(self.commands.remote_stop(transaction_id)))

    @on(Action.get_transaction_status, **_CHECKED)
    def on_get_transaction_status(self, transaction_id: str | None = None, **_: Any) -> Any:
        queued, ongoing = self.commands.transaction_status(transaction_id)
        if transaction_id is None:
            return call_result.GetTransactionStatus(messages_in_queue=queued)
        return call_result.GetTransactionStatus(messages_in_queue=queued, ongoing_indicator=ongoing)

    @on(Action.set_network_profile, **_CHECKED)
    def on_set_network_profile(self, configuration_slot: int, connection_data: dict[str, Any], **_: Any) -> Any:
        # This station speaks one version over JSON, through whatever network the OS has (no APN, no VPN).
        data = connection_data
        if data["ocpp_version"] != "OCPP20" or data["ocpp_transport"] != "JSON" or "apn" in data or "vpn" in data:
            log.info("SetNetworkProfile refused: %s over %s%s", data["ocpp_version"], data["ocpp_transport"],
                     " with an APN or VPN" if "apn" in data or "vpn" in data else "")
            return call_result.SetNetworkProfile(status="Rejected")
        answer = self.commands.set_network_profile(configuration_slot, data["ocpp_csms_url"],
                                                   data["security_profile"], data["message_timeout"])
        return call_result.SetNetworkProfile(status={Answer.ACCEPTED: "Accepted", Answer.FAILED: "Failed"}.get(
            answer, "Rejected"))

    # ---------------------------------------------------------------- control

    @on(Action.change_availability, **_CHECKED)
    def on_change_availability(self, operational_status: str, evse: dict[str, Any] | None = None,
                               **_: Any) -> Any:
        if evse is not None and evse.get("connector_id", 1) != 1:
            return call_result.ChangeAvailability(status="Rejected")  # one connector per EVSE here
        answer = self.commands.change_availability(evse["id"] if evse else 0, operational_status == "Operative")
        return call_result.ChangeAvailability(status=spell(AVAILABILITY, answer))

    @on(Action.reset, **_CHECKED)
    def on_reset(self, type: str, evse_id: int | None = None, **_: Any) -> Any:
        if evse_id is not None and (evse_id == 0 or not self.commands.has_evse(evse_id)):
            return call_result.Reset(status="Rejected")
        scheduled = type == "OnIdle" and self.commands.busy(evse_id)
        return call_result.Reset(status="Scheduled" if scheduled else "Accepted")

    @after(Action.reset)
    def after_reset(self, type: str, evse_id: int | None = None, **_: Any) -> None:
        if evse_id is not None:
            if evse_id != 0 and self.commands.has_evse(evse_id):
                self.commands.reset_evse(evse_id, immediate=type == "Immediate")  # that EVSE alone starts over
            return
        if type == "OnIdle" and self.commands.busy():
            self.commands.reset_when_idle()  # B12.FR.01: no transaction is ended for it
        else:
            self.commands.after_reset(hard=type == "Immediate")

    @on(Action.unlock_connector, **_CHECKED)
    async def on_unlock_connector(self, evse_id: int, connector_id: int, **_: Any) -> Any:
        if connector_id != 1 or evse_id == 0 or not self.commands.has_evse(evse_id):  # has_evse(0): the station
            return call_result.UnlockConnector(status="UnknownConnector")
        if self.commands.busy(evse_id):
            # F05.FR.02: 2.0.1 does not end a transaction to unlock (1.6 does); the CSMS stops it first.
            return call_result.UnlockConnector(status="OngoingAuthorizedTransaction")
        answer = await self.commands.unlock(evse_id)
        return call_result.UnlockConnector(status=spell(UNLOCK, answer, "UnlockFailed"))

    @on(Action.clear_cache, **_CHECKED)
    def on_clear_cache(self, **_: Any) -> Any:
        return call_result.ClearCache(status=_status(self.commands.clear_cache()))

    @on(Action.data_transfer, **_CHECKED)
    def on_data_transfer(self, vendor_id: str, message_id: str | None = None, **_: Any) -> Any:
        known_vendor = vendor_id == self.commands.vendor_id
        status = "UnknownMessageId" if known_vendor else "UnknownVendorId"
        log.info("DataTransfer from the CSMS (vendor %.40s, message %.40s): %s", vendor_id, message_id, status)
        return call_result.DataTransfer(status=status)

    @on(Action.get_local_list_version, **_CHECKED)
    def on_get_local_list_version(self, **_: Any) -> Any:
        return call_result.GetLocalListVersion(version_number=self.commands.local_list_version(empty_is_none=False))

    @on(Action.send_local_list, **_CHECKED)
    def on_send_local_list(self, version_number: int, update_type: str,
                           local_authorization_list: list[Any] | None = None, **_: Any) -> Any:
        entries: list[tuple[IdToken, AuthDecision | None]] = []
        for entry in local_authorization_list or []:
            token, info = entry["id_token"], entry.get("id_token_info")
            entries.append((IdToken(token["id_token"], token_type(token.get("type"))),
                            None if info is None else self._decision(info)))
        answer = self.commands.update_local_list(version_number, update_type == "Full", entries)
        status = {Answer.ACCEPTED: "Accepted", Answer.VERSION_MISMATCH: "VersionMismatch"}.get(answer, "Failed")
        return call_result.SendLocalList(status=status)

    # ------------------------------------------------------------ customer information

    @on(Action.customer_information, **_CHECKED)
    def on_customer_information(self, request_id: int, report: bool, clear: bool,
                                id_token: dict[str, Any] | None = None, **_: Any) -> Any:
        # The station knows a customer only by an idToken (no certificates, no customer identifiers).
        return call_result.CustomerInformation(status="Accepted" if id_token else "Invalid")

    @after(Action.customer_information)
    def after_customer_information(self, request_id: int, report: bool, clear: bool,
                                   id_token: dict[str, Any] | None = None, **_: Any) -> None:
        if id_token is None:
            return
        data = self.commands.customer_information(id_token["id_token"], report=report, clear=clear)
        if report or not data:
            self.commands.send_later([("NotifyCustomerInformation", {
                "data": data or "Cleared", "seqNo": 0, "generatedAt": iso_utc(self.commands.now()),
                "requestId": request_id, "tbc": False})])

    # ------------------------------------------------------------ reservation

    @on(Action.reserve_now, **_CHECKED)
    def on_reserve_now(self, id: int, expiry_date_time: str, id_token: dict[str, Any], evse_id: int | None = None,
                       group_id_token: dict[str, Any] | None = None, connector_type: str | None = None,
                       **_: Any) -> Any:
        among = None
        if connector_type is not None:  # H_15: only an EVSE whose connector is of that type (one each here)
            among = [ref.evse for ref in self.model.variables if ref.component == "Connector"
                     and ref.variable == "ConnectorType" and self.model.get(ref) == connector_type]
            if not among or (evse_id is not None and evse_id not in among):
                log.info("ReserveNow %d refused: no connector of type %s", id, connector_type)
                return call_result.ReserveNow(status="Rejected")
        try:
            expires = parse_time(expiry_date_time)
        except ValueError:
            return call_result.ReserveNow(status="Rejected")
        token = IdToken(id_token["id_token"], token_type(id_token.get("type")))
        group = IdToken(group_id_token["id_token"], token_type(group_id_token.get("type"))) if group_id_token \
            else None
        answer = self.commands.reserve(evse_id or 0, expires, token, id, group, among=among)
        return call_result.ReserveNow(status=spell(RESERVATION, answer))

    @on(Action.cancel_reservation, **_CHECKED)
    def on_cancel_reservation(self, reservation_id: int, **_: Any) -> Any:
        return call_result.CancelReservation(status=_status(self.commands.cancel_reservation(reservation_id)))

    def _decision(self, info: dict[str, Any]) -> AuthDecision:
        group, expiry = info.get("group_id_token"), info.get("cache_expiry_date_time")
        moment = None
        if expiry is not None:
            try:
                moment = parse_time(expiry)
            except ValueError:
                moment = self.commands.now()  # unreadable: no proof of validity
        return AuthDecision(auth_status(info.get("status")),
                            group=IdToken(group["id_token"], token_type(group.get("type"))) if group else None,
                            expiry=moment)

    # ---------------------------------------------------------------- trigger

    @on(Action.trigger_message, **_CHECKED)
    def on_trigger_message(self, requested_message: str, evse: dict[str, Any] | None = None, **_: Any) -> Any:
        what = _TRIGGERS.get(requested_message)
        if what is None:
            return call_result.TriggerMessage(status="NotImplemented")
        if what == Trigger.BOOT and self.commands.booted():
            return call_result.TriggerMessage(status="Rejected")  # F06.FR.17: only while not yet Accepted
        if evse is not None and evse.get("connector_id", 1) != 1:
            return call_result.TriggerMessage(status="Rejected")  # one connector per EVSE here
        return call_result.TriggerMessage(status=_status(self.commands.trigger(what, evse["id"] if evse else None)))

    @after(Action.trigger_message)
    def after_trigger_message(self, requested_message: str, evse: dict[str, Any] | None = None, **_: Any) -> None:
        what = _TRIGGERS.get(requested_message)
        evse_id = evse["id"] if evse else None
        if what == Trigger.BOOT and self.commands.booted():
            return
        if what is not None and self.commands.trigger(what, evse_id) == Answer.ACCEPTED:
            self.commands.after_trigger(what, evse_id)


#: Report entries per NotifyReport part.
REPORT_PART = 50


#: What a SummaryInventory reports: the station's, each EVSE's and each connector's availability of the moment.
SUMMARY = frozenset({"AvailabilityState", "Available"})


def report(model: DeviceModel, request_id: int, base: str, *, at: str) -> list[tuple[str, dict[str, Any]]]:
    """NotifyReport parts for GetBaseReport: every variable (FullInventory), the writable ones
    (ConfigurationInventory), or the availability of the station and its parts (SummaryInventory)."""
    entries = []
    for ref, spec in model.variables.items():
        if base == "ConfigurationInventory" and spec.mutability == READ_ONLY:
            continue
        if base == "SummaryInventory" and ref.variable not in SUMMARY:
            continue
        variable: dict[str, Any] = {"name": ref.variable}
        if ref.instance:
            variable["instance"] = ref.instance
        component: dict[str, Any] = {"name": ref.component}
        if ref.evse:
            component["evse"] = {"id": ref.evse, **({"connectorId": 1} if ref.component == "Connector" else {})}
        characteristics: dict[str, Any] = {"dataType": spec.data_type, "supportsMonitoring": False}
        if spec.values:  # OptionList, SequenceList and MemberList say what they may hold
            characteristics["valuesList"] = ",".join(spec.values)
        if spec.data_type == "integer":
            characteristics["minLimit"], characteristics["maxLimit"] = spec.minimum, spec.maximum
        attribute: dict[str, Any] = {"type": "Actual", "mutability": spec.mutability}
        if spec.mutability != WRITE_ONLY:
            attribute["value"] = model.get(ref)[:2500]
        entries.append({"component": component, "variable": variable,
                        "variableAttribute": [attribute],
                        "variableCharacteristics": characteristics})
    parts = [entries[i:i + REPORT_PART] for i in range(0, len(entries), REPORT_PART)] or [[]]
    return [("NotifyReport", {"requestId": request_id, "generatedAt": at, "seqNo": n, "tbc": n < len(parts) - 1,
                              **({"reportData": part} if part else {})}) for n, part in enumerate(parts)]
