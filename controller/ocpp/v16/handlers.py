"""CSMS -> station requests of OCPP 1.6J: translate into a command, spell its answer.

Every request has passed :mod:`controller.ocpp.framing` before it gets here (so the ``ocpp`` package's own schema
check, which trips over decimals, is skipped). Handlers run inside the connection's receive loop, so they never
wait for a CALL of their own; ``@after`` hooks run once the answer is on the wire.
"""

from __future__ import annotations

import logging
from typing import Any

from ocpp.routing import after, on
from ocpp.v16 import ChargePoint, call_result
from ocpp.v16.enums import Action, DataTransferStatus

from controller.clock import parse_time
from controller.domain.types import Answer, AuthDecision, IdToken
from controller.ocpp.charging_profiles import Unit
from controller.ocpp.commands import Commands, Trigger
from controller.ocpp.rpc import Connection, frame_log
from controller.ocpp.smart_charging import Rules
from controller.ocpp.v16.codes import (
    AVAILABILITY,
    CONFIGURATION,
    CSMS_TOKEN,
    RESERVATION,
    RULES,
    UNLOCK,
    auth_status,
    spell,
)
from controller.ocpp.v16.files import FileHandlers16
from controller.ocpp.v16.keys import ConfigurationKeys
from controller.ocpp.v16.profiles import Unreadable, composite_payload, profile_from, purpose_from
from controller.ocpp.v16.security import SecurityHandlers16

log = logging.getLogger(__name__)

_TRIGGERS = {"BootNotification": Trigger.BOOT, "Heartbeat": Trigger.HEARTBEAT,
             "StatusNotification": Trigger.STATUS, "MeterValues": Trigger.METER_VALUES,
             "FirmwareStatusNotification": Trigger.FIRMWARE_STATUS,
             "DiagnosticsStatusNotification": Trigger.DIAGNOSTICS_STATUS}
#: 1.6 §5.16.3: a profile with an installed one's stack level and purpose (on its connector) replaces it.
PROFILE_RULES = Rules(replace_same_level=True, tx_needs_id=False)
_CHECKED = {"skip_schema_validation": True}  # framing.py checked it, with exact decimals


def _status(answer: Answer) -> str:
    return "Accepted" if answer == Answer.ACCEPTED else "Rejected"


