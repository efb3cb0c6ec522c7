"""Diagnostics uploads for every OCPP version: 1.6 GetDiagnostics, 2.0.1 (and the 1.6 whitepaper's) GetLog.

One ``.tar.gz`` per request, uploaded to the CSMS's location (``ftp://`` with STOR, ``http(s)://`` with PUT, the
way curl -T does both), with the version's status notifications around it and the request's retries:

- ``journal.txt``: the service's journal for the window (journalctl), or a line saying why there is none;
- ``frames.txt``: the last OCPP frames both ways (secrets masked);
- ``config.json``: the configuration with every secret removed, and the device model without write-only values;
- ``faults.json``: the safety supervisor's fault history and the faults active now;
- ``security.json`` (SecurityLog): the security events the station recorded.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import enum
import io
import json
import logging
import shutil
import subprocess
import tarfile
import time
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from controller.clock import iso_utc, parse_time
from controller.config import redact
from controller.ocpp.device_model import WRITE_ONLY
from controller.ocpp.rpc import RECENT_FRAMES, redact_secrets
from controller.ocpp.transfer import TransferError, location_problem, upload

if TYPE_CHECKING:
    from controller.ocpp.client import OcppClient

log = logging.getLogger(__name__)

#: The unit whose journal is uploaded (systemd/evse.service).
UNIT = "evse.service"
UPLOAD_TIMEOUT = 120.0
_SECRET_KEYS = {"basic_auth_password", "client_key_file"}


class LogKind(enum.Enum):
    """What is asked for (2.0.1 LogEnumType; 1.6 GetDiagnostics is the diagnostics log)."""

    DIAGNOSTICS = "DiagnosticsLog"
    SECURITY = "SecurityLog"


class Upload(enum.Enum):
    """Where an upload stands, in the station's words."""

    IDLE = "idle"
    UPLOADING = "uploading"
    UPLOADED = "uploaded"
    FAILED = "failed"
    BAD_LOCATION = "bad location"


@dataclasses.dataclass(frozen=True)
class LogRequest:
    """One request: where to, what, which window, how often to try."""

    location: str
    kind: LogKind = LogKind.DIAGNOSTICS
    request_id: int | None = None
    since: datetime | None = None
    until: datetime | None = None
    retries: int = 0
    retry_interval: float = 30.0


def get_log_request(log: dict[str, Any], log_type: str, request_id: int, retries: int | None,
                    retry_interval: int | None) -> LogRequest:
    """A GetLog request (2.0.1, and the 1.6 whitepaper's: one shape, snake_case from the ``ocpp`` package);
    ValueError for an unreadable timestamp."""
    oldest, latest = log.get("oldest_timestamp"), log.get("latest_timestamp")
    return LogRequest(log["remote_location"], LogKind(log_type), request_id,
                      parse_time(oldest) if oldest else None, parse_time(latest) if latest else None,
                      retries or 0, float(retry_interval if retry_interval is not None else 30))


