"""The voltage at a DC outlet (the cable side of the contactors), as the control step reads it.

The DC meter's voltage taps sit on the outlet side, so its reading is the outlet voltage; it comes
every ``meter.poll_interval`` (0.2 s in the shipped DC configs). While the contactors are closed the
power stage's own reading (every ``dc_power.poll_interval``) is the same node seen from behind them,
so the higher of the two is used: the over-voltage guard sees a rise within the faster poll.

A meter reading older than ``STALE_AFTER`` (1 s: the config keeps a DC meter's poll at 0.3 s or less and
its timeout at 0.5 s or less) is no reading: the outlet counts as live (at least 60 V) until the meter
answers again, so nothing unlocks a connector on a stale "0 V". A DC connector's meter loss is always a
fault (the config allows no ``continue`` policy for DC).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hal.dc_power import DcPowerStage
from hal.meter import MeterReading

#: What the outlet counts as while its voltage is unknown: live (the DC touch-safe level).
UNKNOWN_VOLTS = 60.0
#: A meter reading older than this (s) says nothing about the outlet now.
STALE_AFTER = 1.0


class OutletVoltage:
    """Call it for the outlet voltage in volts; feed it the DC meter's readings with :meth:`on_reading`."""

    def __init__(self, power: DcPowerStage, contactors_closed: Callable[[], bool], *, clock: Callable[[], float],
                 stale_after: float = STALE_AFTER) -> None:
        self.power = power
        self.contactors_closed = contactors_closed
        self.stale_after = stale_after
        self.clock = clock
        self.meter_volts: float | None = None
        self.meter_at = float("-inf")

    def on_reading(self, _evse: Any, reading: MeterReading) -> None:
        """A DC meter reading (its voltage is in the first phase's slot)."""
        volts = reading.voltage[0]
        if volts is not None:
            self.meter_volts = volts
            self.meter_at = self.clock()

    def __call__(self) -> float:
        volts = self.meter_volts
        if volts is None or self.clock() - self.meter_at > self.stale_after:
            volts = max(volts or 0.0, UNKNOWN_VOLTS)
        if self.contactors_closed():
            volts = max(volts, self.power.reading.voltage)
        return volts
