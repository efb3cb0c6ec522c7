"""What a station takes back from its store after a restart or a power cut: availability and reservations.

ChangeAvailability and ReserveNow outlive the process; from here on every change is written as it happens. A
kept reservation that has expired meanwhile, or that its connector can no longer take, is dropped and logged.
"""

from __future__ import annotations

import functools
import logging

from controller.clock import Clock, iso_utc, parse_time
from controller.domain.types import Answer, IdToken, IdTokenType
from controller.evse.reservation import Reservation
from controller.station import Station
from controller.storage import Store, StoredReservation

log = logging.getLogger(__name__)


def restore_station(station: Station, store: Store, clock: Clock) -> None:
    """Apply the stored availability and reservations to ``station``'s EVSEs, and persist their changes."""
    for cid, evse in station.evses.items():
        if store.get_setting(f"availability.{cid}") == "Inoperative":
            evse.set_operative(False)
    station.on_availability = lambda cid, operative: store.set_setting(
        f"availability.{cid}", "Operative" if operative else "Inoperative")
    kept = {r.connector_id: r for r in store.reservations()}
    for cid, evse in station.evses.items():
        evse.reservations.on_change = functools.partial(_persist_reservation, store)
        stored = kept.get(cid)
        if stored is None:
            continue
        reservation = Reservation(stored.reservation_id, IdToken(stored.id_tag, IdTokenType(stored.id_type)),
                                  IdToken(stored.group_tag, IdTokenType.CENTRAL) if stored.group_tag else None,
                                  parse_time(stored.expires_at))
        if reservation.expires_at <= clock.utcnow() or evse.reserve_for(reservation) != Answer.ACCEPTED:
            store.drop_reservation(cid)
            log.info("connector %d: reservation %d not kept across the restart (expired or not free)", cid,
                     stored.reservation_id)


def _persist_reservation(store: Store, evse_id: int, reservation: Reservation | None) -> None:
    if reservation is None:
        store.drop_reservation(evse_id)
        return
    r = reservation
    store.put_reservation(StoredReservation(r.reservation_id, evse_id, r.id_token.value, r.id_token.type.value,
                                            r.group.value if r.group else None, iso_utc(r.expires_at)))
