"""``evse-hil perf --faults``: reaction time per fault kind, two connectors charging, OCPP and meters busy.

The socket build (``hil.benchconfig``) runs with both connectors. Connector 2
charges throughout; connector 1 is started remotely, faulted, recovered and
started again, ``trials`` times per kind. Meanwhile both meters are polled
every 100 ms, MeterValues go out every second per connector, and the built-in
CSMS sends a GetLocalListVersion every 20 ms, so the loop thread is never idle.

What is measured, all from monotonic times the bench and the supervisor recorded:

- ``short``, ``adc``, ``diode``, ``rcm``, ``lock``: the fault reaches the station's input
  the moment the bench injects it; the figure is injection -> contactor coil
  open, through the ADC polls, debounce, GPIO callbacks and the supervisor.
- ``weld``: the EV pauses (C -> B), the coil opens, the mirror contact stays
  closed; the figure is the end of ``feedback_delay`` -> fault latched (there
  is nothing left to open; the latch blocks the next close).
- ``overcurrent``, ``meter``, ``temp``: policies decide after a configured time
  (two overcurrent grace periods, the meter loss timeout, a temperature poll).
  ``reaction`` is the decision (the supervisor's stamp on entering
  ``raise_fault``) -> contactor coil open; ``detection`` is injection ->
  decision, reported beside the policy's configured wait and poll interval.

Mock GPIO calls edge callbacks in the thread that drives the pin, so ``rcm``
and ``lock`` here exclude the edge-detection latency of a real GPIO backend.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from controller.app import App
from controller.config import Config
from controller.domain.faults import Fault
from controller.domain.types import IdToken, IdTokenType
from controller.tasks import until
from hil.benchconfig import socket_config
from hil.perf import csms_load, summarise
from hil.simhw import sim_of

INSTANT = ("short", "adc", "diode", "rcm", "lock")
DECIDED = {"overcurrent": Fault.OVERCURRENT, "meter": Fault.METER_COMM_LOST, "temp": Fault.OVER_TEMPERATURE}
KINDS = (*INSTANT, "weld", *DECIDED)
CP = "TEST-CP"


def bench_config() -> Config:
    """Both sockets, policy timings short enough for hundreds of trials."""
    return socket_config(2, connector={"overcurrent_grace": 0.1, "meter": {"loss_timeout": 0.2}},
                         ocpp={"meter_value_sample_interval": 1})


def _raised(app: App, fault: Fault, since: float) -> float | None:
    """When the supervisor entered raise_fault for connector 1's ``fault`` (its own monotonic stamp)."""
    return next((t for t, cid, f in list(app.supervisor.history) if cid == 1 and f == fault and t >= since), None)


@contextlib.asynccontextmanager
async def _busy_charger(state_dir: Path) -> AsyncIterator[App]:
    app = App(bench_config(), state_dir=state_dir)
    await app.start()
    try:
        assert app.ocpp is not None
        sim = sim_of(app)
        await asyncio.wait_for(app.ocpp.connected.wait(), 15)
        async with csms_load(app):
            sim.evs[2].plug()
            if not await until(lambda: app.status(2) == "Preparing", 5) or not app.station.remote_start(
                    IdToken("0C0000FF", IdTokenType.CENTRAL), 2):
                raise RuntimeError(f"connector 2 did not start (status {app.status(2)})")
            if not await until(lambda: app.status(2) == "Charging", 5):
                raise RuntimeError(f"connector 2 is not charging (status {app.status(2)})")
            yield app
    finally:
        await app.stop()


async def _charge(app: App, tag: str) -> None:
    sim = sim_of(app)
    ev = sim.evs[1]
    if not ev.plugged:
        ev.plug()
    if not await until(lambda: app.status(1) == "Preparing", 5):
        raise RuntimeError(f"connector 1 not ready (status {app.status(1)}, faults {app.supervisor.faults(1)})")
    if not app.station.remote_start(IdToken(tag, IdTokenType.CENTRAL), 1):
        raise RuntimeError(f"remote start refused (status {app.status(1)})")
    if not await until(lambda: sim.contactors[1].closed, 5):
        raise RuntimeError(f"contactor 1 did not close (blocked by {app.supervisor.blocked_by(1)})")
    await asyncio.sleep(random.uniform(0.01, 0.03))  # a random phase against every poll


