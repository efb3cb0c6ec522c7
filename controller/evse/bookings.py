"""An EVSE's bookings: reservations (ReserveNow, expiry) and availability (ChangeAvailability, scheduled)."""

from __future__ import annotations

import logging
from collections.abc import Callable

from controller.domain.events import Event, ReservationEnded
from controller.domain.types import Answer, EvseStatus, StopReason, TriggerReason
from controller.evse.port import ChargingProtocol
from controller.evse.reservation import Reservation, ReservationSlot

log = logging.getLogger("controller.evse.machine")

S = EvseStatus


class Bookings:
    """Mixed into :class:`~controller.evse.machine.Evse`: the part of its machine that reservations and
    availability drive (Reserved, Unavailable)."""

    id: int
    state: str
    session: object | None
    transaction: object | None
    inoperative_pending: bool
    reset_pending: bool
    protocol: ChargingProtocol
    reservations: ReservationSlot
    reserve: Callable[[], bool]
    unreserve: Callable[[], bool]
    disable: Callable[[], bool]
    enable: Callable[[], bool]
    _reconcile: Callable[[], None]
    _end_session: Callable[[], None]
    _withdraw_session: Callable[[StopReason, TriggerReason], None]
    _emit: Callable[[Event], None]
    stop: Callable[..., bool]

    @property
    def reservation(self) -> Reservation | None:
        """The reservation this EVSE is kept for, if any."""
        return self.reservations.current

    def reserve_for(self, reservation: Reservation) -> Answer:
        """ReserveNow on this EVSE: ACCEPTED, OCCUPIED, FAULTED or UNAVAILABLE."""
        if self.state == S.FAULTED.value:
            return Answer.FAULTED
        if self.state == S.UNAVAILABLE.value:
            return Answer.UNAVAILABLE
        replacing = self.reservation is not None and self.reservation.reservation_id == reservation.reservation_id
        if self.state != S.AVAILABLE.value and not replacing:
            return Answer.OCCUPIED
        delay = self.reservations.hold(reservation)
        if self.state == S.AVAILABLE.value:
            self.reserve()
        log.info("connector %d: reserved for %s (reservation %d, %.0f s)", self.id, reservation.id_token.value,
                 reservation.reservation_id, delay)
        return Answer.ACCEPTED

    def cancel_reservation(self) -> None:
        """CancelReservation, or expiry: the EVSE is free again."""
        self.reservations.drop()
        if self.state == S.RESERVED.value:
            self.unreserve()
            self._reconcile()

    def _reservation_expired(self) -> None:
        if self.reservation is not None:
            log.info("connector %d: reservation %d expired", self.id, self.reservation.reservation_id)
            self._emit(ReservationEnded(self.id, self.reservation.reservation_id))
        self.cancel_reservation()

    def _remove_reservation(self) -> None:
        """The EVSE can no longer honour its reservation (unavailable, faulted): drop it, and say so."""
        reservation = self.reservation
        if reservation is None:
            return
        log.info("connector %d: reservation %d removed: the connector cannot be used", self.id,
                 reservation.reservation_id)
        self.reservations.drop()
        self._emit(ReservationEnded(self.id, reservation.reservation_id, expired=False))

    def set_operative(self, operative: bool) -> Answer:
        """ChangeAvailability for this EVSE: ACCEPTED, or SCHEDULED while a transaction runs."""
        if operative:
            self.inoperative_pending = False
            if self.state == S.UNAVAILABLE.value:
                self.enable()
                self._reconcile()
            return Answer.ACCEPTED
        if self.transaction is not None:
            self.inoperative_pending = True
            return Answer.SCHEDULED
        if self.session is not None:
            self._withdraw_session(StopReason.OTHER, TriggerReason.ABNORMAL_CONDITION)  # told: a protocol may
            # have opened its transaction at the tap (2.0.1 TxStartPoint Authorized)
        self._remove_reservation()
        if self.state != S.UNAVAILABLE.value:
            self.disable()
            self.protocol.disable()
        return Answer.ACCEPTED

    def reset(self, *, immediate: bool) -> Answer:
        """A reset of this EVSE alone (2.0.1 Reset with an evseId): ACCEPTED, or SCHEDULED while a transaction runs
        and the reset waits for it (OnIdle). Immediate ends the transaction (ImmediateReset); then the EVSE
        starts over from Unavailable, as after a restart (its availability and reservation stay as they were)."""
        if self.transaction is not None and not immediate:
            self.reset_pending = True
            return Answer.SCHEDULED
        if self.session is not None:
            self.stop(StopReason.IMMEDIATE_RESET, trigger=TriggerReason.RESET_COMMAND)
        self._restart()
        return Answer.ACCEPTED

    def _restart(self) -> None:
        self.reset_pending = False
        if self.state == S.UNAVAILABLE.value:
            return  # made inoperative: a reset does not change that
        log.info("connector %d: reset", self.id)
        self.disable()
        self.protocol.disable()
        self.enable()
        if self.reservation is not None:
            self.reserve()
        self._reconcile()

    def _apply_scheduled_availability(self) -> None:
        if self.reset_pending and self.transaction is None:
            self._restart()
        if self.inoperative_pending and self.transaction is None:
            self.inoperative_pending = False
            self.disable()
            self.protocol.disable()
