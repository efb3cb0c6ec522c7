"""``evse-hil run --bench bench.toml``: scripts against a charger that runs its own ``evse run`` elsewhere.

The bench serves the buses it shares with the charger (:mod:`hil.benchfile`) and sees what they show: the
charger's OCPP messages at the bench CSMS (its statuses are what ``expect STATUS`` waits for), the cards it
presents, the meter readings it serves, and on a DC connector with a ``[[car]]`` the car's side of the charge
sequence (:mod:`hil.benchcar`). Steps that need the bench's EV on a pilot (``ev``, ``lag``, ``overdraw``, and
``plug`` without a ``[[car]]``) and faults of devices it does not simulate are refused when the script is read;
``draw AMPS [N]`` sets what connector N's meter simulator measures; ``fault meter`` / ``fault reader`` break them,
``fault evsilent N`` / ``fault cc1 N`` make the bench's car misbehave.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any

from controller import version
from controller.clock import iso_utc
from controller.tasks import until
from hil.benchcar import BenchCar
from hil.benchfile import BenchFile
from hil.csms import CsmsSimulator
from hil.meter import MeterSimulator
from hil.readers import Pn532Simulator, SerialLine
from hil.runner import ocpp_messages
from hil.script import ScriptError, Step
from hil.steps import run_steps, status_counts
from hil.timeline import Timeline

#: The steps a bench without an EV on the pilot can run (``plug`` and ``unplug`` where it has a DC car).
REMOTE_VERBS = ("tap", "draw", "wait", "expect", "expect_csms", "csms", "fault", "clear", "plug", "unplug")
REMOTE_FAULTS = ("meter", "reader")
#: The 2.0.1 chargingStates a script's status names as they are (EVConnected and Idle: not charging yet).
OCCUPIED_AS = ("Charging", "SuspendedEV", "SuspendedEVSE")
#: What the bench's DC car can do wrong.
CAR_FAULTS = ("evsilent", "cc1")


def check_remote_script(steps: list[Step], bench: BenchFile) -> None:
    """Refuse the steps this bench cannot do, before anything starts."""
    meters, cars = {m.connector for m in bench.meters}, {c.connector for c in bench.cars}
    for step in steps:
        where = f"line {step.line}: " if step.line else ""
        car_step = step.verb in ("plug", "unplug")
        if step.verb not in REMOTE_VERBS or (car_step and step.args[0] not in cars):
            runs = ", ".join(v for v in REMOTE_VERBS if "_" not in v and v not in ("plug", "unplug"))
            raise ScriptError(f"{where}step {step.text!r}: a remote bench has no EV on the charger's pilot "
                              f"(plug the car by hand; a DC connector's car is a [[car]] in {bench.source}); "
                              f"it runs {runs}")
        kinds = REMOTE_FAULTS + (CAR_FAULTS if step.verb in ("fault", "clear") and step.args[1] in cars else ())
        if step.verb in ("fault", "clear") and step.args[0] not in kinds:
            raise ScriptError(f"{where}step {step.text!r}: a remote bench breaks only what it simulates: "
                              f"{', '.join(kinds)}")
        needs_meter = step.verb == "draw" or (step.verb in ("fault", "clear") and step.args[0] == "meter")
        if needs_meter and step.args[1] not in meters:
            raise ScriptError(f"{where}step {step.text!r}: {bench.source} has no [[meter]] for connector "
                              f"{step.args[1]}")
        reader_step = step.verb == "tap" or (step.verb in ("fault", "clear") and step.args[0] == "reader")
        if reader_step and bench.reader == "none":
            raise ScriptError(f"{where}step {step.text!r}: {bench.source} has no [reader]")


class _RemoteConnector:
    """What a connector's steps reach on a remote bench: ``draw`` its meter simulator, ``plug``/``unplug`` its car."""

    def __init__(self, meter: MeterSimulator | None, car: BenchCar | None) -> None:
        self._meter, self._car = meter, car

    def draw(self, amps: float) -> None:
        if self._meter is None:
            raise RuntimeError("no meter simulator for this connector")
        self._meter.set_current(amps)

    def plug(self) -> None:
        if self._car is None:
            raise RuntimeError("no [[car]] for this connector")
        self._car.plug()

    def unplug(self) -> None:
        if self._car is None:
            raise RuntimeError("no [[car]] for this connector")
        self._car.unplug()