class Diagnostics:
    """Builds and uploads diagnostics archives, one at a time."""

    def __init__(self, client: OcppClient) -> None:
        self.client = client
        self.state = Upload.IDLE
        self.current: LogRequest | None = None
        #: The safety supervisor's fault history as (monotonic time, EVSE, fault code) and the active faults
        #: (the app plugs its supervisor in).
        self.faults: Callable[[], dict[str, Any]] = lambda: {"history": [], "active": {}}
        self._task: asyncio.Task[None] | None = None

    def problem(self, location: str) -> str | None:
        """What keeps ``location`` from being uploaded to (None: nothing)."""
        return location_problem(location)

    def get_log(self, log: dict[str, Any], log_type: str, request_id: int, retries: int | None,
                retry_interval: int | None) -> tuple[str, str | None, str | None]:
        """GetLog (2.0.1, and the 1.6 whitepaper's): (Accepted, AcceptedCanceled or Rejected; the file name; why
        it was rejected, as (reason code, text) joined by a colon)."""
        try:
            request = get_log_request(log, log_type, request_id, retries, retry_interval)
        except ValueError as exc:
            return "Rejected", None, f"InvalidTimestamp: {exc}"
        problem = self.problem(request.location)
        if problem is not None:
            return "Rejected", None, f"InvalidURL: {problem}"
        name, cancelled = self.start(request)
        return ("AcceptedCanceled" if cancelled else "Accepted"), name, None

    def start(self, request: LogRequest) -> tuple[str, bool]:
        """Begin an upload (after the request's answer); returns (the file name, whether one under way was
        cancelled for it: 2.0.1 AcceptedCanceled)."""
        cancelled = self._task is not None and not self._task.done()
        if cancelled and self._task is not None:
            self._task.cancel()
            log.info("log upload %s cancelled for a new request", self.current and self.current.request_id)
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        name = f"{self.client.cp_id}-{'security' if request.kind == LogKind.SECURITY else 'diagnostics'}-{stamp}.tar.gz"
        self.current = request
        self._task = asyncio.get_running_loop().create_task(self._run(request, name), name="ocpp-log-upload")
        return name, cancelled

    async def close(self) -> None:
        """Stop an upload under way (shutdown)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self, request: LogRequest, name: str) -> None:
        await self._tell(Upload.UPLOADING, request)
        data = await asyncio.to_thread(self.archive, request)
        for attempt in range(request.retries + 1):
            try:
                await asyncio.wait_for(asyncio.to_thread(upload, request.location, name, data), UPLOAD_TIMEOUT)
            except (TransferError, TimeoutError) as exc:
                log.warning("log upload to %s failed (attempt %d of %d): %s", redact(request.location), attempt + 1,
                            request.retries + 1, redact_secrets(str(exc)))
                if attempt < request.retries:
                    await asyncio.sleep(request.retry_interval)
                continue
            log.info("log %s (%d bytes) uploaded to %s", name, len(data), redact(request.location))
            await self._tell(Upload.UPLOADED, request)
            return
        await self._tell(Upload.FAILED, request)

    async def _tell(self, state: Upload, request: LogRequest) -> None:
        self.state = state
        message = self.client.adapter.log_status_of(state, request)
        if message is not None:
            await self.client.send(message)

    # --------------------------------------------------------------- the archive

    def archive(self, request: LogRequest) -> bytes:
        """The ``.tar.gz`` for ``request`` (runs in a thread)."""
        parts: dict[str, str]
        if request.kind == LogKind.SECURITY:
            parts = {"security.json": json.dumps(self.client.security_events.log(), indent=1)}
        else:
            parts = {"journal.txt": journal(request.since, request.until),
                     "frames.txt": "\n".join(f"{iso_utc(datetime.fromtimestamp(t).astimezone())} {d} "
                                             f"{redact_secrets(text)}" for t, d, text in list(RECENT_FRAMES)),
                     "config.json": json.dumps(self._config(), indent=1, default=str),
                     "faults.json": json.dumps(self.faults(), indent=1, default=str)}
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
            for member, text in parts.items():
                raw = text.encode()
                info = tarfile.TarInfo(member)
                info.size, info.mtime = len(raw), int(time.time())
                tar.addfile(info, io.BytesIO(raw))
        return buffer.getvalue()

    def _config(self) -> dict[str, Any]:
        config = dataclasses.asdict(self.client.config)
        ocpp = config["ocpp"]
        for key in _SECRET_KEYS:
            if ocpp.get(key):
                ocpp[key] = "(removed)"
        ocpp["csms_url"] = redact(ocpp["csms_url"])
        model = self.client.model
        variables = {str(ref): model.get(ref) for ref, spec in model.variables.items() if spec.mutability != WRITE_ONLY}
        return {"config": config, "variables": variables}


def journal(since: datetime | None, until: datetime | None) -> str:
    """The service's journal for the window, or why there is none."""
    command = shutil.which("journalctl")
    if command is None:
        return "journalctl is not on this system: the log went to the terminal that ran the station\n"
    args = [command, "--no-pager", "-o", "short-iso-precise", "-u", UNIT]
    if since is not None:
        args += ["--since", since.astimezone().strftime("%Y-%m-%d %H:%M:%S")]
    if until is not None:
        args += ["--until", until.astimezone().strftime("%Y-%m-%d %H:%M:%S")]
    try:
        done = subprocess.run(args, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"journalctl failed: {exc}\n"
    return redact_secrets(done.stdout or done.stderr or "the journal has nothing for this window\n")
