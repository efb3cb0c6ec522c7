"""A reservation: an EVSE kept for one identifier (or its group) until it expires."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

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
