"""Insulation monitoring device (IMD) role: the DC output's resistance to PE, measured and self-tested.

The cable check before a DC session and the watch during it read the resistance; a value is only
trusted once the device calls it valid (a Bender needs up to 10 s of measuring). What a low value
means (fault at 100 ohm/V or 100 kOhm, warning at 500 ohm/V) is the charging protocol's decision.
"""

from __future__ import annotations

import enum
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field


class ImdAlarm(enum.Enum):
    """The device's own verdict, as its thresholds see it."""

    NONE = "none"
    PREWARNING = "prewarning"
    WARNING = "warning"
    ALARM = "alarm"
    DEVICE_FAULT = "device fault"


@dataclass(frozen=True, slots=True)
class InsulationReading:
    """One measurement; ``resistance`` is None while the device has no valid value (measuring, testing)."""

    resistance: float | None  # ohms from the DC output to PE (the lower pole)
    alarm: ImdAlarm = ImdAlarm.NONE
    testing: bool = False
    voltage: float | None = None  # the DC voltage the device sees between the poles
    at: float = field(default_factory=time.monotonic)


class InsulationMonitor(ABC):
    """One IMD on the DC output of an outlet."""

    @abstractmethod
    async def open(self) -> None:
        """Connect and write the thresholds; measuring stays as the device was."""

    @abstractmethod
    async def start(self) -> None:
        """Start measuring."""

    @abstractmethod
    async def stop(self) -> None:
        """Stop measuring (some supplies will not start while the IMD injects)."""

    @abstractmethod
    async def self_test(self, timeout: float = 30.0) -> bool:
        """Run the device's self-test; True when it passed within ``timeout`` s."""

    @abstractmethod
    async def read(self) -> InsulationReading:
        """The latest measurement."""

    @abstractmethod
    async def close(self) -> None:
        """Release the bus."""
