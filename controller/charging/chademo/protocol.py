"""CHAdeMO on a DC outlet: the sequence driven from the CAN bus, the sequence lines, the power stage and the IMD.

The step machine (:mod:`controller.charging.chademo.sequence`) decides; this adapter feeds it and
applies what it decides, on the event loop, every ``tick`` s and exactly when a 0x108/0x109 pair
is due. The supervisor closes the DC contactors only while these named conditions hold:

- ``demand``: the sequence wants them (from the insulation test to the end of the ramp-down);
- ``link``: the EV's 0x102 is at most 1 s old, and ``ev_permission``: k is closed. Both are
  graceful: losing one starts the stop grace (the sequence brings the current to 5 A in 0.5 s
  first), it does not open under load;
- ``insulation``: the IMD shows no fault (losing it opens at once).

The supervisor's channel for the outlet is added first, with the power stage's ``shut_off`` as the hook
it runs before it opens the contactors for any reason (output off first, from the thread that opens).
A stop the sequence makes for a station fault (EV silent, an insulation fault, a live inlet)
becomes that catalogue fault once the current is down; the faults of a session clear when the
connector leaves the inlet (a latching one as the supervisor's rules say).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from controller.charging.chademo.model import Inputs, Outputs, Phase
from controller.charging.chademo.sequence import ChademoSequence
from controller.clock import Clock
from controller.domain.faults import Fault
from controller.domain.types import PowerLimit
from controller.evse.port import ChargingProtocol, VehicleStatus
from controller.safety.dc import DcGuards, insulation_fault_below
from controller.safety.lock import LockControl
from controller.safety.supervisor import SafetySupervisor
from hal.can import CanBus, Frame
from hal.dc_io import Bleeder, ChademoLines
from hal.dc_power import SAFE_CURRENT, DcPowerStage
from hal.imd import InsulationMonitor

log = logging.getLogger(__name__)

DEMAND, LINK, EV_PERMISSION, INSULATION = "demand", "link", "ev_permission", "insulation"
#: Insulation below this (ohms per volt of the test voltage) is a warning (GB/T's 500 ohm/V); the fault level
#: is the guards' (100 ohm/V, 100 kOhm at least).
WARNING_OHMS_PER_VOLT = 500.0
#: Session faults: cleared when the connector leaves the inlet.
SESSION_FAULTS = (Fault.EV_COMM_LOST, Fault.VOLTAGE_MISMATCH, Fault.CONNECTOR_LOST, Fault.INSULATION_FAULT)

ToLoop = Callable[..., object]


class Chademo(ChargingProtocol):
    """One CHAdeMO outlet."""

    def __init__(self, evse_id: int, *, bus: CanBus, lines: ChademoLines, power: DcPowerStage,
                 supervisor: SafetySupervisor, to_loop: ToLoop, outlet_voltage: Callable[[], float],
                 imd: InsulationMonitor | None = None, bleeder: Bleeder | None = None,
                 lock: LockControl | None = None, guards: DcGuards | None = None, clock: Clock | None = None,
                 tick: float = 0.01, imd_interval: float = 1.0) -> None:
        super().__init__()
        self.id = evse_id
        self.bus = bus
        self.lines = lines
        self.power = power
        self.supervisor = supervisor
        self.imd = imd
        self.bleeder = bleeder
        self.lock = lock
        self.guards = guards
        self.imd_interval = imd_interval
        self.outlet_voltage = outlet_voltage
        self.clock = clock or Clock()
        self.tick = tick
        self._to_loop = to_loop
        self.sequence = ChademoSequence(power.capabilities)
        self.out = Outputs()
        self._task: asyncio.Task[None] | None = None
        self._imd_task: asyncio.Task[None] | None = None
        self._watch_task: asyncio.Task[None] | None = None
        self._insulation_ok: bool | None = None
        self._session_used = False
        self._reported: Fault | None = None
        self._vehicle = VehicleStatus.UNKNOWN
        self._wake = asyncio.Event()
        for condition, graceful in ((DEMAND, False), (LINK, True), (EV_PERMISSION, True), (INSULATION, False)):
            supervisor.require(evse_id, condition, graceful=graceful)
        supervisor.set_condition(evse_id, INSULATION, imd is None)  # an IMD must show it is healthy first
        self._unsubscribe: Callable[[], None] | None = None

    # ---------------------------------------------------------------- lifecycle

    def start(self) -> None:
        """Listen to the bus and the lines; run the sequence's clock; test the IMD once."""
        self._unsubscribe = self.bus.subscribe(self._on_frame)
        self.lines.on_change = self._line_changed
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"chademo-{self.id}")
        if self.imd is not None:
            self._imd_task = asyncio.get_running_loop().create_task(self._imd_boot(), name=f"imd-{self.id}")
        if self.guards is not None:
            self.guards.start()
        self._edge()

    def stop(self) -> None:
        """Outputs safe: stage off, lines down; stop listening."""
        for task in (self._task, self._imd_task, self._watch_task):
            if task is not None:
                task.cancel()
        if self._unsubscribe is not None:
            self._unsubscribe()
        self.power.shut_off()
        self.lines.set(d1=False, d2=False)

    # ---------------------------------------------------------------- the port

    def prepare(self) -> bool:
        return True  # the cable check belongs to the sequence, after the EV's permission

    def offer(self, limit: PowerLimit) -> bool:
        amps = self._amps(limit)
        if amps < 1.0:
            return False
        if not self.sequence.active and not self._session_used and self.lines.plugged:
            self._session_used = True
            self._reported = None
            self._clear_session_faults()
            self.sequence.start(self.clock.monotonic(), amps)
            log.info("connector %d: CHAdeMO session starts (d1 on), up to %.0f A", self.id, amps)
            self._wake.set()
        self.sequence.set_offer(amps)
        return True

    def withdraw(self) -> None:
        self.sequence.stop("the station ended the session")
        self._wake.set()

    def release(self, unlock: bool) -> None:
        self.sequence.keep_locked = not unlock
        if not self.sequence.active:
            self._session_used = False
        if self.lock is not None and unlock and not self.sequence.active:
            self.lock.want(False)

    def disable(self) -> None:
        self.withdraw()

    @property
    def offered_amps(self) -> float | None:
        return self.sequence.offer if self.sequence.delivering else None

    # ---------------------------------------------------------------- inputs

    def _line_changed(self, _name: str, _value: bool) -> None:
        self._to_loop(self._edge)  # gpiozero's thread: the sequence runs on the loop

    def _on_frame(self, frame: Frame) -> None:
        self.sequence.on_frame(frame, frame.at or self.clock.monotonic())

    def _edge(self) -> None:
        plugged = self.lines.plugged
        self.supervisor.set_vehicle(self.id, plugged)
        self.supervisor.set_condition(self.id, EV_PERMISSION, self.lines.k)
        if not plugged:
            self._session_used = False
            self._clear_session_faults()
        self._report()
        self._wake.set()

    def _amps(self, limit: PowerLimit) -> float:
        amps = limit.amps if limit.amps is not None else float("inf")
        if limit.watts is not None:
            ev = self.sequence.ev
            voltage = float(ev.target_voltage) if ev else self.power.capabilities.max_voltage
            amps = min(amps, limit.watts / max(voltage, 1.0))
        return min(amps, self.power.capabilities.max_current)

    # ---------------------------------------------------------------- the clock

    async def _run(self) -> None:
        while True:
            self._step()
            due = self.sequence.next_frame_at - self.clock.monotonic()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), max(0.0, min(self.tick, due)))
            self._wake.clear()

    def _step(self) -> None:
        now = self.clock.monotonic()
        reading = self.power.reading
        io = Inputs(now=now, k=self.lines.k, plugged=self.lines.plugged,
                    locked=self.lock.locked if self.lock is not None else self.out.lock,
                    contactors_closed=self.supervisor.closed(self.id), outlet_voltage=self.outlet_voltage(),
                    output_current=reading.current, insulation_ok=self._insulation_ok)
        out = self.sequence.tick(io)
        for frame in out.frames:
            self.bus.send(frame)
        if self.guards is not None and self.sequence.active and self.sequence.threshold:
            self.guards.check_voltage(io.outlet_voltage, float(self.sequence.threshold))
        self._apply(out, io)
        self.out = out

    def _apply(self, out: Outputs, io: Inputs) -> None:
        sup = self.supervisor
        fresh = self.sequence.ev is not None and io.now - self.sequence.last_ev_frame <= 1.0
        sup.set_condition(self.id, LINK, fresh or not self.sequence.active)
        self.lines.set(d1=out.d1, d2=out.d2)
        if self.lock is not None and out.lock != self.out.lock:
            self.lock.want(out.lock)
        if self.bleeder is not None and out.bleed != self.out.bleed:
            self.bleeder.set(out.bleed)
        if out.power is not None:
            self.power.set(*out.power)
        elif self.out.power is not None:
            self.power.shut_off()
        if out.insulation_test is not None and self.out.insulation_test is None:
            self._insulation_ok = None
            self._imd_task = asyncio.get_running_loop().create_task(self._cable_check(out.insulation_test))
        watching = self._watch_task is not None and not self._watch_task.done()
        if self.sequence.delivering and not watching and self.imd is not None and self.guards is not None:
            self._watch_task = asyncio.get_running_loop().create_task(self._imd_watch(), name=f"imd-watch-{self.id}")
        if out.contactors != self.out.contactors:
            sup.set_condition(self.id, DEMAND, out.contactors)
            if not out.contactors:
                sup.open(self.id)
        self._report_stop(io)
        self._report()

    def _report(self) -> None:
        if not self.lines.plugged:
            status = VehicleStatus.ABSENT
        elif self.sequence.active and self.out.contactors:
            status = VehicleStatus.REQUESTING
        else:
            status = VehicleStatus.CONNECTED
        if status != self._vehicle:
            self._vehicle = status
            if self.evse is not None:
                self.evse.on_vehicle(status)

    def _report_stop(self, io: Inputs) -> None:
        cause = self.sequence.stop_cause
        if cause is None or cause.fault is None or cause.fault is self._reported:
            return
        if self.sequence.phase == Phase.RAMP_DOWN and abs(io.output_current) > SAFE_CURRENT:
            return  # the current comes down first; then the fault (which opens the contactors)
        self._reported = cause.fault
        self.supervisor.raise_fault(self.id, cause.fault, cause.reason)

    def _clear_session_faults(self) -> None:
        for fault in SESSION_FAULTS:
            self.supervisor.clear_fault(self.id, fault)

    # ---------------------------------------------------------------- the IMD

    async def _imd_boot(self) -> None:
        assert self.imd is not None
        try:
            await self.imd.open()
            passed = await self.imd.self_test()
        except Exception as exc:  # an IMD that cannot be reached is an IMD that failed
            log.error("connector %d: IMD: %s", self.id, exc)
            passed = False
        if not passed:
            log.error("connector %d: IMD self-test failed: no DC session until it passes", self.id)
        self.supervisor.set_condition(self.id, INSULATION, passed)

    async def _imd_watch(self) -> None:
        """While current flows: every ``imd_interval`` s, a valid reading goes to the insulation guard."""
        assert self.imd is not None and self.guards is not None
        while self.sequence.delivering:
            try:
                reading = await self.imd.read()
            except Exception as exc:  # a reading lost now and then is logged; the IMD's own alarm relay stays
                log.warning("connector %d: IMD read while charging: %s", self.id, exc)
            else:
                if reading.resistance is not None:
                    self.guards.check_insulation(reading.resistance, self.outlet_voltage())
            await asyncio.sleep(self.imd_interval)

    async def _cable_check(self, voltage: float) -> None:
        """Measure at the test voltage; the verdict goes to the sequence on its next tick."""
        if self.imd is None:
            self._insulation_ok = True
            return
        threshold = insulation_fault_below(voltage)
        try:
            await self.imd.start()
            while True:
                reading = await self.imd.read()
                if reading.resistance is not None and self.out.insulation_test is not None \
                        and abs(self.outlet_voltage() - voltage) < 0.05 * voltage:
                    break
                await asyncio.sleep(0.2)
        except Exception as exc:  # the sequence's own timeout ends a check that never finishes
            log.error("connector %d: IMD during the insulation test: %s", self.id, exc)
            return
        ohms = reading.resistance
        self._insulation_ok = ohms > threshold
        log.info("connector %d: insulation %.0f kOhm at %.0f V (fault below %.0f kOhm): %s", self.id, ohms / 1000,
                 voltage, threshold / 1000, "pass" if self._insulation_ok else "FAIL")
        if self._insulation_ok and ohms <= WARNING_OHMS_PER_VOLT * voltage:
            log.warning("connector %d: insulation %.0f kOhm is below the warning level (%.0f ohm/V)", self.id,
                        ohms / 1000, WARNING_OHMS_PER_VOLT)
        self._wake.set()
