"""Overcurrent: an EV that draws more than it was offered gets its offer lowered, then its session stopped.

The comparison is with what the charging protocol told the vehicle (AC: the PWM), not with a limit that may not
have reached the vehicle yet, so a slow EV following a lower offer within the grace is no fault.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from controller.domain.faults import Fault
from controller.domain.types import PowerLimit
from controller.evse.machine import Evse
from controller.safety.supervisor import SafetySupervisor
from hal.meter import MeterReading

log = logging.getLogger(__name__)

OVERCURRENT = "overcurrent"


class OvercurrentGuard:
    """Compares each meter reading with the current the charging protocol offered (what the EV was told)."""

    def __init__(self, evse: Evse, supervisor: SafetySupervisor, margin: float, grace: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.evse = evse
        self.supervisor = supervisor
        self.margin = margin
        self.grace = grace
        self._clock = clock
        self._over_since: float | None = None
        self._lowered = False

    def on_reading(self, reading: MeterReading) -> None:
        """A new meter reading (loop thread)."""
        c = self.evse
        offered = c.protocol.offered_amps
        drawn = max((a for a in reading.current if a is not None), default=None)
        if c.transaction is None:
            self._over_since, self._lowered = None, False
            c.set_limit(OVERCURRENT, None)
            if drawn is not None and drawn < self.margin:
                self.supervisor.clear_fault(c.id, Fault.OVERCURRENT)
            return
        if offered is None or drawn is None or drawn <= offered + self.margin:
            self._over_since = None
            return
        now = self._clock()
        if self._over_since is None:
            self._over_since = now
            log.warning("connector %d: EV draws %.1f A, %.1f A offered", c.id, drawn, offered)
            return
        if now - self._over_since < self.grace:
            return
        if not self._lowered:
            self._lowered = True
            self._over_since = now
            lowered = max(6.0, offered - (drawn - offered))
            log.warning("connector %d: EV overdraws for %.1f s; offer lowered to %.1f A", c.id, self.grace, lowered)
            c.set_limit(OVERCURRENT, PowerLimit(amps=lowered))
            return
        self.supervisor.raise_fault(c.id, Fault.OVERCURRENT, f"{drawn:.1f} A drawn, {offered:.1f} A offered")
