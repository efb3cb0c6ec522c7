"""The cable lock of one socket: moves on demand, rate-limited, checked against its position switch.

The cable is locked before anything is offered and unlocked only once the contactor is open. A move that does
not reach its position, or a lock that gives way while locked, is a fault (raised in the GPIO callback thread,
so the contactor opens at once); one successful test move after the vehicle has left clears it.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable

from controller.config import LockSection
from controller.domain.faults import Fault
from controller.safety.supervisor import SafetySupervisor
from controller.tasks import until
from hal.lock import CableLock

log = logging.getLogger(__name__)

LOCK = "lock"
#: How often a move looks at the position switch.
_POLL = 0.005


class LockControl:
    """One socket's cable lock: moves on demand, rate-limited, feedback-checked."""

    def __init__(self, evse_id: int, lock: CableLock, supervisor: SafetySupervisor, settings: LockSection,
                 on_change: Callable[[], None]) -> None:
        self.id = evse_id
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
        supervisor.require(evse_id, LOCK)
        lock.on_feedback = self._on_feedback

    def start(self, unlock_if_locked: bool = True) -> None:
        """Remember the loop; an AC outlet found locked at start is unlocked (no session holds it).

        A DC outlet says False: after a restart mid-session its cable may still be live (the car's contactors
        closed), and only its protocol, which reads the outlet's voltage, may unlock it.
        """
        self._loop = asyncio.get_running_loop()
        if self.locked and unlock_if_locked:
            self.want(False)

    def tasks(self) -> list[asyncio.Task[object]]:
        """The running move, if any (the app cancels it before closing the pins)."""
        return [self._task] if self._task is not None else []

    def want(self, locked: bool) -> None:
        """Move to this position (idempotent); the supervisor's ``lock`` condition follows the result."""
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

    def on_vehicle(self, present: bool) -> None:
        """Loop thread: with the vehicle gone, a failed lock is tried once (lock, unlock); success clears it."""
        if present or Fault.LOCK_FAILURE not in self.supervisor.faults(self.id):
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
            self.supervisor.set_condition(self.id, LOCK, False)
            self.supervisor.raise_fault(self.id, Fault.LOCK_FAILURE, "cable lock opened while locked")

    async def _drive(self) -> None:
        while self.target is not None and self.target != self.locked:
            target = self.target
            if not target:
                # Never unlock a live outlet: wait for the contactor (an EV in C1 may hold it up to 6 s);
                # only then withdraw the condition, which would otherwise open under load at once.
                await until(lambda: not self.supervisor.closed(self.id), math.inf, _POLL)
                self.supervisor.set_condition(self.id, LOCK, False)
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
            self.supervisor.set_condition(self.id, LOCK, towards_locked)
            if not towards_locked:
                self.supervisor.clear_fault(self.id, Fault.LOCK_FAILURE)
            return True
        return False
