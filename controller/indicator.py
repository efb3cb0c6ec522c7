"""The status LED of one EVSE: a colour and blink pattern per status, and a flash for each card decision."""

from __future__ import annotations

import asyncio

from controller.domain.events import CardRead, Event, StatusChanged
from controller.domain.types import EvseStatus
from hal.led import Colour, StatusLed

# Status patterns: (colour, blink half-period or None for steady).
GREEN, BLUE, RED, YELLOW, OFF = (0, 1, 0), (0, 0, 1), (1, 0, 0), (1, 1, 0), (0, 0, 0)
PATTERNS: dict[EvseStatus, tuple[Colour, float | None]] = {
    EvseStatus.AVAILABLE: (GREEN, None),
    EvseStatus.PREPARING: (BLUE, 0.5),  # waiting for a card (or for the EV)
    EvseStatus.CHARGING: (BLUE, None),
    EvseStatus.SUSPENDED_EV: (BLUE, 1.0),
    EvseStatus.SUSPENDED_EVSE: (BLUE, 1.0),
    EvseStatus.FINISHING: (GREEN, 0.5),
    EvseStatus.RESERVED: (YELLOW, None),
    EvseStatus.UNAVAILABLE: (RED, None),
    EvseStatus.FAULTED: (RED, 0.2),
}
FLASH = 0.15


class Indicator:
    """One connector's status LED, driven by the station's events."""

    def __init__(self, evse_id: int, led: StatusLed) -> None:
        self.id = evse_id
        self.led = led
        self.pattern: tuple[Colour, float | None] = PATTERNS[EvseStatus.AVAILABLE]
        self._restore: asyncio.TimerHandle | None = None
        self.led.show(*self.pattern)

    def on_event(self, event: Event) -> None:
        """Station event (loop thread)."""
        if isinstance(event, StatusChanged) and event.evse_id == self.id:
            self.pattern = PATTERNS[event.status]
            if self._restore is None:
                self.led.show(*self.pattern)
        elif isinstance(event, CardRead) and event.evse_id == self.id:
            # Accepted: two green flashes; rejected: three red ones. Then back to the status pattern.
            colour, times = (GREEN, 2) if event.accepted else (RED, 3)
            self.led.show(colour, FLASH, times)
            if self._restore is not None:
                self._restore.cancel()
            self._restore = asyncio.get_running_loop().call_later(2 * FLASH * times + 0.05, self._back)

    def _back(self) -> None:
        self._restore = None
        self.led.show(*self.pattern)
