"""The station: its connectors, the shared card reader's routing, and remote commands.

It is where domain events fan out to subscribers (the OCPP client, the bench)
and where a card tap becomes a decision: stop the session it belongs to, or
authorise it for the connector waiting for one.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from controller.connector import Connector, Reservation
from controller.events import (
    CardRead,
    ConnectorStatus,
    Event,
    StatusChanged,
    StopReason,
    TransactionEnded,
    TransactionStarted,
)
from hal.pilot import MIN_CURRENT_A

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AuthResult:
    """The answer to "may this idTag charge?"."""

    accepted: bool
    status: str
    parent_id_tag: str | None = None


class Authorizer(Protocol):
    """Decides whether an idTag may charge (the OCPP client, online)."""

    async def authorize(self, id_tag: str) -> AuthResult:
        """Ask the CSMS (or a local list) about ``id_tag``."""
        ...


class Station:
    """All connectors of one charger."""

    def __init__(self, connectors: list[Connector] | None = None, site_current_limit: float = 0.0) -> None:
        self.connectors: dict[int, Connector] = {}
        #: Amps per phase for all connectors together (0: no limit); see :meth:`rebalance`.
        self.site_current_limit = site_current_limit
        self.authorizer: Authorizer | None = None
        #: Called with (connector id, operative) whenever availability is set, so it can be persisted.
        self.on_availability: Callable[[int, bool], None] | None = None
        self._subscribers: list[Callable[[Event], None]] = []
        self._pending_cards: set[str] = set()
        self._subscribers.append(self._on_own_event)
        for c in connectors or []:
            self.add(c)

    def add(self, connector: Connector) -> None:
        """Register a connector (its events must go through :meth:`emit`)."""
        self.connectors[connector.id] = connector

    def subscribe(self, callback: Callable[[Event], None]) -> None:
        """Receive every domain event, on the loop thread, in order."""
        self._subscribers.append(callback)

    def emit(self, event: Event) -> None:
        """Deliver an event to every subscriber; a failing subscriber is logged and skipped."""
        for callback in list(self._subscribers):
            try:
                callback(event)
            except Exception:
                log.exception("event subscriber %r failed on %r", callback, event)

    def status(self, connector_id: int) -> ConnectorStatus:
        """A connector's current status."""
        return self.connectors[connector_id].status

    # ----------------------------------------------------------------- cards

    def on_card(self, uid: str) -> None:
        """A card was presented to the shared reader (called by the reader task)."""
        if uid in self._pending_cards:
            return  # the same card tapped again while its Authorize is in flight
        owner = self._connector_of_tag(uid)
        if owner is not None:
            owner.stop(StopReason.LOCAL, uid)
            self.emit(CardRead(uid, True, owner.id, "stopped the session"))
            return
        target = (self._connector_for_new_session() or self._any_reserved_connector()
                  or self._connector_with_parent_session())
        if target is None:
            log.info("card %s ignored: no connector can take a new session", uid)
            self.emit(CardRead(uid, False, None, "no connector free"))
            return
        self._pending_cards.add(uid)
        asyncio.get_running_loop().create_task(self._authorize_card(uid, target))

    async def _authorize_card(self, uid: str, target: Connector) -> None:
        try:
            if self.authorizer is None:
                result = AuthResult(False, "NoAuthorizer")
            else:
                result = await self.authorizer.authorize(uid)
        except Exception as exc:
            log.warning("card %s: authorisation failed (%s); not charging", uid, exc)
            result = AuthResult(False, "Error")
        finally:
            self._pending_cards.discard(uid)
        if result.accepted and result.parent_id_tag:
            # A card of the same group (parentIdTag) may stop a session it did not start.
            for c in self.connectors.values():
                parent = c.session.parent_id_tag if c.session else None
                if c.transaction is not None and parent and parent.casefold() == result.parent_id_tag.casefold():
                    c.stop(StopReason.LOCAL, uid)
                    self.emit(CardRead(uid, True, c.id, "stopped the session (same parentIdTag)"))
                    return
        if not result.accepted:
            log.info("card %s rejected (%s)", uid, result.status)
            self.emit(CardRead(uid, False, target.id, result.status))
            return
        reserved = self._reserved_for(uid, result.parent_id_tag)
        if reserved is not None:
            target = reserved
        if target.authorize(uid, "card", result.parent_id_tag):
            self.emit(CardRead(uid, True, target.id, "authorised"))
        else:
            self.emit(CardRead(uid, False, target.id, "connector no longer free"))

    def _connector_of_tag(self, uid: str) -> Connector | None:
        for c in self.connectors.values():
            if c.session is not None and c.session.id_tag.casefold() == uid.casefold():
                return c
        return None

    def _reserved_for(self, id_tag: str, parent_id_tag: str | None) -> Connector | None:
        for c in self.connectors.values():
            if c.reservation is not None and c.reservation.admits(id_tag, parent_id_tag):
                return c
        return None

    def _any_reserved_connector(self) -> Connector | None:
        # Only reservations left: authorise the card, then see whether it holds one of them.
        return next((c for c in self.connectors.values() if c.reservation is not None), None)

    def _connector_with_parent_session(self) -> Connector | None:
        # Every connector is busy, but the card may belong to the group of one running session.
        for c in self.connectors.values():
            if c.session is not None and c.session.parent_id_tag:
                return c
        return None

    def _connector_for_new_session(self) -> Connector | None:
        # The EV waiting longest for authorisation gets the card; otherwise the first free connector.
        waiting = [
            c for c in self.connectors.values()
            if c.session is None and c.status == ConnectorStatus.PREPARING and c.plugged_at is not None
        ]
        if waiting:
            return min(waiting, key=lambda c: c.plugged_at or 0.0)
        free = self._free_connectors()
        return free[0] if free else None

    # -------------------------------------------------------- remote commands

    def remote_start(self, id_tag: str, connector_id: int | None, parent_id_tag: str | None = None) -> bool:
        """RemoteStartTransaction: authorise ``id_tag`` on a connector; False when refused."""
        target = self._remote_target(id_tag, connector_id)
        return target is not None and target.authorize(id_tag, "remote", parent_id_tag)

    def can_start(self, id_tag: str, connector_id: int | None) -> bool:
        """Would a remote start for ``id_tag`` find a connector right now?"""
        target = self._remote_target(id_tag, connector_id)
        if target is None or target.session is not None:
            return False
        if target.reservation is not None:
            return target.reservation.admits(id_tag, None)
        return target.status in (ConnectorStatus.AVAILABLE, ConnectorStatus.PREPARING)

    def _remote_target(self, id_tag: str, connector_id: int | None) -> Connector | None:
        if connector_id == 0:
            return None  # OCPP: a transaction cannot start on connector 0
        if connector_id is not None:
            return self.connectors.get(connector_id)
        return self._reserved_for(id_tag, None) or self._connector_for_new_session()

    def deauthorize(self, local_id: str, *, stop: bool, max_energy_wh: int) -> None:
        """The CSMS did not accept a running transaction's idTag."""
        connector = self._running(local_id)
        if connector is not None:
            connector.deauthorize(stop, max_energy_wh)

    def _running(self, local_id: str) -> Connector | None:
        """The connector running the transaction with this station-local id."""
        return next((c for c in self.connectors.values()
                     if c.transaction is not None and c.transaction.local_id == local_id), None)

    def reserve(self, connector_id: int, reservation: Reservation, zero_supported: bool) -> str:
        """ReserveNow: Accepted, Faulted, Occupied, Rejected or Unavailable."""
        for c in self.connectors.values():
            if c.reservation is not None and c.reservation.reservation_id == reservation.reservation_id:
                if c.id != connector_id and connector_id != 0:
                    c.cancel_reservation()  # the same reservation id moves to another connector
                else:
                    return c.reserve_for(reservation)
        if connector_id == 0:
            if not zero_supported:
                return "Rejected"
            answers = [c.reserve_for(reservation) for c in self._free_connectors()[:1]]
            if answers:
                return answers[0]
            states = {c.status for c in self.connectors.values()}
            if states == {ConnectorStatus.FAULTED}:
                return "Faulted"
            if states == {ConnectorStatus.UNAVAILABLE}:
                return "Unavailable"
            return "Occupied"
        connector = self.connectors.get(connector_id)
        return "Rejected" if connector is None else connector.reserve_for(reservation)

    def cancel_reservation(self, reservation_id: int) -> bool:
        """CancelReservation: False when no such reservation exists."""
        for c in self.connectors.values():
            if c.reservation is not None and c.reservation.reservation_id == reservation_id:
                c.cancel_reservation()
                return True
        return False

    def _free_connectors(self) -> list[Connector]:
        return [c for c in self.connectors.values() if c.session is None and c.status == ConnectorStatus.AVAILABLE]

    def change_availability(self, connector_id: int, operative: bool) -> str:
        """ChangeAvailability: connector 0 means the whole station. Accepted, Scheduled or Rejected."""
        if connector_id == 0:
            targets = list(self.connectors.values())
        elif connector_id in self.connectors:
            targets = [self.connectors[connector_id]]
        else:
            return "Rejected"
        answers = {c.set_operative(operative) for c in targets}
        for c in targets:
            if self.on_availability is not None:
                self.on_availability(c.id, operative)
        if connector_id == 0 or self.station_status() != ConnectorStatus.AVAILABLE:
            self.emit(StatusChanged(0, self.station_status()))
        return "Scheduled" if "Scheduled" in answers else "Accepted"

    def station_status(self) -> ConnectorStatus:
        """Connector 0: Unavailable when every connector is, else Available."""
        if self.connectors and all(c.status == ConnectorStatus.UNAVAILABLE for c in self.connectors.values()):
            return ConnectorStatus.UNAVAILABLE
        return ConnectorStatus.AVAILABLE

    def stop_all(self, reason: StopReason) -> int:
        """End every running transaction (reset, shutdown); returns how many."""
        stopped = 0
        for c in self.connectors.values():
            if c.transaction is not None and c.stop(reason):
                stopped += 1
        return stopped

    async def unlock(self, connector_id: int) -> str:
        """UnlockConnector: ends the transaction (UnlockCommand), then frees the cable.

        Unlocked, UnlockFailed (the lock did not open), or NotSupported for no such connector.
        A tethered cable has no lock: once the transaction has ended it is free.
        """
        connector = self.connectors.get(connector_id)
        if connector is None:
            return "NotSupported"
        if connector.transaction is not None:
            connector.stop(StopReason.UNLOCK_COMMAND)
        if connector.lock is not None and not await connector.lock.unlock():
            return "UnlockFailed"
        return "Unlocked"

    # ------------------------------------------------------------ site limit

    def rebalance(self) -> None:
        """Share ``site_current_limit`` between the connectors with a transaction (equal shares, >= 6 A each).

        When the limit cannot give every one 6 A, the earliest transactions get the shares and the rest
        wait in SuspendedEVSE. An idle connector is pre-set to the share it would get on starting, so a
        new session never starts above it; the others come down on the next loop turn.
        """
        limit = self.site_current_limit
        if not limit:
            return
        started = {c.id: c.transaction.started_at for c in self.connectors.values() if c.transaction is not None}
        active = sorted((self.connectors[cid] for cid in started), key=lambda c: (started[c.id], c.id))
        fit = min(len(active), int(limit // MIN_CURRENT_A))
        share = limit / fit if fit else 0.0
        for i, c in enumerate(active):
            c.set_limit("site", share if i < fit else 0.0)
        idle_share = limit / (len(active) + 1)
        for c in self.connectors.values():
            if c.transaction is None:
                c.set_limit("site", idle_share if idle_share >= MIN_CURRENT_A else 0.0)

    def _on_own_event(self, event: Event) -> None:
        if isinstance(event, TransactionStarted | TransactionEnded) and self.site_current_limit:
            asyncio.get_running_loop().call_soon(self.rebalance)

    def stop_transaction(self, local_id: str, reason: StopReason) -> bool:
        """Stop the transaction with this station-local id; False when none is running."""
        connector = self._running(local_id)
        return connector is not None and connector.stop(reason)
