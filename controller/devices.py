"""Safety devices around a connector: what their signals mean, in one place per device.

- :class:`RcmControl`: a trip opens the contactor at once (in the GPIO callback
  thread) and latches; a self-test runs at every plug-in, before any PWM, and
  every ``selftest_interval`` while idle; auto re-close is a policy, off by default.
- :class:`LockControl`: the cable lock closes before the PWM is offered and
  opens once the contactor is open; moves are rate-limited; a move that does not
  reach its position, or a lock that gives way while locked, is a fault.
- :class:`OvercurrentGuard`: overdrawing past the offer plus a margin for a
  grace period lowers the offer; doing it again stops the session.
- :class:`TemperatureGuard`: derate above one threshold, stop above another.
- :class:`Indicator`: the status LED and the card accepted / rejected flash.

Each one raises faults through the supervisor and never touches the contactor
itself; the supervisor alone decides, and acts in the thread that raised the fault.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable

from controller.config import LockSection, RcmSection, TemperatureSection
from controller.connector import Connector
from controller.events import CardRead, ConnectorStatus, Event, StatusChanged
from controller.faults import Fault
from controller.safety import SafetySupervisor
from controller.tasks import until
from hal.errors import HalError
from hal.led import Colour, StatusLed
from hal.lock import CableLock
from hal.meter import MeterReading
from hal.pilot import PilotState, plugged_in
from hal.rcm import ResidualCurrentMonitor
from hal.temperature import Thermometer

log = logging.getLogger(__name__)

#: How often device controllers look at a GPIO input they wait on.
_POLL = 0.005


class RcmControl:
    """One connector's RCM: trips, self-tests and the re-close policy."""

    def __init__(self, connector_id: int, rcm: ResidualCurrentMonitor, supervisor: SafetySupervisor,
                 settings: RcmSection, on_ready: Callable[[], None]) -> None:
        self.id = connector_id
        self.rcm = rcm
        self.supervisor = supervisor
        self.settings = settings
        self._on_ready = on_ready
        self.testing = False
        #: Seconds from driving the test input to the trip, of the last passed self-test.
        self.last_trip_time: float | None = None
        self.last_test_at = float("-inf")
        self._reclose_left = settings.reclose_attempts
        self._reclose_task: asyncio.Task[None] | None = None
        self._test_task: asyncio.Task[bool] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        supervisor.require(connector_id, "rcm")
        rcm.on_trip = self._on_trip

    def start(self) -> None:
        """Remember the loop (trips arrive in gpiozero's thread); a trip already present counts now."""
        self._loop = asyncio.get_running_loop()
        if self.rcm.tripped:
            self._on_trip(True)

    def tasks(self) -> list[asyncio.Task[object]]:
        """Running self-test and re-close tasks (the app cancels them before closing the pins)."""
        return [t for t in (self._test_task, self._reclose_task) if t is not None]

    def _on_trip(self, tripped: bool) -> None:
        # gpiozero's thread: the supervisor opens the contactor here, before anything else runs.
        if self.testing:
            return  # the self-test makes the module trip on purpose
        if tripped:
            self.supervisor.set_interlock(self.id, "rcm", False)
            self.supervisor.raise_fault(self.id, Fault.RCM_TRIP, "residual current above the module's threshold")
            return
        self.supervisor.clear_fault(self.id, Fault.RCM_TRIP)  # latching: waits for an unplug
        if self.settings.auto_reclose and self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._schedule_reclose)

    def _schedule_reclose(self) -> None:
        if self._reclose_left <= 0:
            log.warning("connector %d: RCM tripped again; no re-close attempts left until unplugged", self.id)
            return
        if self._reclose_task is None or self._reclose_task.done():
            self._reclose_task = asyncio.create_task(self._reclose(), name=f"rcm-reclose-{self.id}")

    async def _reclose(self) -> None:
        await asyncio.sleep(self.settings.reclose_delay)
        if self.rcm.tripped or Fault.RCM_TRIP not in self.supervisor.faults(self.id):
            return
        self._reclose_left -= 1
        log.info("connector %d: RCM re-close (%d attempt(s) left)", self.id, self._reclose_left)
        self.supervisor.clear_fault(self.id, Fault.RCM_TRIP, force=True)
        self.test_soon()

    def on_pilot(self, previous: PilotState | None, state: PilotState | None) -> None:
        """Loop thread: a plug-in starts a self-test; an unplug withdraws the last one."""
        if state == PilotState.A:
            self.supervisor.set_interlock(self.id, "rcm", False)
            self._reclose_left = self.settings.reclose_attempts
        elif plugged_in(previous, state):
            self.test_soon()

    def test_soon(self) -> None:
        """Run a self-test unless one is running."""
        if self._test_task is None or self._test_task.done():
            self._test_task = asyncio.create_task(self.self_test(), name=f"rcm-test-{self.id}")

    async def self_test(self) -> bool:
        """Drive the test input: the module must trip within test_timeout and release within release_timeout."""
        if self.supervisor.closed(self.id):
            return False  # never while energy flows: the test trip would look like a real one
        s = self.settings
        self.testing = True
        try:
            started = time.monotonic()
            self.rcm.set_test(True)
            tripped = await until(lambda: self.rcm.tripped, s.test_timeout, _POLL)
            trip_time = time.monotonic() - started
            self.rcm.set_test(False)
            released = tripped and await until(lambda: not self.rcm.tripped, s.release_timeout, _POLL)
        finally:
            self.rcm.set_test(False)
            self.testing = False
        self.last_test_at = time.monotonic()
        if not tripped:
            detail = f"no trip within {s.test_timeout:g} s of the test input"
        elif not released:
            detail = f"still tripped {s.release_timeout:g} s after the test input was released"
        else:
            self.last_trip_time = trip_time
            log.info("connector %d: RCM self-test passed (tripped after %.0f ms)", self.id, trip_time * 1000)
            self.supervisor.clear_fault(self.id, Fault.RCM_SELFTEST_FAILED)
            self.supervisor.set_interlock(self.id, "rcm", True)
            self._on_ready()
            return True
        self.supervisor.raise_fault(self.id, Fault.RCM_SELFTEST_FAILED, detail)
        return False

    async def run_periodic(self) -> None:
        """Self-test at start and then every ``selftest_interval`` while no vehicle is connected.

        A test falling due with a vehicle connected waits for it to leave (checked every minute); every
        plug-in's own test counts as the latest test.
        """
        while True:
            due = self.last_test_at + self.settings.selftest_interval - time.monotonic()
            if due <= 0:
                if self.supervisor.pilot_state(self.id) not in (None, PilotState.A):
                    await asyncio.sleep(60.0)
                    continue
                self.test_soon()
                assert self._test_task is not None
                try:
                    await asyncio.shield(self._test_task)
                except Exception:
                    log.exception("connector %d: RCM self-test could not run; trying again in a minute", self.id)
                    await asyncio.sleep(60.0)
                    continue
                if self.supervisor.pilot_state(self.id) in (None, PilotState.A):
                    self.supervisor.set_interlock(self.id, "rcm", False)  # each vehicle gets its own test
                continue
            await asyncio.sleep(min(due, 60.0))


