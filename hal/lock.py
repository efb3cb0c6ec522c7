"""Socket cable lock: a DC motor on an H-bridge (two GPIO outputs) with a position switch.

One pin drives the motor towards locked, the other towards unlocked; both are
never on together. The position switch reports "locked". Pulse timing, rate
limits and what a failed move means live in ``controller.safety.lock.LockControl``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

from gpiozero import DigitalInputDevice, DigitalOutputDevice


class CableLock(ABC):
    """A lock motor to run either way and a switch that reports "locked"."""

    #: Set by the controller; drivers call it with the switch's new reading (True: locked) on every change.
    on_feedback: Callable[[bool], None] | None = None

    @property
    @abstractmethod
    def locked(self) -> bool:
        """What the position switch reads now."""

    @abstractmethod
    def drive(self, towards_locked: bool | None) -> None:
        """Run the motor towards locked (True) or unlocked (False), or stop it (None)."""

    def close(self) -> None:
        """Stop the motor and release the hardware (the lock stays where it is)."""


class GpioCableLock(CableLock):
    """H-bridge on ``lock_pin``/``unlock_pin``, position switch on ``feedback_pin``."""

    def __init__(
        self,
        *,
        lock_pin: int,
        unlock_pin: int,
        feedback_pin: int,
        feedback_active_high: bool = True,
        pin_factory: Any = None,
    ) -> None:
        self._lock = DigitalOutputDevice(lock_pin, initial_value=False, pin_factory=pin_factory)
        self._unlock = DigitalOutputDevice(unlock_pin, initial_value=False, pin_factory=pin_factory)
        self._switch = DigitalInputDevice(feedback_pin, pull_up=not feedback_active_high, pin_factory=pin_factory)
        self._switch.when_activated = lambda: self._edge(True)
        self._switch.when_deactivated = lambda: self._edge(False)

    def _edge(self, locked: bool) -> None:
        callback = self.on_feedback
        if callback is not None:
            callback(locked)

    @property
    def locked(self) -> bool:
        return bool(self._switch.is_active)

    def drive(self, towards_locked: bool | None) -> None:
        # Off first, so the bridge never has both sides on, even for an instant.
        self._lock.off()
        self._unlock.off()
        if towards_locked is True:
            self._lock.on()
        elif towards_locked is False:
            self._unlock.on()

    def close(self) -> None:
        try:
            self.drive(None)
        finally:
            self._lock.close()
            self._unlock.close()
            self._switch.close()
