"""Energy meters: a role that returns one consistent reading per call."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field


@dataclass(frozen=True)
class MeterReading:
    """One reading. Energy in Wh, power in W, per-phase volts and amps (None: not measured)."""

    energy_wh: float
    power_w: float | None = None
    voltage: tuple[float | None, float | None, float | None] = (None, None, None)
    current: tuple[float | None, float | None, float | None] = (None, None, None)
    #: What the charging protocol adds (a meter does not measure them): the car's state of charge in
    #: percent, and the power the charger offers in W.
    soc: float | None = None
    offered_w: float | None = None
    #: Monotonic time the reading was taken.
    taken_at: float = field(default=0.0, compare=False)


class EnergyMeter(ABC):
    """A meter reached over some bus. ``read`` is async and never blocks the loop."""

    @abstractmethod
    async def read(self) -> MeterReading:
        """Take a reading; raises a HalError when the meter does not answer sensibly."""

    async def identify(self) -> str | None:
        """The meter's serial number, where it reports one (None: it does not, or its map does not say where)."""
        return None

    async def close(self) -> None:
        """Release the bus."""
