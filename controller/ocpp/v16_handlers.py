"""CSMS -> station requests of OCPP 1.6J: translate, hand to the station, answer.

Handlers run inside the ``ocpp`` package's receive loop, so they never await a
CALL of their own (that would deadlock it); work that needs the CSMS again is
spawned as a task.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from ocpp.routing import on
from ocpp.v16 import ChargePoint, call_result
from ocpp.v16.enums import Action, ConfigurationStatus, RemoteStartStopStatus

from controller.ocpp.rpc16 import CallError, inspect

if TYPE_CHECKING:
    from controller.ocpp.v16 import Ocpp16Client

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
