"""One OCPP-J connection: the frame checks in front of the ``ocpp`` package's routing, and the station's own CALLs.

Incoming CALLs are checked (:mod:`controller.ocpp.framing`) and, when they pass, handed to the ``ocpp`` package,
which routes them to the version's handlers; one that fails gets its CALLERROR and the connection carries on. A
CALLRESULT or CALLERROR reaches the CALL it answers, or, when the station is waiting for no such answer, is
logged and dropped: never answered, never queued. While a BootNotification is Rejected the station answers no
CALL, but still reads the answer to its own next BootNotification.

The station's own CALLs go out one at a time (OCPP-J allows one outstanding CALL per direction) as wire JSON;
an answer that is a CALLERROR, breaks its schema or does not come in time raises :class:`CallFailed`, which
callers treat as a failed attempt: the connection stays up.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
import uuid
from collections import deque
from collections.abc import Callable
from typing import Any

from controller.ocpp.framing import CALL, CALLERROR, CallError, Frame, Rules, bounded

log = logging.getLogger(__name__)
# Every frame, both ways; quiet unless debugging.
frame_log = logging.getLogger("controller.ocpp.frames")
#: The last frames both ways, (wall time, "in"/"out", text), for the diagnostics upload (secrets masked there).
RECENT_FRAMES: deque[tuple[float, str, str]] = deque(maxlen=2000)


_VALUE = re.compile(r'("attributeValue"\s*:\s*|\battribute_value\W+)("(?:[^"\\]|\\.)*"|\'[^\']*\')')
_BASIC = re.compile(r"(Authorization:\s*Basic\s+)\S+", re.IGNORECASE)
#: 1.6 ChangeConfiguration of AuthorizationKey: its value, in a frame and in the ocpp package's own logs.
_KEY_VALUE = re.compile(r'(["\']value["\']\s*:\s*)("(?:[^"\\]|\\.)*"|\'[^\']*\')')


def redact_secrets(text: str) -> str:
    """``text`` fit for a log: no BasicAuthPassword or AuthorizationKey value (a frame that names it) and no
    Basic credentials."""
    if "BasicAuthPassword" in text:
        text = _VALUE.sub(r'\1"***"', text)
    if "AuthorizationKey" in text:
        text = _KEY_VALUE.sub(r'\1"***"', text)
    return _BASIC.sub(r"\1***", text)


class SecretFilter(logging.Filter):
    """On a log handler: every record passes with its secrets masked (the ocpp and websockets debug logs too)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact_secrets(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


class CallFailed(Exception):
    """A CALL of the station's got no usable answer: a CALLERROR, an invalid answer, or none in time."""

    def __init__(self, action: str, reason: str, code: str | None = None, *, final: bool = False) -> None:
        super().__init__(f"{action}: {reason}")
        self.action = action
        self.code = code
        #: Trying again cannot help (the station's own request is invalid): give it up at once.
        self.final = final


class Connection:
    """Mixed into a version's ``ocpp`` ChargePoint: checked routing in, one-at-a-time CALLs out."""

    rules: Rules
    route_map: dict[str, Any]
    _connection: Any

    def setup(self, response_timeout: float, silent: Callable[[], bool]) -> None:
        """Set the answer timeout and the predicate that silences the station (boot Rejected)."""
        self._response_timeout = response_timeout
        self._silent = silent
        self._lock = asyncio.Lock()
        self._waiting: dict[str, asyncio.Future[Frame]] = {}

    async def route_message(self, raw_msg: str | bytes) -> None:
        """Check one frame from the CSMS, then route, answer or drop it."""
        frame_log.debug("received %.1000s", raw_msg)
        RECENT_FRAMES.append((time.time(), "in", str(raw_msg)[:4000]))
        checked = self.rules.inspect(raw_msg, set(self.route_map))
        if checked is None:
            log.warning("ignoring a frame of unknown message type (or unreadable id) from the CSMS: %.200s", raw_msg)
            return
        if isinstance(checked, CallError):
            if not self._silent():
                log.warning("CSMS frame refused with %s (%s): %.200s", checked.code, checked.description, raw_msg)
                await self._send(checked.to_json())
            return
        if checked.message_type != CALL:
            self._answer(checked)
            return
        refused = self.limit_problem(checked, len(raw_msg))
        if refused is not None:
            log.warning("CSMS %s refused with %s (%s)", checked.action, refused.code, refused.description)
            await self._send(refused.to_json())
            return
        if self._silent():
            log.info("boot rejected: not answering %s until the retry interval ends", checked.action)
            return
        await super().route_message(raw_msg)  # type: ignore[misc]

    def limit_problem(self, frame: Frame, size: int) -> CallError | None:
        """A CALLERROR for a request over a limit the station reports (None: within every limit)."""
        return None

    def _answer(self, frame: Frame) -> None:
        waiting = self._waiting.get(frame.unique_id)
        if waiting is None or waiting.done():
            log.warning("dropping an answer to no request of the station's (id %.40s)", frame.unique_id)
            return
        waiting.set_result(frame)

    async def _send(self, message: str) -> None:
        frame_log.debug("send %.1000s", message)
        RECENT_FRAMES.append((time.time(), "out", message[:4000]))
        await self._connection.send(message)

    async def request(self, action: str, payload: dict[str, Any], *, unique_id: str | None = None) -> dict[str, Any]:
        """Send one CALL and return the answer's payload (wire JSON); raises CallFailed, or ConnectionClosed."""
        problem = self.rules.request_problem(action, payload)
        if problem is not None:
            raise CallFailed(action, f"the station's own request is invalid ({problem}); not sent", final=True)
        unique_id = unique_id or str(uuid.uuid4())
        async with self._lock:
            answer: asyncio.Future[Frame] = asyncio.get_running_loop().create_future()
            self._waiting[unique_id] = answer
            try:
                await self._send(json.dumps([CALL, unique_id, action, payload]))
                frame = await asyncio.wait_for(answer, self._response_timeout)
            except TimeoutError:
                raise CallFailed(action, f"no answer within {self._response_timeout:g} s") from None
            finally:
                self._waiting.pop(unique_id, None)
        if frame.message_type == CALLERROR:
            raise CallFailed(action, bounded(f"CALLERROR {frame.error_code}: {frame.payload}"), frame.error_code)
        if frame.payload is None:
            raise CallFailed(action, "a malformed answer")
        problem = self.rules.result_problem(action, frame.payload)
        if problem is not None:
            raise CallFailed(action, f"an answer that breaks its schema ({problem})")
        result: dict[str, Any] = frame.payload
        return json.loads(json.dumps(result, default=float))  # the schema check parsed decimals exactly
