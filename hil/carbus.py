"""What the bench's car-side bus runners (:mod:`hil.chademo_ev_bus`, :mod:`hil.gbt_bms_bus`) share."""

from __future__ import annotations

import logging
from collections.abc import Callable

import can

log = logging.getLogger(__name__)

#: How many frames the bench keeps for tests to look at (a long run must not grow without bound).
HISTORY = 20_000


class GuardedSends:
    """Sends that outlive a bus that is down or unacknowledged (can0 not up, no charger on it): each failure is
    counted, the first and every 100th logged, and the car goes on."""

    def __init__(self, who: str) -> None:
        self.who = who
        self.errors = 0

    def __call__(self, send: Callable[[], object]) -> None:
        """Run one send."""
        try:
            send()
        except can.CanError as exc:
            self.errors += 1
            if self.errors == 1 or self.errors % 100 == 0:
                log.error("%s: cannot send on the bus (%d so far): %s", self.who, self.errors, exc)
