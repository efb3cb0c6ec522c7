"""OCTT 2.0.1 H (reservation) cases on the bench: who may use a reserved EVSE, when a reservation is refused,
replaced, cancelled or removed by the station."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from ocpp.v201 import call

from controller.app import App
from hil.csms import CsmsSimulator
from tests.bench.test_ocpp16_core import TAG, script
from tests.bench.test_ocpp201_core import CP, calls, events
from tests.conftest import wait_until

OTHER = "0F0F0F0F"


async def reserve(csms: CsmsSimulator, reservation_id: int, tag: str = TAG, evse_id: int | None = 1,
                  **extra: Any) -> str:
    expiry = (datetime.now(UTC) + timedelta(minutes=5)).isoformat()
    request = call.ReserveNow(id=reservation_id, expiry_date_time=expiry, evse_id=evse_id,
                              id_token={"id_token": tag, "type": "ISO14443"}, **extra)
    return str((await csms.call(CP, request)).status)


def statuses(csms: CsmsSimulator) -> list[str]:
    return [s["connectorStatus"] for s in calls(csms, "StatusNotification")]


async def test_TC_H_02_CS_another_card_cannot_use_a_reserved_evse(station201: App, csms: CsmsSimulator) -> None:
    assert await reserve(csms, 21) == "Accepted"
    await script(station201, f"expect Reserved; plug; tap {OTHER}; wait 0.7; expect Reserved")
    assert events(csms) == []
    await script(station201, f"tap {TAG}; expect Charging")  # the card it is kept for


async def test_TC_H_03_04_06_CS_a_reserved_an_occupied_and_an_unavailable_evse_refuse(
        station201: App, csms: CsmsSimulator) -> None:
    assert await reserve(csms, 31) == "Accepted"
    assert await reserve(csms, 32) == "Occupied"  # H_03: reserved already
    assert (await csms.call(CP, call.CancelReservation(reservation_id=31))).status == "Accepted"
    await script(station201, "expect Available; plug; expect Preparing")
    assert await reserve(csms, 33) == "Occupied"  # H_04: a car is there
    await script(station201, "unplug; expect Available")
    change = await csms.call(CP, call.ChangeAvailability(operational_status="Inoperative", evse={"id": 1}))
    assert change.status == "Accepted"
    assert await reserve(csms, 34) == "Unavailable"  # H_06


async def test_TC_H_08_17_18_CS_an_unspecified_evse_and_cancelling(station201: App, csms: CsmsSimulator) -> None:
    assert await reserve(csms, 41, evse_id=None) == "Accepted"
    await script(station201, "expect Reserved")  # the only EVSE: as many available as reservations
    assert (await csms.call(CP, call.CancelReservation(reservation_id=41))).status == "Accepted"  # H_17
    assert (await csms.call(CP, call.CancelReservation(reservation_id=99))).status == "Rejected"  # H_18
    await script(station201, "expect Available")


async def test_TC_H_19_24_CS_a_card_of_the_reservations_group_uses_it(station201: App,
                                                                    csms: CsmsSimulator) -> None:
    csms.parents[OTHER] = "FLEET-7"
    group = {"id_token": "FLEET-7", "type": "Central"}
    assert await reserve(csms, 51, group_id_token=group) == "Accepted"
    await script(station201, f"expect Reserved; plug; tap {OTHER}; expect Charging")
    await wait_until(lambda: events(csms), what="Started")
    assert events(csms)[0]["reservationId"] == 51


async def test_TC_H_21_CS_the_station_removes_a_reservation_it_can_no_longer_keep(station201: App,
                                                                                 csms: CsmsSimulator) -> None:
    assert await reserve(csms, 61) == "Accepted"
    await script(station201, "expect Reserved")
    change = await csms.call(CP, call.ChangeAvailability(operational_status="Inoperative", evse={"id": 1}))
    assert change.status == "Accepted"
    await wait_until(lambda: csms.reservation_updates, 5, "ReservationStatusUpdate")
    assert csms.reservation_updates == [(61, "Removed")]
    await script(station201, "expect Unavailable")
    assert (await csms.call(CP, call.CancelReservation(reservation_id=61))).status == "Rejected"  # gone


async def test_TC_H_23_CS_the_same_reservation_id_replaces_the_reservation(station201: App,
                                                                          csms: CsmsSimulator) -> None:
    assert await reserve(csms, 71) == "Accepted"
    assert await reserve(csms, 71, tag=OTHER) == "Accepted"  # the same id: replaced, not Occupied
    await script(station201, f"plug; tap {TAG}; wait 0.7; expect Reserved; tap {OTHER}; expect Charging")
    await wait_until(lambda: events(csms), what="Started")
    assert events(csms)[0]["reservationId"] == 71
    assert statuses(csms).count("Reserved") >= 1


async def test_TC_H_15_CS_a_reservation_of_a_connector_type_takes_an_evse_of_that_type(station201: App,
                                                                                      csms: CsmsSimulator) -> None:
    assert await reserve(csms, 81, evse_id=None, connector_type="cCCS2") == "Rejected"  # no such connector here
    assert await reserve(csms, 82, evse_id=1, connector_type="sType2") == "Rejected"  # EVSE 1's is cType2
    assert await reserve(csms, 83, evse_id=None, connector_type="cType2") == "Accepted"
    await script(station201, "expect Reserved")
