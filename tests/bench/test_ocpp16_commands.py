"""CSMS-initiated operations on the bench: availability, reset, unlock, cache, data transfer, remote start.

Test names follow the OCTT 1.6 charge-point test cases they mirror.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from ocpp.v16 import call

from controller.app import App
from hil.csms import CsmsSimulator
from tests.bench.test_ocpp16_core import CP, TAG, calls, script
from tests.conftest import sim_config, wait_until


def last_status(csms: CsmsSimulator, connector: int) -> str | None:
    reported = [s["status"] for s in calls(csms, "StatusNotification") if s["connectorId"] == connector]
    return reported[-1] if reported else None


async def test_change_availability_of_a_connector_and_back(charger: App, csms: CsmsSimulator) -> None:
    result = await csms.call(CP, call.ChangeAvailability(connector_id=1, type="Inoperative"))
    assert result.status == "Accepted"
    await wait_until(lambda: last_status(csms, 1) == "Unavailable", what="Unavailable")
    await wait_until(lambda: last_status(csms, 0) == "Unavailable", what="station Unavailable")
    await script(charger, f"plug; tap {TAG}; wait 0.7; expect Unavailable")
    assert "StartTransaction" not in csms.actions()
    assert (await csms.call(CP, call.ChangeAvailability(connector_id=1, type="Operative"))).status == "Accepted"
    await script(charger, "expect Preparing")
    assert (await csms.call(CP, call.ChangeAvailability(connector_id=7, type="Operative"))).status == "Rejected"


async def test_inoperative_while_charging_is_scheduled_until_the_transaction_ends(
    charger: App, csms: CsmsSimulator
) -> None:
    await script(charger, f"plug; tap {TAG}; expect Charging")
    result = await csms.call(CP, call.ChangeAvailability(connector_id=0, type="Inoperative"))
    assert result.status == "Scheduled"
    await script(charger, f"wait 0.7; expect Charging; tap {TAG}; expect Unavailable")


async def test_TC_034_CS_unavailable_survives_a_power_failure(
    tmp_path: Path, charger: App, csms: CsmsSimulator
) -> None:
    await csms.call(CP, call.ChangeAvailability(connector_id=1, type="Inoperative"))
    await charger.stop()
    again = App(sim_config(), state_dir=tmp_path, csms_url=csms.url)
    await again.start()
    try:
        await wait_until(lambda: len(csms.boots) == 2, what="the second boot")
        assert again.status(1) == "Unavailable"
        await wait_until(lambda: last_status(csms, 1) == "Unavailable", what="Unavailable reported after boot")
    finally:
        await again.stop()


async def test_TC_013_014_CS_reset_without_transaction_restarts(charger: App, csms: CsmsSimulator) -> None:
    for kind in ("Hard", "Soft"):
        charger.restart = None
        stop = asyncio.Event()
        charger._stop_event = stop
        assert (await csms.call(CP, call.Reset(type=kind))).status == "Accepted"
        await asyncio.wait_for(stop.wait(), 5)
        assert charger.restart == kind.lower()
    assert "StopTransaction" not in csms.actions()


async def test_TC_015_016_CS_reset_with_transaction_stops_it_first(charger: App, csms: CsmsSimulator) -> None:
    charger._stop_event = asyncio.Event()
    await script(charger, f"plug; tap {TAG}; expect Charging")
    assert (await csms.call(CP, call.Reset(type="Soft"))).status == "Accepted"
    await asyncio.wait_for(charger._stop_event.wait(), 5)
    stops = calls(csms, "StopTransaction")
    assert [s["reason"] for s in stops] == ["SoftReset"]  # delivered before the restart
    # PWM off first; the contactor opens as the EV leaves C (milliseconds later).
    await wait_until(lambda: charger.platform is not None and not charger.platform.contactors[1].closed, 1,
                     what="the contactor to open")


async def test_TC_018_2_CS_unlock_on_a_tethered_cable_is_not_supported_and_keeps_charging(
        charger: App, csms: CsmsSimulator) -> None:
    # This bench has no cable lock (a fixed cable). A socket's unlock, which ends the transaction, is
    # test_safety's TC_024.
    await script(charger, f"plug; tap {TAG}; expect Charging")
    assert (await csms.call(CP, call.UnlockConnector(connector_id=1))).status == "NotSupported"
    await asyncio.sleep(0.5)
    assert not calls(csms, "StopTransaction")
    assert [s["status"] for s in calls(csms, "StatusNotification") if s["connectorId"] == 1][-1] == "Charging"


async def test_TC_017_2_031_CS_unlock_without_a_lock_and_an_unknown_connector(charger: App,
                                                                               csms: CsmsSimulator) -> None:
    assert (await csms.call(CP, call.UnlockConnector(connector_id=1))).status == "NotSupported"
    assert (await csms.call(CP, call.UnlockConnector(connector_id=9))).status == "NotSupported"


async def test_TC_062_CS_data_transfer_both_ways(charger: App, csms: CsmsSimulator) -> None:
    unknown = await csms.call(CP, call.DataTransfer(vendor_id="com.example.other", message_id="x"))
    assert unknown.status == "UnknownVendorId"
    ours = await csms.call(CP, call.DataTransfer(vendor_id="evse-controller", message_id="nothing"))
    assert ours.status == "UnknownMessageId"
    assert charger.ocpp is not None
    assert await charger.ocpp.data_transfer("bench", "echo", "hello") == ("Accepted", "hello")
    assert await charger.ocpp.data_transfer("com.example.csms", "x") == ("UnknownVendorId", None)
    assert csms.data_transfers == [("bench", "echo", "hello"), ("com.example.csms", "x", None)]


async def test_TC_026_027_CS_remote_start_rejections(charger: App, csms: CsmsSimulator) -> None:
    assert await csms.remote_start(CP, TAG, 0) == "Rejected"  # connectorId shall not be 0
    assert await csms.remote_start(CP, TAG, 5) == "Rejected"  # no such connector
    await script(charger, f"plug; tap {TAG}; expect Charging")
    assert await csms.remote_start(CP, "OTHER001", 1) == "Rejected"  # occupied


async def test_TC_011_CS_remote_start_without_connector_waits_for_the_ev(charger: App, csms: CsmsSimulator) -> None:
    assert await csms.remote_start(CP, "REMOTE01") == "Accepted"
    await script(charger, "expect Preparing; wait 0.3; plug; expect Charging")
    await wait_until(lambda: calls(csms, "StartTransaction"), what="StartTransaction")
    assert calls(csms, "StartTransaction")[0]["idTag"] == "REMOTE01"


async def test_TC_061_2_CS_clear_cache(charger: App, csms: CsmsSimulator) -> None:
    assert (await csms.call(CP, call.ClearCache())).status == "Accepted"


async def test_the_station_is_reported_available_again_after_its_connector_is(charger: App,
                                                                             csms: CsmsSimulator) -> None:
    assert (await csms.call(CP, call.ChangeAvailability(connector_id=1, type="Inoperative"))).status == "Accepted"
    await wait_until(lambda: last_status(csms, 0) == "Unavailable", what="the station Unavailable")
    assert (await csms.call(CP, call.ChangeAvailability(connector_id=1, type="Operative"))).status == "Accepted"
    # Both follow from one change; the station's report may go out before its connector's.
    await wait_until(lambda: last_status(csms, 0) == last_status(csms, 1) == "Available",
                     what="the station and its connector Available again")


async def test_a_reservation_survives_a_restart_until_it_expires(tmp_path: Path, charger: App,
                                                                csms: CsmsSimulator) -> None:
    from datetime import UTC, datetime, timedelta

    from controller.clock import iso_utc

    expiry = iso_utc(datetime.now(UTC) + timedelta(seconds=2.5))
    result = await csms.call(CP, call.ReserveNow(connector_id=1, expiry_date=expiry, id_tag=TAG, reservation_id=9))
    assert result.status == "Accepted"
    await charger.stop()
    again = App(sim_config(), state_dir=tmp_path, csms_url=csms.url)
    await again.start()
    try:
        assert again.status(1) == "Reserved" and again.station.evses[1].reservation is not None
        await script(again, "plug; tap 0F0F0F0F; wait 0.7; expect Reserved")  # still only for its card
        await script(again, "expect Preparing within 3")  # it still expires on time: the plugged car may go
    finally:
        await again.stop()