class LockControl:
    """One connector's cable lock: moves on demand, rate-limited, feedback-checked."""

    def __init__(self, connector_id: int, lock: CableLock, supervisor: SafetySupervisor, settings: LockSection,
                 on_change: Callable[[], None]) -> None:
        self.id = connector_id
        self.lock = lock
        self.supervisor = supervisor
        self.settings = settings
        self._on_change = on_change
        self.target: bool | None = None
        self.moving = False
        self.locked = lock.locked
        self.moves = 0
        self._last_move = float("-inf")
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        supervisor.require(connector_id, "lock")
        lock.on_feedback = self._on_feedback

    def start(self) -> None:
        """Remember the loop; an outlet found locked at start is unlocked (no session holds it)."""
        self._loop = asyncio.get_running_loop()
        if self.locked:
            self.want(False)

    def tasks(self) -> list[asyncio.Task[object]]:
        """The running move, if any (the app cancels it before closing the pins)."""
        return [self._task] if self._task is not None else []

    def want(self, locked: bool) -> None:
        """Move to this position (idempotent); the supervisor's "lock" interlock follows the result."""
        if self.target == locked and (self.moving or self.locked == locked):
            return
        self.target = locked
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._drive(), name=f"lock-{self.id}")

    async def unlock(self) -> bool:
        """Unlock now (UnlockConnector); True when the switch reads unlocked."""
        self.want(False)
        if self._task is not None:
            await asyncio.shield(self._task)
        return not self.lock.locked

    def on_pilot(self, state: PilotState | None) -> None:
        """Loop thread: with the vehicle gone, a failed lock is tried once (lock, unlock); success clears it."""
        if state != PilotState.A or Fault.LOCK_FAILURE not in self.supervisor.faults(self.id):
            return
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._verify(), name=f"lock-verify-{self.id}")

    async def _verify(self) -> None:
        self.target = False
        for position in (True, False):
            await self._rate_limit()
            if not await self._move(position):
                log.warning("connector %d: cable lock still fails its test move", self.id)
                return
        self._on_change()

    def _on_feedback(self, locked: bool) -> None:
        # gpiozero's thread. A lock that opens while it should hold the cable: energy off now.
        if not locked and self.locked and not self.moving:
            self.locked = False
            self.supervisor.set_interlock(self.id, "lock", False)
            self.supervisor.raise_fault(self.id, Fault.LOCK_FAILURE, "cable lock opened while locked")

    async def _drive(self) -> None:
        while self.target is not None and self.target != self.locked:
            target = self.target
            if not target:
                # Never unlock a live outlet: wait for the contactor (an EV in C1 may hold it up to 6 s);
                # only then withdraw the interlock, which would otherwise open under load at once.
                await until(lambda: not self.supervisor.closed(self.id), math.inf, _POLL)
                self.supervisor.set_interlock(self.id, "lock", False)
            await self._rate_limit()
            if self.target != target:
                continue
            ok = await self._move(target)
            if not ok:
                self.target = None
                self.supervisor.raise_fault(
                    self.id, Fault.LOCK_FAILURE,
                    f"did not {'lock' if target else 'unlock'} within {self.settings.pulse:g} s")
                break
        self._on_change()

    async def _rate_limit(self) -> None:
        """Wait until ``min_interval`` has passed since the last move began."""
        wait = self._last_move + self.settings.min_interval - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)

    async def _move(self, towards_locked: bool) -> bool:
        self.moving = True
        self.moves += 1
        self._last_move = time.monotonic()
        try:
            self.lock.drive(towards_locked)
            reached = await until(lambda: self.lock.locked == towards_locked, self.settings.pulse, _POLL)
            if reached:
                await asyncio.sleep(max(0.0, self._last_move + self.settings.pulse - time.monotonic()))
        finally:
            self.lock.drive(None)
            self.moving = False
        self.locked = self.lock.locked
        if reached and self.locked == towards_locked:
            log.info("connector %d: cable %s", self.id, "locked" if towards_locked else "unlocked")
            self.supervisor.set_interlock(self.id, "lock", towards_locked)
            if not towards_locked:
                self.supervisor.clear_fault(self.id, Fault.LOCK_FAILURE)
            return True
        return False


