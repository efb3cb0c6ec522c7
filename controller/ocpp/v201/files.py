"""2.0.1 file transfers: GetLog (N01, DiagnosticsLog and SecurityLog) and UpdateFirmware (L01).

:class:`FileHandlers201` is mixed into the 2.0.1 charge point; :mod:`controller.ocpp.diagnostics` and
:mod:`controller.ocpp.firmware` do the work.
"""

from __future__ import annotations

import logging
from typing import Any

from ocpp.routing import on
from ocpp.v201 import call_result
from ocpp.v201.enums import Action

from controller.ocpp.commands import Commands
from controller.ocpp.firmware_request import signed_request

logger = logging.getLogger(__name__)  # not `log`: GetLog's field is

_CHECKED = {"skip_schema_validation": True}  # framing.py checked it


class FileHandlers201:
    """GetLog and UpdateFirmware of one 2.0.1 connection."""

    commands: Commands

    @on(Action.get_log, **_CHECKED)
    def on_get_log(self, log: dict[str, Any], log_type: str, request_id: int, retries: int | None = None,
                   retry_interval: int | None = None, **_: Any) -> Any:
        status, name, refused = self.commands.diagnostics.get_log(log, log_type, request_id, retries, retry_interval)
        if refused is None:
            return call_result.GetLog(status=status, filename=name)
        logger.info("GetLog refused: %s", refused)
        reason, detail = refused.split(": ", 1)
        return call_result.GetLog(status=status, status_info={"reason_code": reason, "additional_info": detail[:512]})

    @on(Action.update_firmware, **_CHECKED)
    def on_update_firmware(self, request_id: int, firmware: dict[str, Any], retries: int | None = None,
                           retry_interval: int | None = None, **_: Any) -> Any:
        try:
            request = signed_request(firmware, request_id, retries, retry_interval)
        except ValueError as exc:
            logger.info("UpdateFirmware refused: unreadable time (%s)", exc)
            return call_result.UpdateFirmware(status="Rejected", status_info={"reason_code": "InvalidTimestamp",
                                                                              "additional_info": str(exc)[:512]})
        return call_result.UpdateFirmware(status=self.commands.firmware.request(request))
