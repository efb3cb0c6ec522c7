"""DC power stage role: the rectifier modules behind a DC outlet.

A stage has fixed capabilities, takes a voltage target with a current limit, switches its output
off, and reports what it measures and any fault. Several modules behind one outlet share the
current; the driver hides how. :meth:`DcPowerStage.off` returns only once the current is below a
safe level or a bound has passed: the caller (the supervisor's hook before opening the DC
contactors) needs to know which. A module's own silence timeout is never relied on: drivers switch
off by command.
"""

from __future__ import annotations

import asyncio
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field

#: Current below which DC contactors may open (CHAdeMO and GB/T both say 5 A).
SAFE_CURRENT = 5.0


@dataclass(frozen=True, slots=True)
class PowerCapabilities:
    """What the stage can deliver at its output."""

    min_voltage: float
    max_voltage: float
    max_current: float
    max_power: float

    def current_at(self, voltage: float) -> float:
        """The most current the stage can give at ``voltage`` (its current or its power limit)."""
        if voltage <= 0:
            return self.max_current
        return min(self.max_current, self.max_power / voltage)


@dataclass(frozen=True, slots=True)
class PowerReading:
    """One measurement of the output; ``faults`` names what the stage reports wrong (empty: healthy)."""

    voltage: float
    current: float
    on: bool
    faults: frozenset[str] = field(default_factory=frozenset)
    #: When it was measured (monotonic): a driver whose parts answer at different times gives the oldest.
    at: float = field(default_factory=time.monotonic)


#: Told each new set of faults (empty when they cleared), from whichever thread the driver reads in.
FaultCallback = Callable[[frozenset[str]], None]


class DcPowerStage(ABC):
    """The power modules of one DC outlet."""

    #: Set by the controller; the driver calls it when its fault set changes.
    on_fault: FaultCallback | None = None

    @abstractmethod
    async def open(self) -> PowerCapabilities:
        """Find the modules and read what they can do; the output stays off."""

    @property
    @abstractmethod
    def capabilities(self) -> PowerCapabilities:
        """What :meth:`open` found."""

    @abstractmethod
    def set(self, voltage: float, current: float) -> None:
        """Turn the output on (if it is not) towards ``voltage``, drawing at most ``current`` (never blocks)."""

    @abstractmethod
    def shut_off(self) -> None:
        """Command the output off now and return at once (any thread: the supervisor's trip path uses it)."""

    async def off(self, safe_current: float = SAFE_CURRENT, bound: float = 1.0) -> bool:
        """Switch the output off; True once the current is below ``safe_current``, False if ``bound`` s passed."""
        self.shut_off()
        deadline = time.monotonic() + bound
        while True:
            if abs(self.reading.current) < safe_current:
                return True
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(0.01)

    @property
    @abstractmethod
    def reading(self) -> PowerReading:
        """The latest measurement (the driver keeps it fresh)."""

    @abstractmethod
    async def close(self) -> None:
        """Switch off and release the bus."""
