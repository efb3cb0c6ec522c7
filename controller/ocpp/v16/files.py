"""1.6 file transfers: GetDiagnostics and UpdateFirmware (FirmwareManagement), and the security whitepaper's GetLog
and SignedUpdateFirmware.

:class:`FileHandlers16` is mixed into the 1.6 charge point; :mod:`controller.ocpp.diagnostics` and
:mod:`controller.ocpp.firmware` do the work.
"""

from __future__ import annotations

import logging
from typing import Any

from ocpp.routing import on
from ocpp.v16 import call_result
from ocpp.v16.enums import Action

from controller.clock import parse_time
from controller.ocpp.commands import Commands
from controller.ocpp.diagnostics import LogRequest
from controller.ocpp.firmware_request import FirmwareRequest, signed_request

logger = logging.getLogger(__name__)  # not `log`: GetLog's field is

_CHECKED = {"skip_schema_validation": True}  # framing.py checked it


class FileHandlers16:
    """GetDiagnostics, GetLog, UpdateFirmware and SignedUpdateFirmware of one 1.6 connection."""

    commands: Commands

    @on(Action.get_diagnostics, **_CHECKED)
    def on_get_diagnostics(self, location: str, retries: int | None = None, retry_interval: int | None = None,
                           start_time: str | None = None, stop_time: str | None = None, **_: Any) -> Any:
        diagnostics = self.commands.diagnostics
        problem = diagnostics.problem(location)
        since = until = None
        try:
            since = parse_time(start_time) if start_time else None
            until = parse_time(stop_time) if stop_time else None
        except ValueError as exc:
            problem = problem or f"unreadable time ({exc})"
        if problem is not None:
            logger.info("GetDiagnostics refused: %s", problem)
            return call_result.GetDiagnostics()  # no fileName: nothing will be uploaded
        interval = 30.0 if retry_interval is None else float(retry_interval)
        name = diagnostics.start(LogRequest(location, since=since, until=until, retries=retries or 0,
                                            retry_interval=interval))[0]
        return call_result.GetDiagnostics(file_name=name)

    @on(Action.get_log, **_CHECKED)
    def on_get_log(self, log: dict[str, Any], log_type: str, request_id: int, retries: int | None = None,
                   retry_interval: int | None = None, **_: Any) -> Any:
        status, name, refused = self.commands.diagnostics.get_log(log, log_type, request_id, retries, retry_interval)
        if refused is not None:
            logger.info("GetLog refused: %s", refused)
        return call_result.GetLog(status=status, filename=name)

    @on(Action.update_firmware, **_CHECKED)
    def on_update_firmware(self, location: str, retrieve_date: str, retries: int | None = None,
                           retry_interval: int | None = None, **_: Any) -> Any:
        try:
            request = FirmwareRequest(location, parse_time(retrieve_date), retries=retries or 0,
                                      retry_interval=30.0 if retry_interval is None else float(retry_interval))
        except ValueError as exc:
            logger.info("UpdateFirmware refused: unreadable retrieveDate (%s)", exc)
            request = None
        if request is None or self.commands.firmware.request(request) not in ("Accepted", "AcceptedCanceled"):
            # UpdateFirmware.conf has no status: the refusal is told as the installation's failure.
            client = self.commands.client
            client.spawn(client.send(("FirmwareStatusNotification", {"status": "InstallationFailed"})))
        return call_result.UpdateFirmware()

    @on(Action.signed_update_firmware, **_CHECKED)
    def on_signed_update_firmware(self, request_id: int, firmware: dict[str, Any], retries: int | None = None,
                                  retry_interval: int | None = None, **_: Any) -> Any:
        try:
            request = signed_request(firmware, request_id, retries, retry_interval)
        except ValueError as exc:
            logger.info("SignedUpdateFirmware refused: unreadable time (%s)", exc)
            return call_result.SignedUpdateFirmware(status="Rejected")
        return call_result.SignedUpdateFirmware(status=self.commands.firmware.request(request))
