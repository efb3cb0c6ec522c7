"""Time, injectable: a monotonic clock for timers, UTC wall time for what is sent out."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta


class Clock:
    """The real clocks. Tests substitute a subclass to run timeouts fast.

    The wall clock can follow the CSMS (BootNotification ``currentTime``) without
    touching the system clock: an offset is kept and applied to every timestamp.
    """

    def __init__(self) -> None:
        self._offset = timedelta(0)

    def monotonic(self) -> float:
        """Seconds on a clock that never jumps (timers, timeouts, latencies)."""
        return time.monotonic()

    def utcnow(self) -> datetime:
        """The current UTC time (timestamps in messages), corrected by the CSMS's clock."""
        return datetime.now(UTC) + self._offset

    def follow(self, reference: datetime) -> timedelta:
        """Take ``reference`` as the correct time now; returns the correction applied."""
        self._offset = reference - datetime.now(UTC)
        return self._offset


def iso_utc(moment: datetime) -> str:
    """RFC 3339 / ISO 8601 UTC with milliseconds and a ``Z``: ``2026-11-21T19:17:00.123Z``."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime: timestamps must carry a timezone")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def parse_time(text: str) -> datetime:
    """Parse an OCPP date-time (``Z`` or an offset); naive values are taken as UTC."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
