"""``evse-hil run``: the controller on simulated hardware plus a script, and a JSON summary."""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from controller import version
from controller.app import App
from controller.clock import iso_utc
from controller.config import Config
from controller.domain.events import Event, StatusChanged, TransactionEnded, TransactionStarted
from hal.meter import MeterReading
from hil.csms import Frame
from hil.csms201 import transaction_summary
from hil.script import Step
from hil.simhw import sim_of
from hil.steps import run_steps, status_counts
from hil.timeline import Timeline

log = logging.getLogger(__name__)

CONNECT_WAIT = 15.0


class SessionRecorder:
    """Collects sessions and statuses from the station's events (with bench monotonic times)."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.sessions: list[dict[str, Any]] = []
        self.statuses: list[dict[str, Any]] = []
        app.station.subscribe(self._on_event)

    def _on_event(self, event: Event) -> None:
        now = self.app.clock.monotonic()
        if isinstance(event, StatusChanged):
            self.statuses.append({"t": now, "connector": event.evse_id, "status": event.status.value,
                                  "fault": event.fault.info.code if event.fault else None})
        elif isinstance(event, TransactionStarted):
            tx = event.transaction
            self.sessions.append({"transaction": tx.local_id, "connector": tx.evse_id, "id_tag": tx.id_token.value,
                                  "meter_start_wh": tx.meter_start_wh, "started_at": tx.started_at.isoformat()})
        elif isinstance(event, TransactionEnded):
            tx = event.transaction
            for session in self.sessions:
                if session["transaction"] == tx.local_id:
                    assert tx.meter_stop_wh is not None and tx.stopped_at is not None
                    session.update(meter_stop_wh=tx.meter_stop_wh, energy_wh=tx.meter_stop_wh - tx.meter_start_wh,
                                   stopped_at=tx.stopped_at.isoformat(),
                                   reason=tx.stop_reason.value if tx.stop_reason else None)


def report_head(config: Config | None, script: str) -> dict[str, Any]:
    """What every report starts with: which script, config, charger and package version it is about."""
    charger = None if config is None else {
        "id": config.station.id, "ocpp": config.ocpp.version,
        "connectors": [{"id": c.id, "kind": c.kind} for c in config.connector]}
    return {"script": script, "config": None if config is None else config.source, "charger": charger,
            "version": version()}


def error_report(config: Config | None, script: str, error: str) -> dict[str, Any]:
    """A script or config that cannot run, in the report's shape (a CI parser always gets the same JSON)."""
    return {"ok": False, **report_head(config, script), "error": error, "steps": [],
            "counts": status_counts([])}


async def run_script(
    config: Config, steps: list[Step], *, state_dir: Path, csms_url: str | None = None,
    connect_wait: float = CONNECT_WAIT, timeout: float | None = None, script: str = "<command line>",
    rejected: set[str] | None = None,
) -> dict[str, Any]:
    """Start the charger, wait for the CSMS link, run the steps (all of them within ``timeout`` s), stop, and
    summarise. The built-in CSMS answers Invalid for the ``rejected`` tags."""
    app = App(config, state_dir=state_dir, csms_url=csms_url)
    recorder = SessionRecorder(app)
    started_at = app.clock.utcnow()
    await app.start()
    try:
        assert app.ocpp is not None
        sim = sim_of(app)
        if sim.csms is not None:
            sim.csms.rejected_tags |= rejected or set()
        for cid, poller in app.meters.items():
            poller.listeners.append(functools.partial(_record_reading, sim.timeline, cid))
        reached = True
        try:
            await asyncio.wait_for(app.ocpp.connected.wait(), connect_wait)
        except TimeoutError:
            log.warning("CSMS not reached within %.0f s; running the script offline", connect_wait)
            reached = False
        t0 = sim.timeline.t0
        begun = time.monotonic()
        deadline = None if timeout is None else begun + timeout
        results = await run_steps(steps, sim, deadline=deadline)
        took = time.monotonic() - begun
        reached = reached or app.ocpp.link.connections > 0
    finally:
        await app.stop()
    assert app.ocpp is not None
    for status in recorder.statuses:
        status["t"] = round(status["t"] - t0, 6)
    csms: dict[str, Any] = {"url": app.ocpp.display_url, "built_in": sim.csms is not None}
    if sim.csms is not None:
        csms.update(
            frames=len(sim.csms.frames),
            messages=ocpp_messages(sim.csms.frames, t0),
            timestamp_errors=sim.csms.timestamp_errors,
            # 1.6 transactions by the CSMS's id, 2.0.1 ones by the station's.
            transactions=[asdict(t) | {"meter_values": len(t.meter_values)} for t in sim.csms.transactions.values()]
            + [transaction_summary(tx_id, events) for tx_id, events in sim.csms.events.items()],
        )
    summary: dict[str, Any] = {
        "ok": all(r.ok for r in results) and reached,
        **report_head(config, script),
        "started_at": iso_utc(started_at),
        "duration": round(took, 6),  # the steps' wall time, from the first to the last
        "counts": status_counts(results),
        "steps": [r.as_json(t0) for r in results],
        "sessions": recorder.sessions,
        "energy_wh": sum(s.get("energy_wh", 0) for s in recorder.sessions),
        "statuses": recorder.statuses,
        "csms": csms,
        "timeline": sim.timeline.as_json(),
    }
    if not reached:
        summary["error"] = f"never reached the CSMS at {app.ocpp.display_url}"
    return summary


def _record_reading(timeline: Timeline, connector: int, _evse: Any, reading: MeterReading) -> None:
    """A meter reading on the timeline (``meter``: the highest phase current in A and the power in W)."""
    amps = max((a for a in reading.current if a is not None), default=None)
    timeline.record("meter", connector, {"A": amps, "W": reading.power_w},
                    t=reading.taken_at or None)


def ocpp_messages(frames: list[Frame], t0: float) -> list[dict[str, Any]]:
    """Every CALL the bench CSMS received or sent: time from ``t0``, ``in`` (from the station) or ``out``, action."""
    return [{"t": round(frame.t - t0, 6), "dir": frame.direction, "action": call[0]}
            for frame in frames if (call := frame.call()) is not None]
