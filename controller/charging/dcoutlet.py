"""What every DC outlet does the same way, whichever protocol talks to the car (CHAdeMO, GB/T).

A DC protocol is a step machine (its ``sequence``) plus the lines of its connector; this base feeds
the sequence every ``tick`` s (and exactly when a frame is due), and applies what it decides: the
power stage's set point, the bleed resistor, the cable lock, the insulation test with the IMD, and
the DC contactors through the supervisor. The supervisor closes them only while these hold:

- ``demand``: the sequence wants them closed;
- ``link``: the car's messages are fresh (graceful: the sequence ramps the current down first);
- ``insulation``: the IMD passed its self-test and shows no fault (losing it opens at once);
- ``offer``: the station offers energy (graceful: a stop withdraws it before the permit, so the permit's loss
  starts the stop grace and the sequence ramps the current down before anything opens);
- and whatever the protocol adds (CHAdeMO's k as ``ev_permission``).

The supervisor's channel is added with the power stage's ``shut_off`` as its hook before opening.
A stop the sequence makes for a station fault becomes that catalogue fault once the current is
down (the fault opens the contactors); the faults of a session clear when the car leaves.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from abc import abstractmethod
from collections.abc import Callable
from typing import Any

from controller.charging.dcimd import INSULATION, ImdChecks
from controller.clock import Clock
from controller.domain.faults import Fault
from controller.domain.types import Answer, PowerLimit
from controller.evse.port import ChargingProtocol, VehicleStatus
from controller.safety.dc import DcGuards
from controller.safety.lock import LockControl
from controller.safety.supervisor import SafetySupervisor
from controller.tasks import until
from hal.can import CanBus, Frame
from hal.dc_io import Bleeder
from hal.dc_power import SAFE_CURRENT, DcPowerStage, PowerReading
from hal.imd import InsulationMonitor
from hal.meter import MeterReading

log = logging.getLogger(__name__)

DEMAND, LINK, OFFER = "demand", "link", "offer"
#: Faults of a session: they clear when its car leaves (a broken part shows again at the next session's checks).
SESSION_FAULTS = (Fault.EV_COMM_LOST, Fault.VOLTAGE_MISMATCH, Fault.CONNECTOR_LOST, Fault.INSULATION_FAULT,
                  Fault.OVER_VOLTAGE)

ToLoop = Callable[..., object]
#: How long UnlockConnector waits for a session's ending and a dead outlet.
UNLOCK_WAIT = 10.0
#: A power stage reading older than this (s) says nothing about the current now: five missed polls at 0.1 s.
STALE_READING = 0.5


#: Past its stop grace the supervisor lets a DC ending keep the contactors closed at <= 5 A this long: CHAdeMO
#: waits up to 10 s for the car's contactors (welding detection) before it opens them itself.
HOLD_LIMIT = 12.0


def current_safe(power: DcPowerStage, clock: Callable[[], float]) -> Callable[[], bool]:
    """For the supervisor: True while a fresh reading shows at most 5 A out of ``power``."""
    return lambda: abs(known_current(power.reading, clock()).current) <= SAFE_CURRENT


def known_current(reading: PowerReading, now: float) -> PowerReading:
    """``reading``, or one whose current is "not known to be safe" (above 5 A) when it is stale.

    A sequence opens the contactors once the current reads <= 5 A; a stage that stopped answering must not
    let an old low reading do that (the stop's own time bound still opens them).
    """
    if now - reading.at <= STALE_READING:
        return reading
    return dataclasses.replace(reading, current=max(abs(reading.current), SAFE_CURRENT + 1.0))



class DcOutlet(ImdChecks, ChargingProtocol):
    """The machinery of one DC outlet; a protocol supplies its sequence, inputs and lines."""

    #: Named in logs ("CHAdeMO", "GB/T").
    name = "DC"
    #: The outlet voltage below which the connector may be unlocked (CHAdeMO's 10 V; GB/T's 60 V).
    unlock_below = 10.0

    def __init__(self, evse_id: int, *, bus: CanBus, power: DcPowerStage, supervisor: SafetySupervisor,
                 to_loop: ToLoop, outlet_voltage: Callable[[], float], imd: InsulationMonitor | None = None,
                 bleeder: Bleeder | None = None, lock: LockControl | None = None, guards: DcGuards | None = None,
                 clock: Clock | None = None, tick: float = 0.01, imd_interval: float = 1.0) -> None:
        super().__init__()
        self.id = evse_id
        self.bus = bus
        self.power = power
        self.supervisor = supervisor
        self.imd = imd
        self.bleeder = bleeder
        self.lock = lock
        self.guards = guards
        self.outlet_voltage = outlet_voltage
        self.clock = clock or Clock()
        self.tick = tick
        self.imd_interval = imd_interval
        self._to_loop = to_loop
        self.out: Any = None
        self.insulation_ohms: float | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._watch_task: asyncio.Task[None] | None = None
        self._session_used = False
        self._reported: Fault | None = None
        self._vehicle = VehicleStatus.UNKNOWN
        self._plugged_seen: bool | None = None
        self._stale = False
        self._running = False
        self._lock_wanted: bool | None = None
        self._wake = asyncio.Event()
        #: Called with each new phase of the sequence, by its short name ("cable check"; the bench draws them).
        self.phase_observers: list[Callable[[str], None]] = []
        self._phase: Any = None
        for condition, graceful in ((DEMAND, False), (LINK, True), (INSULATION, False), (OFFER, True)):
            supervisor.require(evse_id, condition, graceful=graceful)
        supervisor.set_condition(evse_id, INSULATION, imd is None)  # an IMD must show it is healthy first
        supervisor.set_condition(evse_id, DEMAND, False)
        self._unsubscribe: Callable[[], None] | None = None

    # ---------------------------------------------------------------- what a protocol supplies

    sequence: Any  # the step machine: active, delivering, phase, stop_cause, start, set_offer, stop, tick

    @abstractmethod
    def plugged(self) -> bool:
        """Read whether the connector is in the inlet (CHAdeMO pin 7, GB/T CC1 at 4 V); see :attr:`connected`."""

    @abstractmethod
    def inputs(self, now: float, reading: PowerReading) -> Any:
        """The sequence's input snapshot."""

    @abstractmethod
    def apply_lines(self, out: Any) -> None:
        """Drive the connector's own lines (d1/d2, auxiliary power) from the outputs."""

    @abstractmethod
    def safe_lines(self) -> None:
        """Every connector line off (shutdown)."""

    @abstractmethod
    def on_frame(self, frame: Frame) -> None:
        """A frame from the car's bus."""

    @abstractmethod
    def link_fresh(self, now: float) -> bool:
        """The car's messages are fresh enough to keep energy flowing."""

    @abstractmethod
    def maximum_voltage(self) -> float | None:
        """The session's negotiated maximum voltage (None before it is known)."""

    @abstractmethod
    def soc(self) -> float | None:
        """The connected car's state of charge in percent, as it last said (None: not yet, or no car)."""

    @property
    @abstractmethod
    def next_due(self) -> float:
        """When the sequence next has a frame to send (infinity: none pending)."""

    def poll(self, now: float) -> None:
        """Each control step, before the inputs are read (a transport's timers)."""

    # ---------------------------------------------------------------- lifecycle

    def start(self) -> None:
        """Listen to the bus; run the sequence's clock; test the IMD once."""
        self._unsubscribe = self.bus.subscribe(self.on_frame)
        self._running = True
        loop = asyncio.get_running_loop()
        self._tasks.append(loop.create_task(self._run(), name=f"{self.name}-{self.id}"))
        if self.imd is not None:
            self._tasks.append(loop.create_task(self._imd_boot(), name=f"imd-{self.id}"))
        if self.guards is not None:
            self.guards.start()
        self.edge()

    def stop(self) -> None:
        """Outputs safe: stage off, lines down, bleed resistor on; stop listening."""
        self._running = False
        for task in [*self._tasks, self._watch_task]:
            if task is not None:
                task.cancel()
        if self._unsubscribe is not None:
            self._unsubscribe()
        self.power.shut_off()
        self.safe_lines()
        if self.bleeder is not None:
            self.bleeder.set(True)  # the output drains through the resistor (it stays on as the pins close)

    # ---------------------------------------------------------------- the port

    def prepare(self) -> bool:
        return True  # the cable check belongs to the sequence

    def offer(self, limit: PowerLimit) -> bool:
        amps = self._amps(limit)
        if amps < 1.0:
            self.sequence.set_offer(0.0)  # nothing may flow while the EVSE waits for more to offer
            return False
        self.supervisor.set_condition(self.id, OFFER, True)
        if not self.sequence.active and not self._session_used and self.connected:
            self._session_used = True
            self._reported = None
            self._clear_session_faults()
            self.sequence.start(self.clock.monotonic(), amps)
            log.info("connector %d: %s session starts, up to %.0f A", self.id, self.name, amps)
            self._wake.set()
        self.sequence.set_offer(amps)
        return True

    def withdraw(self) -> None:
        # The offer first (graceful): the permit's loss that follows starts the stop grace instead of opening.
        self.supervisor.set_condition(self.id, OFFER, False)
        emergency = Fault.EMERGENCY_STOP in self.supervisor.faults(self.id)
        self.sequence.stop("emergency stop" if emergency else "the station ended the session", emergency=emergency)
        self._wake.set()

    def release(self, unlock: bool) -> None:
        # The sequence owns the lock: it unlocks only a dead connector.
        self.sequence.keep_locked = not unlock
        if not self.sequence.active:
            self._session_used = False

    def disable(self) -> None:
        self.withdraw()

    @property
    def has_lock(self) -> bool:
        return self.lock is not None

    async def unlock(self) -> Answer:
        """UnlockConnector: once the session has ended and the outlet is dead (waiting up to ``UNLOCK_WAIT`` s)."""
        if self.lock is None:
            return Answer.NOT_SUPPORTED
        if not await until(lambda: not self.sequence.active and self.outlet_voltage() < self.unlock_below,
                           UNLOCK_WAIT):
            log.warning("connector %d: not unlocked: %s", self.id, "the session is still ending"
                        if self.sequence.active else f"the outlet is at {self.outlet_voltage():.0f} V")
            return Answer.FAILED
        self._lock_wanted = False
        return Answer.ACCEPTED if await self.lock.unlock() else Answer.FAILED

    @property
    def offered_amps(self) -> float | None:
        return float(self.sequence.offer) if self.sequence.delivering else None

    def annotate(self, reading: MeterReading) -> MeterReading:
        """The car's SoC and the power offered (the offer at the outlet's voltage) join the DC meter's reading."""
        amps, volts = self.offered_amps, reading.voltage[0]
        offered = amps * volts if amps is not None and volts is not None else None
        soc = self.soc()  # as the car said it (a byte): a value past 100 % is not passed on as one
        return dataclasses.replace(reading, soc=soc if soc is not None and 0 <= soc <= 100 else None,
                                   offered_w=offered)

    def volts(self) -> float:
        # The session's maximum (the stage's own before one): the highest the current can meet, so a watts
        # limit never gives more amps than it allows.
        return self.maximum_voltage() or self.power.capabilities.max_voltage

    def _amps(self, limit: PowerLimit) -> float:
        amps = limit.amps if limit.amps is not None else float("inf")
        if limit.watts is not None:
            amps = min(amps, limit.watts / max(self.volts(), 1.0))
        return min(amps, self.power.capabilities.max_current)

    # ---------------------------------------------------------------- inputs

    @property
    def connected(self) -> bool:
        """The connector as the last look saw it (one read per control step: CC1 is an ADC conversion)."""
        return bool(self._plugged_seen)

    def edge(self) -> None:
        """The connector's state may have changed (loop thread): look once."""
        self._take_plugged(self.plugged())
        self._report()
        self._wake.set()

    def _take_plugged(self, plugged: bool) -> None:
        if plugged != self._plugged_seen:
            self._plugged_seen = plugged
            self.supervisor.set_vehicle(self.id, plugged)
            if not plugged:
                self._session_used = False
                self._clear_session_faults()

    # ---------------------------------------------------------------- the clock

    async def _run(self) -> None:
        # ``_running`` as well as the cancellation: once stopped, no step may touch pins being released.
        while self._running:
            try:
                self._step()
            except Exception as exc:  # a bug or an impossible reading must not freeze the outputs as they were
                log.exception("connector %d: %s control step failed; outputs off", self.id, self.name)
                self.power.shut_off()
                with contextlib.suppress(Exception):
                    self.safe_lines()
                self.supervisor.raise_fault(self.id, Fault.INTERNAL_ERROR, f"{self.name} control step: {exc}")
                await asyncio.sleep(self.tick)
                continue
            due = self.next_due - self.clock.monotonic()
            # asyncio.timeout, not wait_for: 3.11's wait_for can swallow a cancellation that meets a wake-up.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(0.0, min(self.tick, due))):
                    await self._wake.wait()
            self._wake.clear()

    def _step(self) -> None:
        now = self.clock.monotonic()
        self._take_plugged(self.plugged())
        self.poll(now)
        raw = self.power.reading
        reading = known_current(raw, now)
        if (reading is not raw) != self._stale:
            self._stale = reading is not raw
            if self._stale:
                log.warning("connector %d: no power stage reading for %.1f s: the current counts as unknown",
                            self.id, now - raw.at)
            else:
                log.info("connector %d: power stage readings again", self.id)
        io = self.inputs(now, reading)
        out = self.sequence.tick(io)
        if self.sequence.phase is not self._phase:
            self._phase = self.sequence.phase
            log.debug("connector %d: %s phase: %s", self.id, self.name, self._phase.value)
            for observer in self.phase_observers:
                try:
                    observer(self._phase.name.lower().replace("_", " "))
                except Exception:  # an onlooker's failure must not stop the outlet's control step
                    log.exception("connector %d: a phase observer failed", self.id)
        for frame in out.frames:
            self.bus.send(frame)
        maximum = self.maximum_voltage()
        if self.guards is not None and self.sequence.active and maximum:
            # The insulation test runs above the battery's maximum on purpose (min(max + 50 V, 500 V)):
            # only the emergency limits hold while it runs.
            self.guards.check_voltage(io.outlet_voltage, max(maximum, out.insulation_test or 0.0))
        self._apply(out, io)
        self.out = out

    def _apply(self, out: Any, io: Any) -> None:
        sup, before = self.supervisor, self.out
        sup.set_condition(self.id, LINK, self.link_fresh(io.now) or not self.sequence.active)
        self.apply_lines(out)
        if self.lock is not None:
            # Never unlock a live outlet, whatever the sequence says (a restart finds a cable locked on a car
            # whose contactors may still be closed): unlocked only below 10 V.
            wanted = out.lock or (self.lock.locked and io.outlet_voltage >= self.unlock_below)
            if wanted != self._lock_wanted:
                self._lock_wanted = wanted
                self.lock.want(wanted)
        if self.bleeder is not None and (before is None or out.bleed != before.bleed):
            self.bleeder.set(out.bleed)
        if out.power is not None and not sup.faults(self.id):
            self.power.set(*out.power)
        elif out.power is not None:
            self.power.shut_off()  # a fault: the stage stays off whatever the sequence still ramps
        elif before is not None and before.power is not None:
            self.power.shut_off()
        if out.insulation_test is not None and (before is None or before.insulation_test is None):
            self.insulation_ohms = None
            self._tasks = [t for t in self._tasks if not t.done()]  # one check per session: keep the list short
            self._tasks.append(asyncio.get_running_loop().create_task(self._cable_check(out.insulation_test)))
        watching = self._watch_task is not None and not self._watch_task.done()
        if self.sequence.delivering and not watching and self.imd is not None and self.guards is not None:
            self._watch_task = asyncio.get_running_loop().create_task(self._imd_watch(), name=f"imd-watch-{self.id}")
        # Only on a change: DEMAND starts lost, and setting a lost condition again would open a contactor the
        # boot self-test has closed for its moment.
        if out.contactors != (before is not None and before.contactors):
            sup.set_condition(self.id, DEMAND, out.contactors)
            if not out.contactors:
                sup.open(self.id)
        self._report_stop(io)
        self._report()

    def _report(self) -> None:
        if not self.connected:
            status = VehicleStatus.ABSENT
        elif self.sequence.active and self.out is not None and self.out.contactors:
            status = VehicleStatus.REQUESTING
        else:
            status = VehicleStatus.CONNECTED
        if status != self._vehicle:
            self._vehicle = status
            if self.evse is not None:
                self.evse.on_vehicle(status)

    def _report_stop(self, io: Any) -> None:
        cause = self.sequence.stop_cause
        if cause is None or cause.fault is None or cause.fault is self._reported:
            return
        if self.sequence.delivering and abs(io.output_current) > SAFE_CURRENT:
            return  # the current comes down first; then the fault (which opens the contactors)
        self._reported = cause.fault
        if cause.fault == Fault.CONNECTOR_LOST and not self.connected:
            log.info("connector %d: the connector left during the session (%s)", self.id, cause.reason)
            return  # gone, not broken: the session ends (EVDisconnected); nothing is left to keep faulted
        self.supervisor.raise_fault(self.id, cause.fault, cause.reason)

    def _clear_session_faults(self) -> None:
        for fault in SESSION_FAULTS:
            self.supervisor.clear_fault(self.id, fault)