async def _recover(app: App, kind: str) -> None:
    sim = sim_of(app)
    sim.inject(kind, 1, False)
    sim.evs[1].set_mode("auto")
    sim.evs[1].unplug()
    if not await until(lambda: app.status(1) == "Available", 5):
        raise RuntimeError(f"connector 1 did not recover from {kind} (status {app.status(1)})")
    await asyncio.sleep(0.06)  # the lock's rate limit before the next session's move


async def measure_kind(app: App, kind: str, trials: int, keep: bool = False) -> dict[str, Any]:
    """``trials`` faults of one kind on connector 1; figures as described in the module docstring (with
    ``keep``, every sample too)."""
    sim = sim_of(app)
    timeline = sim.timeline
    reaction: list[float] = []
    detection: list[float] = []
    for i in range(trials):
        await _charge(app, f"{0x0D000000 + i:08X}")
        since = time.monotonic()
        if kind == "weld":
            sim.inject("weld", 1, True)
            sim.evs[1].set_mode("B")
            if not await until(lambda: Fault.CONTACTOR_WELDED in app.supervisor.faults(1), 2):
                raise RuntimeError("weld not detected")
            opened = timeline.first("contactor", 1, "open", since)
            raised = _raised(app, Fault.CONTACTOR_WELDED, since)
            assert opened is not None and raised is not None
            delay = app.config.connector[0].contactor.feedback_delay
            reaction.append(raised - (opened.t + delay))
        else:
            sim.inject(kind, 1, True)
            if not await until(lambda: not sim.contactors[1].closed, 5):
                raise RuntimeError(f"contactor 1 did not open on {kind}")
            injected = timeline.first("fault", 1, kind, since)
            opened = timeline.first("contactor", 1, "open", since)
            assert injected is not None and opened is not None
            if kind in DECIDED:
                raised = _raised(app, DECIDED[kind], since)
                if raised is None:
                    raise RuntimeError(f"{kind}: the contactor opened without the fault being raised")
                detection.append(raised - injected.t)
                reaction.append(opened.t - raised)
            else:
                reaction.append(opened.t - injected.t)
        if not await until(lambda: app.status(1) == "Faulted", 2):
            raise RuntimeError(f"{kind}: connector 1 not Faulted (status {app.status(1)})")
        await _recover(app, kind)
        timeline.clear()
    result: dict[str, Any] = {"reaction": summarise(reaction, keep=keep)}
    if detection:
        result["detection"] = summarise(detection, keep=keep)
        c = app.config.connector[0]
        # What the policy waits by design; polling adds up to one meter poll (two for overcurrent's two stages).
        result["configured_wait_s"] = {"overcurrent": 2 * c.overcurrent_grace, "meter": c.meter.loss_timeout,
                                       "temp": 0.0}[kind]
        result["poll_s"] = c.temperature.poll_interval if kind == "temp" else c.meter.poll_interval
    return result


async def measure_faults(trials: int, kinds: tuple[str, ...] = KINDS, keep: bool = False) -> dict[str, Any]:
    """Every fault kind, ``trials`` each, on one busy two-connector charger (``keep``: with every sample)."""
    with tempfile.TemporaryDirectory(prefix="evse-faultperf-") as state:
        async with _busy_charger(Path(state)) as app:
            results = {}
            for kind in kinds:
                results[kind] = await measure_kind(app, kind, trials, keep)
                if app.status(2) != "Charging":  # the load this benchmark promises: connector 2 charges throughout
                    raise RuntimeError(f"connector 2 stopped charging during the {kind} trials ({app.status(2)})")
            csms = sim_of(app).csms
            assert csms is not None
            results["load"] = {
                "connector_2_status": app.status(2),
                "ocpp_frames": len(csms.frames),
                "meter_polls_per_s_per_connector": round(1 / app.config.connector[0].meter.poll_interval, 1),
            }
            return results
