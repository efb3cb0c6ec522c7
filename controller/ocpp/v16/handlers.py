"""CSMS -> station requests of OCPP 1.6J: translate, hand to the station, answer.

Handlers run inside the ``ocpp`` package's receive loop, so they never await a
CALL of their own (that would deadlock it); work that needs the CSMS again is
spawned as a task.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from ocpp.routing import after, on
from ocpp.v16 import ChargePoint, call_result
from ocpp.v16.enums import (
    Action,
    AvailabilityStatus,
    CancelReservationStatus,
    ClearCacheStatus,
    ConfigurationStatus,
    DataTransferStatus,
    RemoteStartStopStatus,
    ReservationStatus,
    ResetStatus,
    TriggerMessageStatus,
    UnlockStatus,
    UpdateStatus,
)

from controller.domain.types import Answer
from controller.ocpp.v16.codes import AVAILABILITY, RESERVATION, UNLOCK, spell
from controller.ocpp.v16.rpc import CallError, inspect

if TYPE_CHECKING:
    from controller.ocpp.v16.client import Ocpp16Client

log = logging.getLogger(__name__)
# Every frame, both ways (the ocpp package logs them at INFO); quiet unless debugging.
frame_log = logging.getLogger("controller.ocpp.frames")


class StationChargePoint(ChargePoint):
    """The handlers of one connection; ``client`` owns the state they act on."""

    def __init__(self, cp_id: str, connection: Any, client: Ocpp16Client, response_timeout: float) -> None:
        super().__init__(cp_id, connection, response_timeout=response_timeout, logger=frame_log)
        self.client = client

    async def route_message(self, raw_msg: str) -> None:
        # After a Rejected BootNotification the station sends and answers nothing until the interval ends.
        if self.client.registration == "Rejected":
            log.info("boot rejected: ignoring a message from the CSMS until the retry interval ends")
            return
        checked = inspect(raw_msg, set(self.route_map))
        if checked is None:
            log.warning("ignoring a frame of unknown message type from the CSMS: %.200s", raw_msg)
            return
        if isinstance(checked, CallError):
            log.warning("CSMS frame refused with %s (%s): %.200s", checked.code, checked.description, raw_msg)
            await self._send(checked.to_json())
            return
        await super().route_message(raw_msg)

    @on(Action.remote_start_transaction)
    def on_remote_start(self, id_tag: str, connector_id: int | None = None, **_: Any) -> Any:
        accepted = self.client.remote_start(id_tag, connector_id)
        status = RemoteStartStopStatus.accepted if accepted else RemoteStartStopStatus.rejected
        return call_result.RemoteStartTransaction(status=status)

    @on(Action.remote_stop_transaction)
    def on_remote_stop(self, transaction_id: int, **_: Any) -> Any:
        accepted = self.client.remote_stop(transaction_id)
        status = RemoteStartStopStatus.accepted if accepted else RemoteStartStopStatus.rejected
        return call_result.RemoteStopTransaction(status=status)

    @on(Action.get_configuration)
    def on_get_configuration(self, key: list[str] | None = None, **_: Any) -> Any:
        known, unknown = self.client.keys.get(key)
        return call_result.GetConfiguration(configuration_key=known, unknown_key=unknown or None)

    @on(Action.change_configuration)
    def on_change_configuration(self, key: str, value: str, **_: Any) -> Any:
        return call_result.ChangeConfiguration(status=ConfigurationStatus(self.client.keys.change(key, value)))

    @on(Action.change_availability)
    def on_change_availability(self, connector_id: int, type: str, **_: Any) -> Any:
        answer = self.client.station.change_availability(connector_id, type == "Operative")
        return call_result.ChangeAvailability(status=AvailabilityStatus(spell(AVAILABILITY, answer)))

    @on(Action.reset)
    def on_reset(self, type: str, **_: Any) -> Any:
        return call_result.Reset(status=ResetStatus.accepted)

    @after(Action.reset)
    def after_reset(self, type: str, **_: Any) -> None:
        # Only once Reset.conf is on the wire: the restart closes the connection.
        self.client.reset(hard=type == "Hard")

    @on(Action.unlock_connector)
    async def on_unlock_connector(self, connector_id: int, **_: Any) -> Any:
        answer: Answer = await self.client.station.unlock(connector_id)
        return call_result.UnlockConnector(status=UnlockStatus(spell(UNLOCK, answer)))

    @on(Action.clear_cache)
    def on_clear_cache(self, **_: Any) -> Any:
        self.client.store.clear_auth_cache()
        log.info("authorisation cache cleared at the CSMS's request")
        return call_result.ClearCache(status=ClearCacheStatus.accepted)

    @on(Action.data_transfer)
    def on_data_transfer(self, vendor_id: str, message_id: str | None = None, **_: Any) -> Any:
        # No vendor extensions are defined yet: our vendor id knows no message ids, others are unknown.
        known_vendor = vendor_id == self.client.config.station.vendor
        status = DataTransferStatus.unknown_message_id if known_vendor else DataTransferStatus.unknown_vendor_id
        log.info("DataTransfer from the CSMS (vendor %s, message %s): %s", vendor_id, message_id, status)
        return call_result.DataTransfer(status=status)

    @on(Action.send_local_list)
    def on_send_local_list(self, list_version: int, update_type: str, local_authorization_list: list[Any] | None = None,
                           **_: Any) -> Any:
        status = self.client.auth.send_local_list(list_version, update_type, local_authorization_list or [])
        return call_result.SendLocalList(status=UpdateStatus(status))

    @on(Action.get_local_list_version)
    def on_get_local_list_version(self, **_: Any) -> Any:
        return call_result.GetLocalListVersion(list_version=self.client.auth.list_version())

    @on(Action.reserve_now)
    def on_reserve_now(self, connector_id: int, expiry_date: str, id_tag: str, reservation_id: int,
                       parent_id_tag: str | None = None, **_: Any) -> Any:
        answer = self.client.reserve(connector_id, expiry_date, id_tag, reservation_id, parent_id_tag)
        return call_result.ReserveNow(status=ReservationStatus(spell(RESERVATION, answer)))

    @on(Action.cancel_reservation)
    def on_cancel_reservation(self, reservation_id: int, **_: Any) -> Any:
        accepted = self.client.station.cancel_reservation(reservation_id)
        return call_result.CancelReservation(
            status=CancelReservationStatus.accepted if accepted else CancelReservationStatus.rejected)

    @on(Action.trigger_message)
    def on_trigger_message(self, requested_message: str, connector_id: int | None = None, **_: Any) -> Any:
        known = connector_id is None or connector_id == 0 or connector_id in self.client.station.evses
        status = TriggerMessageStatus.accepted if known else TriggerMessageStatus.rejected
        return call_result.TriggerMessage(status=status)

    @after(Action.trigger_message)
    def after_trigger_message(self, requested_message: str, connector_id: int | None = None, **_: Any) -> None:
        # The triggered message follows TriggerMessage.conf, as the spec orders.
        if connector_id is None or connector_id == 0 or connector_id in self.client.station.evses:
            self.client.trigger(requested_message, connector_id)
