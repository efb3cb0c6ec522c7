"""A temperature input: a 1-Wire sensor (DS18B20) through the kernel's w1 sysfs files.

``.../temperature`` holds millidegrees Celsius ("23125"); the older
``.../w1_slave`` holds two lines, the first ending in "YES" when the CRC
matched and the second ending in ``t=23125``. Both are read here.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from pathlib import Path

from hal.errors import HalError


class SensorError(HalError):
    """The sensor file is missing, unreadable or holds no valid reading."""


def parse_w1(text: str) -> float:
    """Degrees Celsius from either w1 file format; SensorError when it holds none."""
    text = text.strip()
    lines = text.splitlines()
    if len(lines) >= 2:
        if not lines[0].rstrip().endswith("YES"):
            raise SensorError("1-Wire CRC check failed")
        _, _, value = lines[1].rpartition("t=")
    else:
        value = text
    try:
        return int(value) / 1000.0
    except ValueError:
        raise SensorError(f"no temperature in {text[:40]!r}") from None


class Thermometer(ABC):
    """A temperature input."""

    @abstractmethod
    async def read(self) -> float:
        """Degrees Celsius; SensorError when the sensor gives none."""


class W1Thermometer(Thermometer):
    """Reads one w1 sensor file (in a worker thread: sysfs reads of w1 take about 750 ms)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    async def read(self) -> float:
        try:
            text = await asyncio.to_thread(self.path.read_text)
        except OSError as exc:
            raise SensorError(f"{self.path}: {exc.strerror or exc}") from exc
        return parse_w1(text)