class StationChargePoint(SecurityHandlers16, FileHandlers16, Connection, ChargePoint):
    """The 1.6 handlers of one connection."""

    def __init__(self, cp_id: str, connection: Any, commands: Commands, keys: ConfigurationKeys) -> None:
        super().__init__(cp_id, connection, logger=frame_log)
        self.rules = RULES
        self.commands = commands
        self.keys = keys

    # ------------------------------------------------------------ transactions

    @on(Action.remote_start_transaction, **_CHECKED)
    def on_remote_start(self, id_tag: str, connector_id: int | None = None,
                        charging_profile: dict[str, Any] | None = None, **_: Any) -> Any:
        smart = self.commands.smart
        profile = None
        if charging_profile is not None:
            try:
                profile = profile_from(charging_profile, connector_id or 0, None)
            except Unreadable as exc:
                log.info("RemoteStartTransaction refused: %s", exc)
                return call_result.RemoteStartTransaction(status="Rejected")
            if smart.remote_start_problem(profile) is not None:
                return call_result.RemoteStartTransaction(status="Rejected")
        answer = self.commands.remote_start(IdToken(id_tag, CSMS_TOKEN), connector_id)
        if profile is not None and answer == Answer.ACCEPTED:
            smart.expect_remote_start(profile, id_tag, None)
        return call_result.RemoteStartTransaction(status=_status(answer))

    @on(Action.remote_stop_transaction, **_CHECKED)
    def on_remote_stop(self, transaction_id: int, **_: Any) -> Any:
        answer = self.commands.remote_stop(self.commands.transaction_of(transaction_id))
        return call_result.RemoteStopTransaction(status=_status(answer))

    # ---------------------------------------------------------- configuration

    @on(Action.get_configuration, **_CHECKED)
    def on_get_configuration(self, key: list[str] | None = None, **_: Any) -> Any:
        known, unknown = self.keys.get(key)
        return call_result.GetConfiguration(configuration_key=known, unknown_key=unknown or None)

    @on(Action.change_configuration, **_CHECKED)
    def on_change_configuration(self, key: str, value: str, **_: Any) -> Any:
        return call_result.ChangeConfiguration(status=spell(CONFIGURATION, self.keys.change(key, value)))

    # ---------------------------------------------------------------- control

    @on(Action.change_availability, **_CHECKED)
    def on_change_availability(self, connector_id: int, type: str, **_: Any) -> Any:
        answer = self.commands.change_availability(connector_id, type == "Operative")
        return call_result.ChangeAvailability(status=spell(AVAILABILITY, answer))

    @on(Action.reset, **_CHECKED)
    def on_reset(self, type: str, **_: Any) -> Any:
        return call_result.Reset(status="Accepted")

    @after(Action.reset)
    def after_reset(self, type: str, **_: Any) -> None:
        # Only once Reset.conf is on the wire: the restart closes the connection.
        self.commands.after_reset(hard=type == "Hard")

    @on(Action.unlock_connector, **_CHECKED)
    async def on_unlock_connector(self, connector_id: int, **_: Any) -> Any:
        answer = await self.commands.unlock(connector_id)
        return call_result.UnlockConnector(status=spell(UNLOCK, answer, "NotSupported"))

    @on(Action.clear_cache, **_CHECKED)
    def on_clear_cache(self, **_: Any) -> Any:
        return call_result.ClearCache(status=_status(self.commands.clear_cache()))

    @on(Action.data_transfer, **_CHECKED)
    def on_data_transfer(self, vendor_id: str, message_id: str | None = None, **_: Any) -> Any:
        # No vendor extensions are defined yet: our vendor id knows no message ids, others are unknown.
        known_vendor = vendor_id == self.commands.vendor_id
        status = DataTransferStatus.unknown_message_id if known_vendor else DataTransferStatus.unknown_vendor_id
        log.info("DataTransfer from the CSMS (vendor %.40s, message %.40s): %s", vendor_id, message_id, status)
        return call_result.DataTransfer(status=status)

    # -------------------------------------------------------------- local list

    @on(Action.send_local_list, **_CHECKED)
    def on_send_local_list(self, list_version: int, update_type: str, local_authorization_list: list[Any] | None = None,
                           **_: Any) -> Any:
        entries: list[tuple[IdToken, AuthDecision | None]] = []
        for entry in local_authorization_list or []:
            info = entry.get("id_tag_info")
            entries.append((IdToken(entry["id_tag"], CSMS_TOKEN), None if info is None else self._decision(info)))
        answer = self.commands.update_local_list(list_version, update_type == "Full", entries)
        status = {Answer.ACCEPTED: "Accepted", Answer.VERSION_MISMATCH: "VersionMismatch"}.get(answer, "Failed")
        return call_result.SendLocalList(status=status)

    def _decision(self, info: dict[str, Any]) -> AuthDecision:
        parent = info.get("parent_id_tag")
        expiry = info.get("expiry_date")
        moment = None
        if expiry is not None:
            try:
                moment = parse_time(expiry)
            except ValueError:
                moment = self.commands.now()  # unreadable: no proof of validity
        return AuthDecision(auth_status(info.get("status")), group=IdToken(parent, CSMS_TOKEN) if parent else None,
                            expiry=moment)

    @on(Action.get_local_list_version, **_CHECKED)
    def on_get_local_list_version(self, **_: Any) -> Any:
        return call_result.GetLocalListVersion(list_version=self.commands.local_list_version())

    # ------------------------------------------------------------ reservation

    @on(Action.reserve_now, **_CHECKED)
    def on_reserve_now(self, connector_id: int, expiry_date: str, id_tag: str, reservation_id: int,
                       parent_id_tag: str | None = None, **_: Any) -> Any:
        try:
            expires = parse_time(expiry_date)
        except ValueError:
            return call_result.ReserveNow(status="Rejected")
        group = IdToken(parent_id_tag, CSMS_TOKEN) if parent_id_tag else None
        answer = self.commands.reserve(connector_id, expires, IdToken(id_tag, CSMS_TOKEN), reservation_id, group)
        return call_result.ReserveNow(status=spell(RESERVATION, answer))

    @on(Action.cancel_reservation, **_CHECKED)
    def on_cancel_reservation(self, reservation_id: int, **_: Any) -> Any:
        return call_result.CancelReservation(status=_status(self.commands.cancel_reservation(reservation_id)))

    # ---------------------------------------------------------- smart charging

    @on(Action.set_charging_profile, **_CHECKED)
    def on_set_charging_profile(self, connector_id: int, cs_charging_profiles: dict[str, Any], **_: Any) -> Any:
        wire_tx = cs_charging_profiles.get("transaction_id")
        local_tx = None if wire_tx is None else self.commands.transaction_of(wire_tx)
        try:
            profile = profile_from(cs_charging_profiles, connector_id, local_tx)
        except Unreadable as exc:
            log.info("SetChargingProfile refused: %s", exc)
            return call_result.SetChargingProfile(status="Rejected")
        if wire_tx is not None and local_tx is None:
            log.info("SetChargingProfile refused: transaction %s is not known here", wire_tx)
            return call_result.SetChargingProfile(status="Rejected")
        refused = self.commands.smart.install(profile, PROFILE_RULES)
        return call_result.SetChargingProfile(status="Accepted" if refused is None else "Rejected")

    @on(Action.clear_charging_profile, **_CHECKED)
    def on_clear_charging_profile(self, id: int | None = None, connector_id: int | None = None,
                                  charging_profile_purpose: str | None = None, stack_level: int | None = None,
                                  **_: Any) -> Any:
        cleared = self.commands.smart.clear(id, connector_id, purpose_from(charging_profile_purpose), stack_level)
        return call_result.ClearChargingProfile(status="Accepted" if cleared else "Unknown")

    @on(Action.get_composite_schedule, **_CHECKED)
    def on_get_composite_schedule(self, connector_id: int, duration: int, charging_rate_unit: str | None = None,
                                  **_: Any) -> Any:
        composite = self.commands.smart.composite(connector_id, duration,
                                                  Unit(charging_rate_unit) if charging_rate_unit else None)
        if composite is None:
            return call_result.GetCompositeSchedule(status="Rejected")
        return call_result.GetCompositeSchedule(status="Accepted", **composite_payload(composite))

    # ---------------------------------------------------------------- trigger

    @on(Action.trigger_message, **_CHECKED)
    def on_trigger_message(self, requested_message: str, connector_id: int | None = None, **_: Any) -> Any:
        what = _TRIGGERS.get(requested_message)
        if what is None:
            return call_result.TriggerMessage(status="NotImplemented")
        return call_result.TriggerMessage(status=_status(self.commands.trigger(what, connector_id)))

    @after(Action.trigger_message)
    def after_trigger_message(self, requested_message: str, connector_id: int | None = None, **_: Any) -> None:
        # The triggered message follows TriggerMessage.conf, as the spec orders.
        what = _TRIGGERS.get(requested_message)
        if what is not None and self.commands.trigger(what, connector_id) == Answer.ACCEPTED:
            self.commands.after_trigger(what, connector_id)

