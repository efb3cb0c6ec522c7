"""A reservation: an EVSE kept for one identifier (or its group) until it expires."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from controller.clock import Clock
from controller.domain.types import IdToken


@dataclass(frozen=True)
class Reservation:
    """ReserveNow: kept for ``id_token`` (or a card of its ``group``) until ``expires_at`` (UTC).

    Wall-clock time, not monotonic: reservations are persisted and outlive a restart.
    """

    reservation_id: int
    id_token: IdToken
    group: IdToken | None
    expires_at: datetime

    def admits(self, id_token: IdToken | str, group: IdToken | None) -> bool:
        """The reserved identifier itself, or one of the reservation's group."""
        if self.id_token.same_as(id_token):
            return True
        return self.group is not None and group is not None and self.group.same_as(group)


class ReservationSlot:
    """The one reservation an EVSE may hold: its expiry timer, and whom to tell when it changes (to persist it)."""

    def __init__(self, evse_id: int, clock: Clock, on_expired: Callable[[], None]) -> None:
        self.evse_id = evse_id
        self.clock = clock
        self.current: Reservation | None = None
        self._on_expired = on_expired
        self._timer: asyncio.TimerHandle | None = None
        #: Called with (EVSE id, the reservation or None when it ends).
        self.on_change: Callable[[int, Reservation | None], None] | None = None

    def hold(self, reservation: Reservation) -> float:
        """Keep the EVSE for ``reservation``; returns the seconds until it expires."""
        self.drop()
        self.current = reservation
        delay = max(0.0, (reservation.expires_at - self.clock.utcnow()).total_seconds())
        self._timer = asyncio.get_running_loop().call_later(delay, self._expired)
        if self.on_change is not None:
            self.on_change(self.evse_id, reservation)
        return delay

    def drop(self) -> None:
        """The reservation is used, cancelled or expired."""
        self.close()
        if self.current is not None and self.on_change is not None:
            self.on_change(self.evse_id, None)
        self.current = None

    def close(self) -> None:
        """Stop the timer only: at shutdown the reservation stays kept for the next start."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _expired(self) -> None:
        self._timer = None
        if self.current is not None:
            self._on_expired()
