"""The residual current monitor of one EVSE: trips, self-tests and the re-close policy.

A trip opens the contactor at once, in the GPIO callback thread, and latches. A self-test runs whenever a
vehicle arrives, before anything is offered, and every ``selftest_interval`` while no vehicle is connected; its
pass is the supervisor's ``rcm`` condition until the vehicle leaves. Auto re-close is a policy, off by default.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from controller.config import RcmSection
from controller.domain.faults import Fault
from controller.safety.supervisor import SafetySupervisor
from controller.tasks import until
from hal.rcm import ResidualCurrentMonitor

log = logging.getLogger(__name__)

RCM = "rcm"
#: How often the self-test looks at the module's output.
_POLL = 0.005


class RcmControl:
    """One outlet's RCM: trips, self-tests and the re-close policy."""

    def __init__(self, evse_id: int, rcm: ResidualCurrentMonitor, supervisor: SafetySupervisor,
                 settings: RcmSection, on_ready: Callable[[], None]) -> None:
        self.id = evse_id
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
        supervisor.require(evse_id, RCM)
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
            self.supervisor.set_condition(self.id, RCM, False)
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

    def on_vehicle(self, present: bool) -> None:
        """Loop thread: a vehicle arriving starts a self-test; one leaving takes the last test's result with it."""
        if present:
            self.test_soon()
        else:
            self.supervisor.set_condition(self.id, RCM, False)
            self._reclose_left = self.settings.reclose_attempts

    def test_soon(self) -> None:
        """Run a self-test unless one is running."""
        if self._test_task is None or self._test_task.done():
            self._test_task = asyncio.create_task(self.self_test(), name=f"rcm-test-{self.id}")

    async def self_test(self) -> bool:
        """Drive the test input: the module must trip within test_timeout and release within release_timeout."""
        if self.supervisor.closed(self.id):
            return False  # never while energy flows: the test trip would look like a real one
        s = self.settings
        if self.rcm.tests_itself:
            # An EVSE board's RCD: the board tests it at power-up and reports a failure as an RCD error.
            tripped, released, trip_time = True, not self.rcm.tripped, 0.0
            self.last_test_at = time.monotonic()
            return self._tested(tripped, released, trip_time)
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
        return self._tested(tripped, released, trip_time)

    def _tested(self, tripped: bool, released: bool, trip_time: float) -> bool:
        s = self.settings
        if not tripped:
            detail = f"no trip within {s.test_timeout:g} s of the test input"
        elif not released:
            detail = "the board reports an RCD error" if self.rcm.tests_itself else \
                f"still tripped {s.release_timeout:g} s after the test input was released"
        else:
            self.last_trip_time = trip_time
            log.info("connector %d: RCM self-test passed (tripped after %.0f ms)", self.id, trip_time * 1000)
            self.supervisor.clear_fault(self.id, Fault.RCM_SELFTEST_FAILED)
            self.supervisor.set_condition(self.id, RCM, True)
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
                if self.supervisor.vehicle(self.id):
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
                if not self.supervisor.vehicle(self.id):
                    self.supervisor.set_condition(self.id, RCM, False)  # each vehicle gets its own test
                continue
            await asyncio.sleep(min(due, 60.0))