class OvercurrentGuard:
    """Compares each meter reading with the offered current (what the EV was told on the PWM)."""

    def __init__(self, connector: Connector, supervisor: SafetySupervisor, margin: float, grace: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.connector = connector
        self.supervisor = supervisor
        self.margin = margin
        self.grace = grace
        self._clock = clock
        self._over_since: float | None = None
        self._lowered = False

    def on_reading(self, reading: MeterReading) -> None:
        """A new meter reading (loop thread)."""
        c = self.connector
        offered = c.pilot.offered_current
        drawn = max((a for a in reading.current if a is not None), default=None)
        if c.transaction is None:
            self._over_since, self._lowered = None, False
            c.set_limit("overcurrent", None)
            if drawn is not None and drawn < self.margin:
                self.supervisor.clear_fault(c.id, Fault.OVERCURRENT)
            return
        if offered is None or drawn is None or drawn <= offered + self.margin:
            self._over_since = None
            return
        now = self._clock()
        if self._over_since is None:
            self._over_since = now
            log.warning("connector %d: EV draws %.1f A, %.1f A offered", c.id, drawn, offered)
            return
        if now - self._over_since < self.grace:
            return
        if not self._lowered:
            self._lowered = True
            self._over_since = now
            lowered = max(6.0, offered - (drawn - offered))
            log.warning("connector %d: EV overdraws for %.1f s; offer lowered to %.1f A", c.id, self.grace, lowered)
            c.set_limit("overcurrent", lowered)
            return
        self.supervisor.raise_fault(c.id, Fault.OVERCURRENT, f"{drawn:.1f} A drawn, {offered:.1f} A offered")


class TemperatureGuard:
    """Derates and stops one connector by temperature, with hysteresis."""

    def __init__(self, connector: Connector, supervisor: SafetySupervisor, sensor: Thermometer,
                 settings: TemperatureSection) -> None:
        self.connector = connector
        self.supervisor = supervisor
        self.sensor = sensor
        self.settings = settings
        self.celsius: float | None = None

    def update(self, celsius: float) -> None:
        """Apply one reading."""
        s, cid = self.settings, self.connector.id
        self.celsius = celsius
        if celsius >= s.stop_at:
            self.supervisor.raise_fault(cid, Fault.OVER_TEMPERATURE, f"{celsius:.1f} C (stop at {s.stop_at:g} C)")
        elif celsius <= s.stop_at - s.hysteresis:
            self.supervisor.clear_fault(cid, Fault.OVER_TEMPERATURE)
        if celsius >= s.derate_at:
            self.connector.set_limit("temperature", s.derate_current)
        elif celsius <= s.derate_at - s.hysteresis:
            self.connector.set_limit("temperature", None)

    async def run(self) -> None:
        """Poll the sensor; a sensor that stops answering derates the connector (better safe than hot)."""
        failing = False
        while True:
            try:
                celsius = await self.sensor.read()
            except HalError as exc:
                if not failing:
                    log.warning("connector %d: temperature sensor failed (%s); derating", self.connector.id, exc)
                    failing = True
                self.connector.set_limit("temperature", self.settings.derate_current)
            else:
                if failing:
                    log.info("connector %d: temperature sensor answers again", self.connector.id)
                    failing = False
                self.update(celsius)
            await asyncio.sleep(self.settings.poll_interval)


# Status patterns: (colour, blink half-period or None for steady).
GREEN, BLUE, RED, YELLOW, OFF = (0, 1, 0), (0, 0, 1), (1, 0, 0), (1, 1, 0), (0, 0, 0)
PATTERNS: dict[ConnectorStatus, tuple[Colour, float | None]] = {
    ConnectorStatus.AVAILABLE: (GREEN, None),
    ConnectorStatus.PREPARING: (BLUE, 0.5),  # waiting for a card (or for the EV)
    ConnectorStatus.CHARGING: (BLUE, None),
    ConnectorStatus.SUSPENDED_EV: (BLUE, 1.0),
    ConnectorStatus.SUSPENDED_EVSE: (BLUE, 1.0),
    ConnectorStatus.FINISHING: (GREEN, 0.5),
    ConnectorStatus.RESERVED: (YELLOW, None),
    ConnectorStatus.UNAVAILABLE: (RED, None),
    ConnectorStatus.FAULTED: (RED, 0.2),
}
FLASH = 0.15


class Indicator:
    """One connector's status LED, driven by the station's events."""

    def __init__(self, connector_id: int, led: StatusLed) -> None:
        self.id = connector_id
        self.led = led
        self.pattern: tuple[Colour, float | None] = PATTERNS[ConnectorStatus.AVAILABLE]
        self._restore: asyncio.TimerHandle | None = None
        self.led.show(*self.pattern)

    def on_event(self, event: Event) -> None:
        """Station event (loop thread)."""
        if isinstance(event, StatusChanged) and event.connector_id == self.id:
            self.pattern = PATTERNS[event.status]
            if self._restore is None:
                self.led.show(*self.pattern)
        elif isinstance(event, CardRead) and event.connector_id == self.id:
            # Accepted: two green flashes; rejected: three red ones. Then back to the status pattern.
            colour, times = (GREEN, 2) if event.accepted else (RED, 3)
            self.led.show(colour, FLASH, times)
            if self._restore is not None:
                self._restore.cancel()
            self._restore = asyncio.get_running_loop().call_later(2 * FLASH * times + 0.05, self._back)

    def _back(self) -> None:
        self._restore = None
        self.led.show(*self.pattern)
