"""Residual current monitor (6 mA DC / 30 mA AC module, e.g. an RCM14-03 or X804) on GPIO.

The module drives a fault output while it measures a residual current above
its threshold, and trips on purpose while its test input is driven (the
self-test). The driver only reports the output's edges; what a trip means
(open now, latch, self-test timing) is ``controller.safety.rcm.RcmControl``'s job.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

from gpiozero import DigitalInputDevice, DigitalOutputDevice

#: Told True when the fault output becomes active, False when it releases (in gpiozero's callback thread).
TripCallback = Callable[[bool], None]


class ResidualCurrentMonitor(ABC):
    """An RCM module: a fault output to watch, a test input to drive."""

    #: Set by the controller; drivers call it on every edge of the fault output.
    on_trip: TripCallback | None = None
    #: The module tests itself (an EVSE board's RCD): the controller's self-test only checks it is not tripped.
    tests_itself: bool = False

    @property
    @abstractmethod
    def tripped(self) -> bool:
        """True while the fault output is active."""

    @abstractmethod
    def set_test(self, active: bool) -> None:
        """Drive (or release) the module's test input."""

    def close(self) -> None:
        """Release the hardware with the test input released."""


class GpioRcm(ResidualCurrentMonitor):
    """Fault output on one GPIO input, test input on one GPIO output."""

    def __init__(
        self,
        *,
        fault_pin: int,
        test_pin: int,
        fault_active_high: bool = True,
        test_active_high: bool = True,
        pin_factory: Any = None,
    ) -> None:
        # A pull against the active level, so a broken wire reads "no trip" only if the module says so:
        # modules with an open-collector output need the pull; push-pull outputs override it.
        self._fault = DigitalInputDevice(fault_pin, pull_up=not fault_active_high, pin_factory=pin_factory)
        self._test = DigitalOutputDevice(test_pin, active_high=test_active_high, initial_value=False,
                                         pin_factory=pin_factory)
        self._fault.when_activated = lambda: self._edge(True)
        self._fault.when_deactivated = lambda: self._edge(False)

    def _edge(self, tripped: bool) -> None:
        callback = self.on_trip
        if callback is not None:
            callback(tripped)

    @property
    def tripped(self) -> bool:
        return bool(self._fault.is_active)

    def set_test(self, active: bool) -> None:
        self._test.value = active

    def close(self) -> None:
        try:
            self._test.off()
        finally:
            self._test.close()
            self._fault.close()
