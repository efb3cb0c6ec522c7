"""``evse-hil perf --dc``: DC timing figures with a CHAdeMO and a GB/T connector charging, OCPP and meters busy.

The two-outlet DC station (``config/sim-dc.toml`` with bench timings) charges on both connectors while
both DC meters are polled every 200 ms, MeterValues go out every second per connector and the built-in
CSMS sends a GetLocalListVersion every 20 ms.

- Periods: CHAdeMO's 0x108 and 0x109 (nominal 100 ms) and GB/T's CCS (50 ms), from the times the
  controller queued them for its CAN controller (the bus monitor), over ``cycles`` cycles each.
- Reactions, ``trials`` per kind and protocol, from a 1 ms probe of the simulated circuit and of the
  outlet's sequence, and the supervisor's own fault stamps:
  ``evsilent``: detection (the car's last frame -> the sequence stops; the protocol's timeout is in it),
  then detection -> current <= 5 A and detection -> contactors open;
  ``insulation``, ``estop``, ``overvoltage``: injection -> fault raised (detection: the IMD's read interval,
  a GPIO edge, a control step), then fault -> power stage off and fault -> contactors open;
  every kind: contactors open -> outlet below 60 V, and the whole reaction, injection -> contactors open (total).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import tempfile
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from controller.app import App
from controller.domain.faults import Fault
from controller.tasks import until
from hil.benchconfig import dc_config
from hil.perf import csms_load, summarise
from hil.script import parse_script
from hil.simhw import sim_of
from hil.steps import run_steps

FAULTS = {"insulation": Fault.INSULATION_FAULT, "estop": Fault.EMERGENCY_STOP, "overvoltage": Fault.OVER_VOLTAGE}
KINDS = ("evsilent", *FAULTS)
CARDS = {1: "04DC0001", 2: "04DC0002"}
CCS_PF = 0x12  # GB/T CCS, PGN 0x1200


@dataclass
class Probe:
    """1 ms samples of one outlet: (t, amps, outlet volts, stage on, sequence stopping)."""

    samples: list[tuple[float, float, float, bool, bool]] = field(default_factory=list)

    def first(self, since: float, test: Any) -> float | None:
        return next((s[0] for s in self.samples if s[0] >= since and test(s)), None)


class Prober:
    """Samples both outlets every millisecond in a thread of its own (only while reactions are measured)."""

    def __init__(self, app: App) -> None:
        self.app, self.probes = app, {cid: Probe() for cid in sim_of(app).dc}
        self._running = threading.Event()
        self._thread = threading.Thread(target=self._run, name="dc-probe", daemon=True)

    def _run(self) -> None:
        sim = sim_of(self.app)
        while self._running.is_set():
            now = time.monotonic()
            for cid, probe in self.probes.items():
                c = sim.dc[cid].circuit
                protocol: Any = self.app.protocols[cid]
                stopping = protocol.sequence.stop_cause is not None
                probe.samples.append((now, c.current, c.outlet_voltage, c.stage.on, stopping))
            time.sleep(0.001)

    def __enter__(self) -> Prober:
        self._running.set()
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._running.clear()
        self._thread.join(1.0)


@contextlib.asynccontextmanager
async def _busy_station(state_dir: Path) -> AsyncIterator[App]:
    app = App(dc_config(ocpp={"meter_value_sample_interval": 1}), state_dir=state_dir)
    await app.start()
    try:
        sim = sim_of(app)
        assert app.ocpp is not None
        await asyncio.wait_for(app.ocpp.connected.wait(), 15)
        for cid, outlet in sim.dc.items():
            outlet.quicken()
            if not await until(functools.partial(app.supervisor.holds, cid, "insulation"), 5):
                raise RuntimeError(f"connector {cid}: the IMD's self-test did not pass")
        async with csms_load(app):
            yield app
    finally:
        await app.stop()


async def _script(app: App, text: str) -> None:
    results = await run_steps(parse_script(text), sim_of(app))
    failed = [r for r in results if not r.ok]
    if failed:
        raise RuntimeError(f"bench step failed: {failed[0].step}: {failed[0].detail}")


async def _charge(app: App, cid: int) -> None:
    outlet = sim_of(app).dc[cid]
    outlet.set_soc(30.0)  # every trial a long way from the car's target
    await _script(app, f"plug {cid}; expect Preparing {cid} within 5; tap {CARDS[cid]}; "
                       f"expect Charging {cid} within 20")
    if not await until(lambda: outlet.circuit.current > 40, 20):
        raise RuntimeError(f"connector {cid}: no current")


async def _leave(app: App, cid: int) -> None:
    """Unplug once the outlet has finished its ending (a locked connector cannot be pulled), then wait for Available."""
    protocol: Any = app.protocols[cid]
    lock = sim_of(app).locks.get(cid)
    if not await until(lambda: not protocol.sequence.active and not (lock and lock.locked), 30):
        raise RuntimeError(f"connector {cid}: the session's ending did not finish ({protocol.sequence.phase})")
    await _script(app, f"unplug {cid}; expect Available {cid} within 10")


def _periods(times: list[float]) -> list[float]:
    return [b - a for a, b in itertools.pairwise(times)]


async def measure_periods(app: App, cycles: int, keep: bool = False) -> dict[str, Any]:
    """Both outlets charging for ``cycles`` CHAdeMO cycles (100 ms each): the frame periods."""
    timeline = sim_of(app).timeline
    for cid in (1, 2):
        await _charge(app, cid)
    timeline.clear()
    await asyncio.sleep(cycles * 0.1 + 0.5)
    sent = {cid: [(o.t, o.value.split()) for o in timeline.items("can", cid) if o.value.startswith("tx ")]
            for cid in (1, 2)}
    result = {name: summarise(_periods([t for t, (_, ident, _data) in sent[1] if ident == name])[:cycles], keep=keep)
              for name in ("108", "109")}
    ccs = [t for t, (_, ident, _data) in sent[2] if (int(ident, 16) >> 16) & 0xFF == CCS_PF]
    result["CCS"] = summarise(_periods(ccs)[:2 * cycles], keep=keep)
    for cid in (1, 2):
        await _script(app, f"tap {CARDS[cid]}; expect Finishing {cid} within 10")
        await _leave(app, cid)
    return result


async def _trial(app: App, cid: int, kind: str, prober: Prober) -> dict[str, float]:
    sim = sim_of(app)
    await _charge(app, cid)
    await asyncio.sleep(0.3)
    injected = sim.timeline.record("fault", cid, kind).t
    sim.dc[cid].inject(kind, True)
    probe = prober.probes[cid]
    if not await until(lambda: sim.timeline.first("contactor", cid, "open", injected) is not None, 10):
        raise RuntimeError(f"connector {cid}: contactors still closed after fault {kind}")
    found = sim.timeline.first("contactor", cid, "open", injected)
    assert found is not None
    opened = found.t
    await until(lambda: probe.first(opened, lambda s: s[2] < 60) is not None, 3)
    figures: dict[str, float] = {}
    if kind == "evsilent":
        detected = probe.first(injected, lambda s: s[4])
        assert detected is not None
        figures["detection"] = detected - injected
        low = probe.first(detected, lambda s: abs(s[1]) <= 5)
        if low is not None:
            figures["to_5A"] = low - detected
    else:
        detected = next((t for t, c, f in list(app.supervisor.history) if c == cid and f == FAULTS[kind]
                         and t >= injected), None)
        assert detected is not None, f"{kind} was never raised"
        figures["detection"] = detected - injected
        off = probe.first(detected, lambda s: not s[3])
        if off is not None:
            figures["stage_off"] = off - detected
    figures["contactors_open"] = opened - detected
    figures["total"] = opened - injected
    below = probe.first(opened, lambda s: s[2] < 60)
    if below is not None:
        figures["below_60V"] = below - opened
    sim.dc[cid].inject(kind, False)
    await _leave(app, cid)
    return figures


async def measure_dc(cycles: int, trials: int, kinds: tuple[str, ...] = KINDS, keep: bool = False) -> dict[str, Any]:
    """Every DC figure; see the module docstring (``keep``: with every sample, for histograms)."""
    with tempfile.TemporaryDirectory(prefix="evse-dcperf-") as state:
        async with _busy_station(Path(state)) as app:
            results: dict[str, Any] = {"periods": await measure_periods(app, cycles, keep), "reactions": {}}
            with Prober(app) as prober:
                for kind in kinds:
                    for cid, protocol in ((1, "chademo"), (2, "gbt")):
                        runs = []
                        for _ in range(trials):
                            runs.append(await _trial(app, cid, kind, prober))
                            for probe in prober.probes.values():
                                probe.samples.clear()  # each trial searches its own few seconds
                        names = sorted({k for r in runs for k in r})
                        results["reactions"][f"{kind} {protocol}"] = {
                            name: summarise([r[name] for r in runs if name in r], keep=keep) for name in names}
    return results
