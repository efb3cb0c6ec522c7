"""Time, injectable: a monotonic clock for timers, UTC wall time for what is sent out."""

from __future__ import annotations

import time
from datetime import UTC, datetime


class Clock:
    """The real clocks. Tests substitute a subclass to run timeouts fast."""

    def monotonic(self) -> float:
        """Seconds on a clock that never jumps (timers, timeouts, latencies)."""
        return time.monotonic()

    def utcnow(self) -> datetime:
        """The current UTC time (timestamps in messages)."""
        return datetime.now(UTC)


def iso_utc(moment: datetime) -> str:
    """RFC 3339 / ISO 8601 UTC with milliseconds and a ``Z``: ``2026-11-21T19:17:00.123Z``."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime: timestamps must carry a timezone")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
