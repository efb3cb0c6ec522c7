"""Scripted misbehaviour of the bench CSMS, for either OCPP version: what it does to a CALL before routing it.

A test (or a bench script) queues what the next CALLs of an action meet: a CALLRESULT payload whatever its schema
says (``bad_answers``), a CALLERROR InternalError or no answer at all (``fail_next``: "error" or "silence"), or a
CSMS too busy to answer for a while (``slow_answers``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hil.csms import CsmsSimulator

FAILURES = ("error", "silence")


class ScriptedAnswers:
    """Mixed into a version's central ChargePoint (before the ``ocpp`` package's class)."""

    _csms: CsmsSimulator
    _send: Callable[[str], Awaitable[None]]  # the ocpp package's ChargePoint sends with it

    async def route_message(self, raw_msg: str) -> None:
        """Misbehave as scripted for the next CALL of an action, else route it."""
        action, unique = None, None
        with contextlib.suppress(ValueError, IndexError, TypeError):
            message = json.loads(raw_msg)
            if message[0] == 2:
                action, unique = message[2], message[1]
        answers = self._csms.bad_answers.get(action or "")
        if answers:
            await self._send(json.dumps([3, unique, answers.pop(0)]))
            return
        failures = self._csms.fail_next.get(action or "")
        if failures:
            if failures.pop(0) == "error":
                await self._send(json.dumps([4, unique, "InternalError", "the bench CSMS fails this CALL", {}]))
            return  # "silence": the station waits for an answer that never comes
        if action in self._csms.slow_answers:
            await asyncio.sleep(self._csms.slow_answers[action])  # a busy CSMS: everything after waits too
        await super().route_message(raw_msg)  # type: ignore[misc]