class RemoteBench:
    """The bench side of a charger elsewhere: its CSMS, reader and meters, as a script's bench."""

    def __init__(self, bench: BenchFile, *, pin_factory: Any = None) -> None:
        self.file = bench
        self.timeline = Timeline()
        self.csms = CsmsSimulator(host=bench.csms_host, port=bench.csms_port)
        self.reader: Pn532Simulator | None = None
        self._charger: str | None = None
        self.meters: dict[int, MeterSimulator] = {m.connector: MeterSimulator(m.model, phases=m.phases,
                                                                               unit=m.address)
                                                  for m in bench.meters}
        self._pin_factory = pin_factory
        self.cars: dict[int, BenchCar] = {}

    async def start(self) -> None:
        """Serve: the CSMS, the reader on its serial port, each meter on its port or TCP address."""
        await self.csms.start()
        if self.file.reader == "pn532":
            self.reader = Pn532Simulator(SerialLine(self.file.reader_port, self.file.reader_baudrate))
            await self.reader.start()
        for spec in self.file.meters:
            meter = self.meters[spec.connector]
            if spec.tcp:
                host, _, port = spec.tcp.rpartition(":")
                await meter.start_tcp(host, int(port))
            else:
                await meter.start_serial(spec.port, spec.baudrate)
        for car_spec in self.file.cars:  # the GPIO and the CAN interface open here: a wrong one raises
            car = self.cars[car_spec.connector] = BenchCar(car_spec, timeline=self.timeline,
                                                           pin_factory=self._pin_factory)
            car.start()

    async def stop(self) -> None:
        """Stop serving (what was started: this also cleans up after a start that failed halfway). The CSMS goes
        first, so the report ends with the script: the charger's answer to the car leaving is not in it."""
        try:
            await self.csms.stop()
        finally:
            try:
                for car in self.cars.values():  # a car mid-session winds it down first: off the loop
                    await asyncio.to_thread(car.stop)
            finally:
                for meter in self.meters.values():
                    await meter.stop()
                if self.reader is not None:
                    await self.reader.stop()

    def charger(self) -> str | None:
        """The id of the charger that connected to the bench CSMS first (kept through its reconnections)."""
        if self._charger is None:
            self._charger = next(iter(self.csms.connections), None)
        return self._charger

    def ev(self, connector_id: int) -> _RemoteConnector:
        return _RemoteConnector(self.meters.get(connector_id), self.cars.get(connector_id))

    def tap(self, uid: str) -> None:
        if self.reader is None:
            raise RuntimeError(f"{self.file.source} has no [reader]")
        self.timeline.record("card", None, uid.upper())
        self.reader.tap(uid)

    def status(self, connector_id: int) -> str:
        """The connector's status as the charger last reported it to the bench CSMS. A 2.0.1 charger's Occupied is
        told apart by its transaction's events, as a script names the states: Preparing (no transaction, or one
        not charging yet), Charging, SuspendedEV, SuspendedEVSE, Finishing (ended with the car still in)."""
        cp = self.charger()
        reported = [(t, s) for t, station, c, s, _ in self.csms.statuses if c == connector_id and station == cp]
        if not reported:
            return "Unknown"
        since, status = reported[-1]
        if status != "Occupied":
            return status
        for t, earlier in reversed(reported):  # a charger may repeat Occupied as its own states change
            if earlier != "Occupied":
                break
            since = t
        events = [(t, kind, state) for t, station, evse, kind, state in self.csms.charging_states
                  if station == cp and evse == connector_id]
        if not events:
            return "Preparing"
        at, kind, state = events[-1]
        if kind == "Ended":
            return "Finishing" if at >= since else "Preparing"  # before the car came: the last session's end
        return state if state in OCCUPIED_AS else "Preparing"

    def inject(self, kind: str, connector_id: int, active: bool) -> None:
        from pymodbus.constants import ExcCodes

        self.timeline.record("fault" if active else "clear", connector_id, kind)
        if kind in CAR_FAULTS:
            self.cars[connector_id].inject(kind, active)
        elif kind == "meter":
            self.meters[connector_id].refuse = ExcCodes.DEVICE_FAILURE if active else None
        elif kind == "reader" and self.reader is not None:
            self.reader.silent = active


async def run_remote(bench: BenchFile, steps: list[Step], *, script: str, connect_wait: float = 15.0,
                     timeout: float | None = None, pin_factory: Any = None) -> dict[str, Any]:
    """Serve the bench, wait for the charger to connect, run the steps, and report in ``evse-hil run``'s shape.
    ``pin_factory``: gpiozero's for the cars' lines (None: the bench's own GPIO)."""
    remote = RemoteBench(bench, pin_factory=pin_factory)
    started_at = time.time()
    try:
        await remote.start()  # a missing port raises here, after what started is cleaned up below
        reached = await until(lambda: remote.charger() is not None, connect_wait, 0.05)
        begun = time.monotonic()
        results = await run_steps(steps, remote, deadline=None if timeout is None else begun + timeout) \
            if reached else []
        took = time.monotonic() - begun
    finally:
        await remote.stop()
    t0 = remote.timeline.t0
    report: dict[str, Any] = {
        "ok": reached and all(r.ok for r in results), "script": script, "config": bench.source,
        "charger": {"id": remote.charger() or (remote.csms.boots[-1] if remote.csms.boots else None),
                    "remote": True},
        "version": version(), "started_at": iso_utc(datetime.fromtimestamp(started_at, UTC)),
        "duration": round(took, 6),
        "counts": status_counts(results),
        "steps": [r.as_json(t0) for r in results],
        "statuses": [{"t": round(t - t0, 6), "connector": c, "status": s, "fault": e or None}
                     for t, _, c, s, e in remote.csms.statuses],
        "csms": {"url": remote.csms.url, "built_in": True, "frames": len(remote.csms.frames),
                 "messages": ocpp_messages(remote.csms.frames, t0), "timestamp_errors": remote.csms.timestamp_errors},
        "timeline": remote.timeline.as_json(),
        "cars": [car.summary() for car in remote.cars.values()],
    }
    if not reached:
        report["error"] = f"no charger connected to the bench CSMS at {remote.csms.url} within {connect_wait:g} s"
    return report

