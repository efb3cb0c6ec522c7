"""The station: its EVSEs, the shared card reader's routing, the site limit, and station-wide commands.

It is where domain events fan out to subscribers (the OCPP client, the LEDs, the bench) and where a card tap
becomes a decision: stop the session it belongs to, or authorise it for the EVSE waiting for one (and a card
tapped before the cable, for the EVSE its vehicle is plugged into: :meth:`Station._follow_vehicle`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Protocol

from controller.domain.events import (
    CardRead,
    Event,
    StatusChanged,
    TransactionEnded,
    TransactionStarted,
    VehicleConnected,
)
from controller.domain.types import (
    Answer,
    AuthDecision,
    AuthSource,
    AuthStatus,
    EvseStatus,
    IdToken,
    IdTokenType,
    PowerLimit,
    StopReason,
    TriggerReason,
)
from controller.evse.machine import Evse
from controller.evse.reservation import Reservation
from hal.pilot import MIN_CURRENT_A

log = logging.getLogger(__name__)

SITE = "site"
#: A card follows a vehicle plugged in at another free EVSE (or while the CSMS answers Authorize) only when the
#: plug-in came this soon (s) after the tap: then both were one driver's (the pilot confirms a plug-in up to about
#: 0.1 s late). Later, the car may be a stranger's: the card stays, and the driver cancels it with a second tap.
MOVE_WINDOW = 2.0


class Authorizer(Protocol):
    """Decides whether an identifier may charge (the OCPP client: CSMS, local list, cache, offline rules)."""

    async def authorize(self, id_token: IdToken) -> AuthDecision:
        """Ask about ``id_token``."""
        ...


class Station:
    """All EVSEs of one charger."""

    def __init__(self, site_current_limit: float = 0.0) -> None:
        self.evses: dict[int, Evse] = {}
        #: Amps per phase for all EVSEs together (0: no limit); see :meth:`rebalance`.
        self.site_current_limit = site_current_limit
        #: The station's total from a station-maximum charging profile (None: none); see :meth:`rebalance`.
        self.station_limit: PowerLimit | None = None
        self.authorizer: Authorizer | None = None
        #: How the shared reader's cards are presented (ISO14443 for a PN532; a 125 kHz tag is Local).
        self.card_token_type = IdTokenType.ISO14443
        #: Called with (EVSE id, operative) whenever availability is set, so it can be persisted.
        self.on_availability: Callable[[int, bool], None] | None = None
        self._subscribers: list[Callable[[Event], None]] = [self._on_own_event]
        self._pending_cards: set[str] = set()
        self._station_status: EvseStatus | None = None
        #: A card whose group is this stops every transaction and starts none (2.0.1 AuthCtrlr.MasterPassGroupId).
        self.master_pass_group: str | None = None

    def add(self, evse: Evse) -> None:
        """Register an EVSE (its events must go through :meth:`emit`)."""
        self.evses[evse.id] = evse
        self._station_status = self.station_status()

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

    def status(self, evse_id: int) -> EvseStatus:
        """An EVSE's current status."""
        return self.evses[evse_id].status

    def station_status(self) -> EvseStatus:
        """The whole station (1.6 connector 0): Unavailable when every EVSE is, else Available."""
        if self.evses and all(e.status == EvseStatus.UNAVAILABLE for e in self.evses.values()):
            return EvseStatus.UNAVAILABLE
        return EvseStatus.AVAILABLE

    # ----------------------------------------------------------------- cards

    def on_card(self, uid: str) -> None:
        """A card was presented to the shared reader (called by the reader task)."""
        if uid in self._pending_cards:
            return  # the same card tapped again while its authorisation is in flight
        token = IdToken(uid, self.card_token_type)
        owner = self._evse_of(token)
        if owner is not None:
            owner.stop(StopReason.LOCAL, token)
            self.emit(CardRead(uid, True, owner.id, "stopped the session"))
            return
        target = self._evse_for_new_session() or self._any_reserved() or self._evse_with_group_session()
        if target is None and not self.master_pass_group:
            log.info("card %s ignored: no connector can take a new session", uid)
            self.emit(CardRead(uid, False, None, "no connector free"))
            return
        self._pending_cards.add(uid)
        tapped_at = target.clock.monotonic() if target is not None else 0.0
        asyncio.get_running_loop().create_task(self._authorize_card(token, target, tapped_at))

    async def _authorize_card(self, token: IdToken, target: Evse | None, tapped_at: float) -> None:
        uid = token.value
        try:
            if self.authorizer is None:
                decision = AuthDecision(AuthStatus.UNKNOWN, AuthSource.NONE)
            else:
                decision = await self.authorizer.authorize(token)
        except Exception as exc:
            log.warning("card %s: authorisation failed (%s); not charging", uid, exc)
            decision = AuthDecision(AuthStatus.UNKNOWN, AuthSource.NONE)
        finally:
            self._pending_cards.discard(uid)
        if decision.accepted and decision.group is not None and self.master_pass_group \
                and decision.group.value.upper() == self.master_pass_group.upper():
            # With no screen to choose one, a master pass stops them all (C16), and never starts one.
            running = [e for e in self.evses.values() if e.transaction is not None]
            for e in running:
                e.stop(StopReason.MASTER_PASS, token)
            log.info("card %s is a master pass: %d transaction(s) stopped", uid, len(running))
            self.emit(CardRead(uid, True, None, f"master pass: stopped {len(running)} transaction(s)"))
            return
        if target is None:
            log.info("card %s ignored: no connector can take a new session", uid)
            self.emit(CardRead(uid, False, None, "no connector free"))
            return
        if decision.accepted and decision.group is not None:
            # A card of the same group (1.6 parentIdTag) may stop a session it did not start.
            for e in self.evses.values():
                if e.transaction is not None and e.session is not None and decision.group.same_as(e.session.group):
                    e.stop(StopReason.LOCAL, token)
                    self.emit(CardRead(uid, True, e.id, "stopped the session (same group)"))
                    return
        if not decision.accepted:
            log.info("card %s rejected (%s, %s)", uid, decision.status.value, decision.source.value)
            self.emit(CardRead(uid, False, target.id, decision.status.value))
            return
        if not target.vehicle.plugged:
            # A vehicle plugged in while the CSMS was asked, and soon enough after the tap to be that driver's.
            arrived = [e for e in self._waiting() if (e.plugged_at or 0.0) - tapped_at <= MOVE_WINDOW]
            target = arrived[0] if arrived else target
        target = self._reserved_for(token, decision.group) or target
        if target.authorize(token, TriggerReason.AUTHORIZED, decision, at=tapped_at):
            self.emit(CardRead(uid, True, target.id, "authorised"))
        else:
            self.emit(CardRead(uid, False, target.id, "connector no longer free"))

    def _evse_of(self, token: IdToken) -> Evse | None:
        return next((e for e in self.evses.values() if e.session is not None and token.same_as(e.session.id_token)),
                    None)

    def _reserved_for(self, token: IdToken | str, group: IdToken | None) -> Evse | None:
        return next((e for e in self.evses.values() if e.reservation is not None
                     and e.reservation.admits(token, group)), None)

    def _any_reserved(self) -> Evse | None:
        # Only reservations left: authorise the card, then see whether it holds one of them.
        return next((e for e in self.evses.values() if e.reservation is not None), None)

    def _evse_with_group_session(self) -> Evse | None:
        # Every EVSE is busy, but the card may belong to the group of one running session.
        return next((e for e in self.evses.values() if e.session is not None and e.session.group is not None), None)

    def _evse_for_new_session(self) -> Evse | None:
        # The EV waiting longest for authorisation gets the card; otherwise the first free EVSE.
        waiting = self._waiting()
        if waiting:
            return waiting[0]
        free = self._free()
        return free[0] if free else None

    def _free(self) -> list[Evse]:
        return [e for e in self.evses.values() if e.session is None and e.status == EvseStatus.AVAILABLE]

    # -------------------------------------------------------- remote commands

    def remote_start(self, id_token: IdToken, evse_id: int | None, decision: AuthDecision | None = None, *,
                     remote_start_id: int | None = None) -> bool:
        """A remote start: authorise ``id_token`` on an EVSE (any, when None); False when refused."""
        target = self._remote_target(id_token, evse_id)
        return target is not None and target.authorize(id_token, TriggerReason.REMOTE_START, decision,
                                                       remote_start_id=remote_start_id)

    def can_start(self, id_token: IdToken, evse_id: int | None) -> bool:
        """Would a remote start for ``id_token`` find an EVSE right now?"""
        target = self._remote_target(id_token, evse_id)
        if target is None or target.session is not None:
            return False
        if target.reservation is not None:
            return target.reservation.admits(id_token, None)
        return target.status in (EvseStatus.AVAILABLE, EvseStatus.PREPARING)

    def _remote_target(self, id_token: IdToken, evse_id: int | None) -> Evse | None:
        if evse_id == 0:
            return None  # a transaction never starts on the station as a whole
        if evse_id is not None:
            return self.evses.get(evse_id)
        return self._reserved_for(id_token, None) or self._evse_for_new_session()

    def running(self, local_id: str) -> Evse | None:
        """The EVSE running the transaction with this station-local id, or holding the authorisation a protocol
        opened it for before charging began (2.0.1 TxStartPoint)."""
        return next((e for e in self.evses.values()
                     if local_id == (e.transaction.local_id if e.transaction is not None else e.next_transaction_id)),
                    None)

    def deauthorize(self, local_id: str, *, stop: bool, max_energy_wh: int) -> None:
        """The CSMS did not accept a running transaction's identifier."""
        evse = self.running(local_id)
        if evse is not None:
            evse.deauthorize(stop, max_energy_wh)

    def stop_transaction(self, local_id: str, reason: StopReason, trigger: TriggerReason) -> bool:
        """Stop the transaction with this station-local id; False when none is running."""
        evse = self.running(local_id)
        return evse is not None and evse.stop(reason, trigger=trigger)

    def stop_all(self, reason: StopReason, trigger: TriggerReason) -> int:
        """End every running transaction (reset, shutdown); returns how many."""
        return sum(1 for e in self.evses.values() if e.transaction is not None and e.stop(reason, trigger=trigger))

    def reserve(self, evse_id: int, reservation: Reservation, any_evse_allowed: bool, *,
                among: list[int] | None = None) -> Answer:
        """ReserveNow: ACCEPTED, FAULTED, OCCUPIED, REJECTED or UNAVAILABLE (EVSE 0: whichever is free, of
        ``among`` when given)."""
        for e in self.evses.values():
            if e.reservation is not None and e.reservation.reservation_id == reservation.reservation_id:
                if e.id != evse_id and evse_id != 0:
                    e.cancel_reservation()  # the same reservation id moves to another EVSE
                else:
                    return e.reserve_for(reservation)
        if evse_id == 0:
            if not any_evse_allowed:
                return Answer.REJECTED
            free = [e for e in self._free() if among is None or e.id in among]
            if free:
                return free[0].reserve_for(reservation)
            states = {e.status for e in self.evses.values() if among is None or e.id in among}
            if states == {EvseStatus.FAULTED}:
                return Answer.FAULTED
            if states == {EvseStatus.UNAVAILABLE}:
                return Answer.UNAVAILABLE
            return Answer.OCCUPIED
        evse = self.evses.get(evse_id)
        return Answer.REJECTED if evse is None else evse.reserve_for(reservation)

    def cancel_reservation(self, reservation_id: int) -> bool:
        """CancelReservation: False when no such reservation exists."""
        for e in self.evses.values():
            if e.reservation is not None and e.reservation.reservation_id == reservation_id:
                e.cancel_reservation()
                return True
        return False

    def change_availability(self, evse_id: int, operative: bool) -> Answer:
        """ChangeAvailability: EVSE 0 means the whole station. ACCEPTED, SCHEDULED or REJECTED."""
        if evse_id == 0:
            targets = list(self.evses.values())
        elif evse_id in self.evses:
            targets = [self.evses[evse_id]]
        else:
            return Answer.REJECTED
        answers = {e.set_operative(operative) for e in targets}
        for e in targets:
            if self.on_availability is not None:
                self.on_availability(e.id, operative)
        return Answer.SCHEDULED if Answer.SCHEDULED in answers else Answer.ACCEPTED

    async def unlock(self, evse_id: int) -> Answer:
        """UnlockConnector: ACCEPTED (free), FAILED (the lock held), or NOT_SUPPORTED (no such EVSE, or no lock)."""
        evse = self.evses.get(evse_id)
        if evse is None:
            return Answer.NOT_SUPPORTED
        return await evse.unlock()

    def _report_station_status(self) -> None:
        status = self.station_status()
        if status != self._station_status:
            self._station_status = status
            self.emit(StatusChanged(0, status))

    # ------------------------------------------------------------ site limit

    def set_station_limit(self, limit: PowerLimit | None) -> None:
        """The whole station's limit from a station-maximum charging profile (None: none); shared like the site's."""
        if limit != self.station_limit:
            self.station_limit = limit
            self.rebalance()

    def rebalance(self) -> None:
        """Share the station's totals between the EVSEs with a transaction (equal shares).

        Amps per phase (the smaller of ``site_current_limit`` and a station maximum in amps) go to the AC EVSEs:
        when they cannot give every one 6 A, the earliest transactions get the shares and the rest wait in
        SuspendedEVSE. Watts (a station maximum in watts) go to every EVSE, DC ones too. An idle EVSE is pre-set
        to the share it would get on starting, so a new session never starts above it; the others come down on
        the next loop turn.
        """
        profile = self.station_limit or PowerLimit()
        amps = [a for a in (self.site_current_limit or None, profile.amps) if a is not None]
        watts = profile.watts
        shares: dict[int, PowerLimit] = {eid: PowerLimit() for eid in self.evses}
        started = {e.id: e.transaction.started_at for e in self.evses.values() if e.transaction is not None}
        active = sorted((self.evses[eid] for eid in started), key=lambda e: (started[e.id], e.id))
        if amps:
            # Amps per phase are an AC outlet's; a DC outlet (phases 0) draws through its own rectifier supply.
            limit = min(amps)
            ac = [e for e in active if e.phases]
            fit = min(len(ac), int(limit // MIN_CURRENT_A))
            share = limit / fit if fit else 0.0
            for i, e in enumerate(ac):
                shares[e.id] = PowerLimit(amps=share if i < fit else 0.0)
            idle_share = limit / (len(ac) + 1)
            for e in self.evses.values():
                if e.phases and e.transaction is None:
                    shares[e.id] = PowerLimit(amps=idle_share if idle_share >= MIN_CURRENT_A else 0.0)
        if watts is not None:
            for e in self.evses.values():
                sharing = len(active) if e.transaction is not None else len(active) + 1
                shares[e.id] = shares[e.id].combine(PowerLimit(watts=watts / sharing))
        for eid, e in self.evses.items():
            e.set_limit(SITE, None if shares[eid] == PowerLimit() else shares[eid])

    def _on_own_event(self, event: Event) -> None:
        if isinstance(event, TransactionStarted | TransactionEnded) and (self.site_current_limit
                                                                          or self.station_limit is not None):
            asyncio.get_running_loop().call_soon(self.rebalance)
        elif isinstance(event, StatusChanged) and event.evse_id != 0:
            self._report_station_status()  # the whole station follows its EVSEs (1.6 connector 0)
        elif isinstance(event, VehicleConnected):
            # Once the plug-in is handled: the EVSE is Preparing by then.
            asyncio.get_running_loop().call_soon(self._follow_vehicle, event.evse_id)

    # ------------------------------------------------- a card before the cable

    def _movable(self, evse: Evse) -> bool:
        """A card's authorisation still waiting for its vehicle: one that may follow it to another EVSE.

        Not a remote start (the CSMS may have named the EVSE) nor a reservation's (it belongs to its EVSE). A 2.0.1
        transaction TxStartPoint Authorized opened at the tap (it is not the EVSE's yet) ends, as for a withdrawn
        card, and the moved session opens the next where the vehicle is.
        """
        session = evse.session
        return session is not None and evse.transaction is None and not evse.vehicle.plugged \
            and session.reservation_id is None and session.trigger == TriggerReason.AUTHORIZED

    def _waiting(self) -> list[Evse]:
        """The EVSEs with a vehicle plugged in and waiting for a card, the longest waiting first."""
        # plugged_at is set while a vehicle is plugged in; a reservation's EVSE waits for its own card.
        found = [e for e in self.evses.values() if e.session is None and e.reservation is None
                 and e.status == EvseStatus.PREPARING and e.plugged_at is not None]
        return sorted(found, key=lambda e: e.plugged_at or 0.0)

    def _follow_vehicle(self, evse_id: int) -> None:
        # A card tapped as the vehicle arrived went to the first free EVSE before the plug-in was confirmed.
        target = self.evses.get(evse_id)
        if target is None or target not in self._waiting():
            return
        recent = [e for e in self.evses.values() if self._movable(e) and e.session is not None
                  and (target.plugged_at or 0.0) - e.session.at <= MOVE_WINDOW]
        if recent:
            self._move(max(recent, key=lambda e: e.session.at if e.session else 0.0), target,
                       "authorised (tapped as the vehicle arrived)")

    def _move(self, source: Evse, target: Evse, detail: str) -> None:
        session = source.session
        assert session is not None
        log.info("connector %d: %s's authorisation moves to connector %d, where its vehicle is", source.id,
                 session.id_token.value, target.id)
        source.stop(StopReason.OTHER, trigger=TriggerReason.EV_DETECTED)
        if target.authorize(session.id_token, TriggerReason.AUTHORIZED, session.decision, at=session.at):
            self.emit(CardRead(session.id_token.value, True, target.id, detail))
