"""Proximity pilot (IEC 62196-2 Type 2 socket): the cable's PP-PE resistor tells its current rating.

Rating table (``shared/reference/hardware.md`` 1.5, Phoenix Contact manual):
below 75 ohm is an error; 75-150 ohm 63 A; 150-330 ohm 32 A; 330-1000 ohm
20 A; 1000-2200 ohm 13 A; above 2200 ohm no cable. The resistor is read as a
divider: a pull-up of ``pullup_ohms`` from Vref to PP on an MCP3008 channel,
so ``fraction = R / (R + pull-up)``.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import Any

from gpiozero import MCP3008

from hal.errors import HalConfigError

#: (upper bound in ohms, rating in A), lowest first; below the first bound is a fault.
_RATINGS = ((150.0, 63.0), (330.0, 32.0), (1000.0, 20.0), (2200.0, 13.0))
MIN_OHMS = 75.0


class ProximityError(ValueError):
    """The PP resistance means no valid cable (shorted, or no resistor)."""


def cable_rating(ohms: float) -> float:
    """The current rating of a cable with this PP-PE resistance; ProximityError when out of range."""
    if ohms < MIN_OHMS:
        raise ProximityError(f"PP resistance {ohms:.0f} ohm is below {MIN_OHMS:.0f} ohm (shorted)")
    for bound, amps in _RATINGS:
        if ohms < bound:
            return amps
    raise ProximityError(f"PP resistance {ohms:.0f} ohm means no cable resistor (above 2200 ohm)")


class ProximityInput(ABC):
    """Reads the PP-PE resistance of the cable in the socket."""

    @abstractmethod
    def read_ohms(self) -> float:
        """PP-PE resistance in ohms (inf with nothing connected)."""

    def close(self) -> None:
        """Release the hardware."""


class AdcProximity(ProximityInput):
    """PP divider on an MCP3008 channel (the same SPI device as the pilot)."""

    def __init__(self, *, adc_channel: int, pullup_ohms: float, spi_port: int = 0, spi_device: int = 0,
                 pin_factory: Any = None) -> None:
        if pullup_ohms <= 0:
            raise HalConfigError(f"PP pull-up must be positive, got {pullup_ohms:g} ohm")
        self._pullup = pullup_ohms
        self._adc = MCP3008(channel=adc_channel, port=spi_port, device=spi_device, pin_factory=pin_factory)

    def read_ohms(self) -> float:
        fraction = float(self._adc.value)
        if fraction >= 1.0:
            return math.inf
        return self._pullup * fraction / (1.0 - fraction)

    def close(self) -> None:
        self._adc.close()
