"""Card readers: a role that reports card UIDs as uppercase hex strings."""

from __future__ import annotations

import asyncio
import logging
from abc import ABC, abstractmethod
from collections.abc import Callable

log = logging.getLogger(__name__)

CardCallback = Callable[[str], None]
#: Told False when the reader fails, True when it works again (and once at the first start).
HealthCallback = Callable[[bool], None]


class CardReader(ABC):
    """Reports each card presented, once per presentation.

    :meth:`run` owns the reader until cancelled: it opens the port, talks to the
    reader and, when the reader or its port fails, logs it and reopens with a
    growing back-off. It never raises for a device fault, so a broken reader
    cannot take the daemon down.
    """

    #: Seconds between reopen attempts: first, and the cap of the doubling.
    reopen_delay = (0.5, 30.0)

    def __init__(self, *, port: str) -> None:
        self.port = port
        self.failures = 0
        self.on_health: HealthCallback | None = None
        self.healthy: bool | None = None

    def _set_health(self, healthy: bool) -> None:
        """Drivers call this with True once the reader answers; the base class with False on a failure."""
        if healthy != self.healthy:
            self.healthy = healthy
            if self.on_health is not None:
                self.on_health(healthy)

    async def run(self, on_card: CardCallback) -> None:
        """Read cards until cancelled, calling ``on_card(uid)`` for each presentation."""
        delay = self.reopen_delay[0]
        while True:
            try:
                await self._session(on_card)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.failures += 1
                self._set_health(False)
                log.warning(
                    "%s on %s failed: %s; reopening in %.1f s", type(self).__name__, self.port, exc, delay
                )
            else:
                delay = self.reopen_delay[0]
            finally:
                self._close()
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.reopen_delay[1])

    @abstractmethod
    async def _session(self, on_card: CardCallback) -> None:
        """Open the port and read cards until the reader fails (raise) or the port ends (return)."""

    @abstractmethod
    def _close(self) -> None:
        """Close the port if it is open."""
