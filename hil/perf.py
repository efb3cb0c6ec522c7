"""``evse-hil perf``: first figures, measured from what the bench observed.

- EV C -> B to contactor open: the EV simulator records when it changed the
  pilot voltage, the coil pin records when it dropped.
- Card tap to contactor closed, the EV waiting in B (a car that closes S2 as
  soon as it sees the PWM), with an online Authorize on loopback.
- A fault (CP shorted to PE) while charging to contactor open: the bench
  records when it shorted the pilot, the coil pin when it dropped.
- A charging profile's period boundary to the PWM showing its limit (the station's clock against the
  bench's monotonic one).
- Resident memory of a real ``evse run`` process after a session driven over
  its bench control socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from ocpp.v16 import call

from controller.app import App
from controller.charging.iec61851 import Iec61851
from controller.clock import iso_utc
from controller.config import Config
from controller.domain.types import IdToken, IdTokenType
from controller.tasks import until
from hal.pilot import current_for_duty
from hil.control import send_script
from hil.simhw import SimHardware, sim_of

TAG = "04A1B2C3"


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100.0 * len(ordered)))
    return ordered[rank - 1]


def summarise(values: list[float], *, keep: bool = False) -> dict[str, Any]:
    """p50/p99/max in milliseconds (and, with ``keep``, every sample for a histogram)."""
    ms = [v * 1000.0 for v in values]
    return {
        "n": len(ms),
        "p50_ms": round(statistics.median(ms), 3),
        "p99_ms": round(percentile(ms, 99), 3),
        "max_ms": round(max(ms), 3),
        **({"samples_ms": [round(v, 3) for v in ms]} if keep else {}),
    }


@contextlib.asynccontextmanager
async def csms_load(app: App) -> AsyncIterator[None]:
    """While the block runs, the built-in CSMS asks ``app`` a GetLocalListVersion every 20 ms (a busy link)."""
    csms = sim_of(app).csms
    assert csms is not None

    async def load() -> None:
        while True:
            await csms.call(app.config.station.id, call.GetLocalListVersion())
            await asyncio.sleep(0.02)

    task = asyncio.create_task(load(), name="ocpp-load")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task


@contextlib.asynccontextmanager
async def _connected_charger(config: Config, state_dir: Path) -> AsyncIterator[tuple[App, SimHardware]]:
    app = App(config, state_dir=state_dir)
    await app.start()
    try:
        assert app.ocpp is not None
        await asyncio.wait_for(app.ocpp.connected.wait(), 15)
        yield app, sim_of(app)
    finally:
        await app.stop()


async def measure_c_to_b(config: Config, state_dir: Path, trials: int, keep: bool = False) -> dict[str, Any]:
    """EV C -> B until the contactor opens, over ``trials`` pauses of one running session."""
    async with _connected_charger(config, state_dir) as (app, sim):
        timeline, ev = sim.timeline, sim.evs[1]
        ev.plug()
        sim.tap(TAG)
        if not await until(lambda: app.status(1) == "Charging", 10):
            raise RuntimeError(f"session did not start (status {app.status(1)})")
        latencies = []
        for _ in range(trials):
            ev.set_mode("C")
            if not await until(lambda: sim.contactors[1].closed, 5):
                raise RuntimeError("contactor did not close again after C")
            # A random phase against the pilot poll, as a real car would give.
            await asyncio.sleep(random.uniform(0.02, 0.05))
            since = time.monotonic()
            ev.set_mode("B")
            if not await until(lambda: not ev.pilot_state.requesting and not sim.contactors[1].closed, 1):
                raise RuntimeError("contactor did not open after B")
            pilot = timeline.first("pilot", 1, "B", since)
            opened = timeline.first("contactor", 1, "open", since)
            assert pilot is not None and opened is not None
            latencies.append(opened.t - pilot.t)
            timeline.clear()
        return summarise(latencies, keep=keep)


async def measure_tap_to_close(config: Config, state_dir: Path, trials: int, keep: bool = False) -> dict[str, Any]:
    """Card tap until the contactor closes, with the EV plugged and waiting in B."""
    async with _connected_charger(config, state_dir) as (app, sim):
        timeline, ev = sim.timeline, sim.evs[1]
        latencies = []
        for i in range(trials):
            tag = f"{0x04A10000 + i:08X}"
            ev.plug()
            if not await until(lambda: app.status(1) == "Preparing", 5):
                raise RuntimeError("plug-in not seen")
            await asyncio.sleep(random.uniform(0.05, 0.15))  # tap at a random phase of the reader's poll
            since = time.monotonic()
            sim.tap(tag)
            if not await until(lambda: sim.contactors[1].closed, 5):
                raise RuntimeError(f"contactor did not close after tap (status {app.status(1)})")
            tap = timeline.first("card", None, tag, since)
            closed = timeline.first("contactor", 1, "closed", since)
            assert tap is not None and closed is not None
            latencies.append(closed.t - tap.t)
            await asyncio.sleep(0.6)  # let the card leave the field
            sim.tap(tag)
            if not await until(lambda: app.status(1) == "Finishing", 5):
                raise RuntimeError("card stop not seen")
            ev.unplug()
            await until(lambda: app.status(1) == "Available", 5)
            await asyncio.sleep(0.6)
            timeline.clear()
        return summarise(latencies, keep=keep)


async def measure_fault_short(config: Config, state_dir: Path, trials: int, keep: bool = False) -> dict[str, Any]:
    """CP shorted to PE while charging until the contactor opens (sessions started remotely, in-process)."""
    async with _connected_charger(config, state_dir) as (app, sim):
        timeline, ev = sim.timeline, sim.evs[1]
        ev.plug()
        latencies = []
        for i in range(trials):
            if not app.station.remote_start(IdToken(f"{0x0C000000 + i:08X}", IdTokenType.CENTRAL), 1):
                raise RuntimeError(f"remote start refused (status {app.status(1)})")
            if not await until(lambda: sim.contactors[1].closed, 5):
                raise RuntimeError("contactor did not close")
            await asyncio.sleep(random.uniform(0.01, 0.03))
            since = time.monotonic()
            sim.inject("short", 1, True)
            if not await until(lambda: not sim.contactors[1].closed, 1):
                raise RuntimeError("contactor did not open on a CP short")
            injected = timeline.first("fault", 1, "short", since)
            opened = timeline.first("contactor", 1, "open", since)
            assert injected is not None and opened is not None
            latencies.append(opened.t - injected.t)
            sim.inject("short", 1, False)
            if not await until(lambda: app.status(1) == "Preparing", 5):
                raise RuntimeError(f"no recovery after the short (status {app.status(1)})")
            timeline.clear()
        return summarise(latencies, keep=keep)


async def measure_profile_boundary(config: Config, state_dir: Path, trials: int, keep: bool = False) -> dict[str, Any]:
    """A charging profile's period boundary (the station's clock) until the PWM shows the lower limit.

    Each trial installs a stack-level-1 TxDefaultProfile of 8 A for 0.5 s starting 0.7-1.0 s ahead, over a
    16 A one; the raise back to 16 A waits the (bench-shortened) 0.2 s raise interval.
    """
    async with _connected_charger(config, state_dir) as (app, sim):
        csms = sim.csms
        assert csms is not None and app.ocpp is not None
        cp_id = app.config.station.id
        iec = app.protocols[1]
        assert isinstance(iec, Iec61851)
        iec.pwm_raise_interval = 0.2
        ev = sim.evs[1]

        def amps(duty_percent: float) -> float | None:
            found = current_for_duty(duty_percent)
            return None if found is None else round(found, 1)

        def offered() -> float | None:
            return amps(ev.duty * 100.0)

        def profile(pid: int, level: int, amps: float, start: datetime, duration: int | None) -> Any:
            schedule = {"chargingRateUnit": "A", "startSchedule": iso_utc(start),
                        "chargingSchedulePeriod": [{"startPeriod": 0, "limit": amps}],
                        **({"duration": duration} if duration else {})}
            return call.SetChargingProfile(connector_id=1, cs_charging_profiles={
                "chargingProfileId": pid, "stackLevel": level, "chargingProfilePurpose": "TxDefaultProfile",
                "chargingProfileKind": "Absolute", "chargingSchedule": schedule})

        await csms.call(cp_id, profile(1, 0, 16.0, app.clock.utcnow() - timedelta(seconds=1), None))
        ev.plug()
        sim.tap(TAG)
        if not await until(lambda: app.status(1) == "Charging", 10):
            raise RuntimeError(f"session did not start (status {app.status(1)})")
        latencies = []
        for _ in range(trials):
            if not await until(lambda: offered() == 16.0, 5):
                raise RuntimeError("the PWM did not come back to 16 A")
            sim.timeline.clear()
            boundary = app.clock.utcnow() + timedelta(seconds=random.uniform(0.7, 1.0))
            at_boundary = time.monotonic() + (boundary - app.clock.utcnow()).total_seconds()
            await csms.call(cp_id, profile(2, 1, 8.0, boundary, 1))
            if not await until(lambda: offered() == 8.0, 3):
                raise RuntimeError("the PWM did not follow the profile to 8 A")
            lowered = next(o for o in sim.timeline.items("pwm", 1, at_boundary - 1.0)
                           if amps(o.value) == 8.0)
            latencies.append(lowered.t - at_boundary)
        return summarise(latencies, keep=keep)


def measure_memory(config_path: str | None) -> dict[str, float]:
    """RSS of a real ``evse run`` (simulated hardware) after one session run over ``evse-hil ctl``."""
    with tempfile.TemporaryDirectory(prefix="evse-perf-") as state:
        cmd = [sys.executable, "-m", "controller.cli", "run", "--state-dir", state, "--log-level", "warning"]
        if config_path:
            cmd += ["--config", config_path]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            sock = Path(state) / "bench.sock"
            deadline = time.monotonic() + 30
            while not sock.exists():
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("evse run did not open its bench socket")
                time.sleep(0.05)
            # The bench socket opens before the CSMS link is up; a tap before that is (rightly) refused.
            script = (
                f"wait 2; plug; tap {TAG}; expect Charging within 10; wait 3; tap {TAG}; expect Finishing; "
                "unplug; expect Available"
            )
            result = asyncio.run(send_script(Path(state), script))
            if not result["ok"]:
                raise RuntimeError(f"session over the bench socket failed: {result}")
            status = Path(f"/proc/{proc.pid}/status").read_text()
            rss_kb = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:"))
            return {"rss_mb": round(rss_kb / 1024.0, 1)}
        finally:
            proc.terminate()
            proc.wait(timeout=15)


async def run_perf(config: Config, config_path: str | None, trials: int, tap_trials: int,
                   memory: bool, keep: bool = False) -> dict[str, Any]:
    """Every figure, as one dict (``keep``: the latencies with every sample, for histograms)."""
    with tempfile.TemporaryDirectory(prefix="evse-perf-") as state:
        results: dict[str, Any] = {
            "ev_c_to_b_contactor_open": await measure_c_to_b(config, Path(state), trials, keep),
            "tap_to_contactor_closed": await measure_tap_to_close(config, Path(state), tap_trials, keep),
            "fault_cp_short_to_contactor_open": await measure_fault_short(config, Path(state), trials, keep),
            "profile_boundary_to_pwm": await measure_profile_boundary(config, Path(state), tap_trials, keep),
        }
    if memory:
        results["daemon_memory_after_session"] = await asyncio.to_thread(measure_memory, config_path)
    results["machine"] = {"cpus": os.cpu_count(), "python": sys.version.split()[0]}
    return results
