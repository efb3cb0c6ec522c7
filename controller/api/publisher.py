"""The charger's status, published: each second a sample for the chart, each change an event, and status.json.

Runs in every daemon (API or not): ``evse status`` reads ``<state_dir>/status.json`` when no API answers, and the
session history records every ended session. Subscribers (the API's event streams) get ``(event, data)`` pairs:
``status`` (the whole station, when something a person would notice changed), ``sample`` (the chart's second)
and ``change`` (one line saying what happened).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from controller.api.history import SessionHistory
from controller.api.snapshot import Samples, station_status
from controller.domain.events import (
    CardRead,
    Event,
    StatusChanged,
    TransactionEnded,
    TransactionStarted,
)

log = logging.getLogger(__name__)

STATUS_FILE = "status.json"
#: status.json is rewritten at once when a status changes, and otherwise at most this often (the readings move
#: every second; the state directory is often an SD card).
FILE_REFRESH = 30.0
#: Sessions are pruned from the history this often.
PRUNE_INTERVAL = 3600.0
CHANGES_KEPT = 100

Subscriber = Callable[[str, dict[str, Any]], None]


def describe(event: Event) -> str | None:
    """One line for the page's event list, or None for events a person would not look for."""
    if isinstance(event, StatusChanged):
        where = "station" if event.evse_id == 0 else f"connector {event.evse_id}"
        extra = f" ({event.fault.info.code}{': ' + event.detail if event.detail else ''})" if event.fault else ""
        return f"{where} is {event.status.value}{extra}"
    if isinstance(event, TransactionStarted):
        tx = event.transaction
        return f"connector {tx.evse_id}: transaction started for {tx.id_token.value} at {tx.meter_start_wh} Wh"
    if isinstance(event, TransactionEnded):
        tx = event.transaction
        energy = (tx.meter_stop_wh or tx.meter_start_wh) - tx.meter_start_wh
        reason = tx.stop_reason.value if tx.stop_reason else "Other"
        return f"connector {tx.evse_id}: transaction ended ({reason}), {energy} Wh"
    if isinstance(event, CardRead):
        verdict = "accepted" if event.accepted else "refused"
        return f"card {event.uid} {verdict}: {event.detail}"
    return None


class StatusPublisher:
    """Samples the running app each second and tells subscribers what changed."""

    def __init__(self, app: Any, version: str) -> None:
        self.app = app
        self.version = version
        self.samples = Samples()
        self.history = SessionHistory(app.state_dir, app.config.api.history_days)
        self.subscribers: list[Subscriber] = []
        #: The newest change lines, for a page that opens after they happened.
        self.changes: deque[dict[str, Any]] = deque(maxlen=CHANGES_KEPT)
        self.status: dict[str, Any] = {}
        self._task: asyncio.Task[None] | None = None
        self._changed = asyncio.Event()
        self._written_at = float("-inf")
        self._written_key: str = ""

    def start(self) -> None:
        """Subscribe to the station and start the once-a-second sampling."""
        self.app.station.subscribe(self._on_event)
        self.status = station_status(self.app, self.version)
        self._task = asyncio.create_task(self._run(), name="status-publisher")

    async def stop(self) -> None:
        """Stop sampling; the last status stays in status.json (marked as stopped)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self.status["stopped"] = True
        self._write(force=True)
        self.history.close()

    def current(self) -> dict[str, Any]:
        """The station's status now (what a request gets; the stream's copy may be up to a second old)."""
        if self._task is not None and not self._task.done():
            self.status = station_status(self.app, self.version)
        return self.status

    def _on_event(self, event: Event) -> None:
        self.history.on_event(event)
        line = describe(event)
        if line is not None:
            change = {"t": round(time.time(), 1), "text": line}
            self.changes.append(change)
            self._send("change", change)
            self._changed.set()

    def _send(self, kind: str, data: dict[str, Any]) -> None:
        for subscriber in list(self.subscribers):
            subscriber(kind, data)

    async def _run(self) -> None:
        pruned = time.monotonic()
        while True:
            # asyncio.timeout, not wait_for: 3.11's wait_for can swallow a cancel that meets the event's wake-up
            # (events fire while the app stops), and this loop would never end.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1.0):
                    await self._changed.wait()
            self._changed.clear()
            await asyncio.sleep(0.05)  # let the rest of a burst of events land first
            self.status = station_status(self.app, self.version)
            self._send("status", self.status)
            self._send("sample", self.samples.add(self.status))
            self._write()
            if time.monotonic() - pruned > PRUNE_INTERVAL:
                pruned = time.monotonic()
                self.history.prune()

    def _write(self, *, force: bool = False) -> None:
        # What a person would notice changing: statuses, faults, transactions, the CSMS link (not the readings).
        key = json.dumps([self.status.get("csms", {}).get("connected"), self.status.get("stopped")]
                         + [(e["status"], e["faults"], e["warnings"], e["transaction"] and e["transaction"]["id"])
                            for e in self.status.get("evses", [])])
        if not force and key == self._written_key and time.monotonic() - self._written_at < FILE_REFRESH:
            return
        path = Path(self.app.state_dir) / STATUS_FILE
        tmp = path.with_name(path.name + ".tmp")
        try:
            tmp.write_text(json.dumps(self.status, indent=1))
            os.replace(tmp, path)  # no fsync: a status lost to a power cut is rewritten within a second of start
        except OSError as exc:
            log.warning("cannot write %s: %s; evse status will ask the API instead", path, exc.strerror or exc)
        self._written_key, self._written_at = key, time.monotonic()
