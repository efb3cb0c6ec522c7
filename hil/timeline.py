"""What the bench observed, with monotonic timestamps: the source of every timing figure."""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Observation:
    """One thing the bench saw or did: ``kind`` is pilot, pwm, contactor, card, status, meter, fault, clear, and
    on a DC outlet dc (V and A), can (a frame) and phase (the charge sequence's, as the charger or the car saw it);
    a remote bench's car records car (plug, unplug)."""

    t: float
    kind: str
    connector: int | None
    value: Any


#: How often a DC outlet's voltage and current go on the timeline (and on any change of 5 V or 2 A).
DC_SAMPLE = 0.1
#: Observations kept (the newest): a DC outlet records its car's frames and its V/I, ~60 a second.
LIMIT = 200_000


class Timeline:
    """A thread-safe record of the newest ``limit`` observations (pin observers run in any thread)."""

    def __init__(self, limit: int = LIMIT) -> None:
        self._lock = threading.Lock()
        self._items: deque[Observation] = deque(maxlen=limit)
        self.t0 = time.monotonic()

    def record(self, kind: str, connector: int | None, value: Any, t: float | None = None) -> Observation:
        """Add an observation (now, unless ``t`` is given)."""
        item = Observation(time.monotonic() if t is None else t, kind, connector, value)
        with self._lock:
            self._items.append(item)
        return item

    def items(self, kind: str | None = None, connector: int | None = None, since: float = 0.0) -> list[Observation]:
        """Observations filtered by kind, connector and time."""
        with self._lock:
            items = list(self._items)
        return [
            o for o in items
            if (kind is None or o.kind == kind) and (connector is None or o.connector == connector) and o.t >= since
        ]

    def first(self, kind: str, connector: int | None, value: Any, since: float) -> Observation | None:
        """The first observation of ``kind`` with ``value`` at or after ``since``."""
        for o in self.items(kind, connector, since):
            if o.value == value:
                return o
        return None

    def clear(self) -> None:
        """Forget everything (long benchmarks keep memory flat)."""
        with self._lock:
            self._items.clear()

    def as_json(self) -> list[dict[str, Any]]:
        """Observations as dicts with times relative to the bench's start, in seconds."""
        return [{**asdict(o), "t": round(o.t - self.t0, 6)} for o in self.items()]


class DcSampler:
    """A DC outlet's voltage and current on a timeline as ``dc`` observations: every :data:`DC_SAMPLE` s and on any
    change of 5 V or 2 A (a reading every few ms would fill the timeline with the same values)."""

    def __init__(self, timeline: Timeline, connector: int) -> None:
        self.timeline, self.connector = timeline, connector
        self._seen = (0.0, 0.0, float("-inf"))

    def sample(self, volts: float, amps: float, now: float) -> None:
        """Record this reading if it is due or differs enough from the last one recorded."""
        seen_v, seen_a, seen_t = self._seen
        if now - seen_t >= DC_SAMPLE or abs(volts - seen_v) >= 5 or abs(amps - seen_a) >= 2:
            self._seen = (volts, amps, now)
            self.timeline.record("dc", self.connector, {"V": round(volts, 1), "A": round(amps, 1)}, now)
