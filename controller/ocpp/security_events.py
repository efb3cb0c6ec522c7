"""Security events (SecurityEventNotification of 2.0.1 and the 1.6 whitepaper): kept on disk until the CSMS has
each, sent in order, once, and recorded in the security log that GetLog SecurityLog uploads.

The same kind again before the first went out (a TLS failure at every reconnect) is kept once, and at most the
newest :data:`MAX_KEPT` are kept; the log keeps every one, the newest :data:`LOG_KEPT`.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

from controller.clock import Clock, iso_utc
from controller.storage import Store

SETTING, MAX_KEPT = "security.events", 100
#: The security log (GetLog SecurityLog): every event recorded, delivered or not, the newest LOG_KEPT.
LOG_SETTING, LOG_KEPT = "security.log", 500

Message = tuple[str, dict[str, Any]]


class SecurityEvents:
    """The pending security events of one station."""

    def __init__(self, store: Store, clock: Clock, spell: Callable[[dict[str, str]], Message] | None,
                 send: Callable[[Message], Awaitable[dict[str, Any] | None]]) -> None:
        self.store = store
        self.clock = clock
        self._spell = spell
        self._send = send
        self._lock = asyncio.Lock()

    def pending(self) -> list[dict[str, str]]:
        """The events not yet delivered, oldest first."""
        events: list[dict[str, str]] = json.loads(self.store.get_setting(SETTING) or "[]")
        return events

    def log(self) -> list[dict[str, str]]:
        """The security log: the events recorded, oldest first."""
        events: list[dict[str, str]] = json.loads(self.store.get_setting(LOG_SETTING) or "[]")
        return events

    def keep(self, kind: str) -> bool:
        """Keep an event of ``kind`` that happened now; False when it is not kept (no such message, or the same
        kind is already waiting)."""
        if self._spell is None:
            return False
        event = {"type": kind, "timestamp": iso_utc(self.clock.utcnow())}
        self.store.set_setting(LOG_SETTING, json.dumps([*self.log(), event][-LOG_KEPT:]))
        pending = self.pending()
        if pending and pending[-1]["type"] == kind:
            return False
        pending.append(event)
        self.store.set_setting(SETTING, json.dumps(pending[-MAX_KEPT:]))
        return True

    async def deliver(self) -> None:
        """Send the pending events one after another; stops at the first that does not go out (the next
        connection sends it). One sender at a time, so an event goes out once."""
        spell = self._spell
        async with self._lock:
            while spell is not None:
                pending = self.pending()
                if not pending or await self._send(spell(pending[0])) is None:
                    return
                rest = self.pending()
                self.store.set_setting(SETTING, json.dumps(rest[1:] if rest[:1] == pending[:1] else rest))
