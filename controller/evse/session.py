"""An EVSE's session (the authorisation a transaction starts from) and how its limits read in the log."""

from __future__ import annotations

from dataclasses import dataclass

from controller.domain.types import AuthDecision, IdToken, PowerLimit, TriggerReason


@dataclass
class Session:
    """An authorisation waiting for, or attached to, a transaction."""

    id_token: IdToken
    trigger: TriggerReason  # AUTHORIZED (a card) or REMOTE_START
    decision: AuthDecision | None = None  # as it was given (None: accepted without a word on it)
    reservation_id: int | None = None
    remote_start_id: int | None = None
    at: float = 0.0  # monotonic time of the tap (or the authorisation)

    @property
    def group(self) -> IdToken | None:
        """The identifier's group (1.6 parentIdTag, 2.0.1 groupIdToken), as the decision gave it."""
        return self.decision.group if self.decision is not None else None


def describe(limit: PowerLimit) -> str:
    """A limit as the log says it ("16.0 A / 11000 W", or "none")."""
    parts = [f"{limit.amps:.1f} A" if limit.amps is not None else "",
             f"{limit.watts:.0f} W" if limit.watts is not None else ""]
    return " / ".join(p for p in parts if p) or "none"
