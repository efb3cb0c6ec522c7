"""Reservations and remote trigger on the bench. Test names follow the OCTT 1.6 cases they mirror."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ocpp.v16 import call

from controller.app import App
from controller.clock import iso_utc
from hil.csms import CsmsSimulator
from tests.bench.test_ocpp16_commands import last_status
from tests.bench.test_ocpp16_core import CP, TAG, calls, script
from tests.conftest import wait_until


async def reserve(csms: CsmsSimulator, connector: int, tag: str = TAG, seconds: float = 60, rid: int = 1,
                  parent: str | None = None) -> str:
    expiry = iso_utc(datetime.now(UTC) + timedelta(seconds=seconds))
    result = await csms.call(CP, call.ReserveNow(connector_id=connector, expiry_date=expiry, id_tag=tag,
                                                 reservation_id=rid, parent_id_tag=parent))
    return str(result.status)


async def test_TC_046_1_CS_reserved_connector_only_for_its_card(charger: App, csms: CsmsSimulator) -> None:
    assert await reserve(csms, 1) == "Accepted"
    await wait_until(lambda: last_status(csms, 1) == "Reserved", what="Reserved")
    await script(charger, "plug; tap 0F0F0F0F; wait 0.7; expect Reserved")  # another card: refused
    await script(charger, f"tap {TAG}; expect Charging")
    await wait_until(lambda: calls(csms, "StartTransaction"), what="StartTransaction")
    assert calls(csms, "StartTransaction")[0]["reservationId"] == 1


async def test_TC_046_2_CS_remote_start_on_a_reserved_connector(charger: App, csms: CsmsSimulator) -> None:
    assert await reserve(csms, 1) == "Accepted"
    assert await csms.remote_start(CP, "0F0F0F0F", 1) == "Rejected"
    assert await csms.remote_start(CP, TAG, 1) == "Accepted"
    await script(charger, "plug; expect Charging")


async def test_TC_047_CS_a_reservation_expires(charger: App, csms: CsmsSimulator) -> None:
    assert await reserve(csms, 1, seconds=1) == "Accepted"
    await script(charger, "expect Reserved; expect Available within 3")
    await script(charger, "plug; tap 0F0F0F0F; expect Charging")


async def test_TC_048_CS_reservation_refusals(charger: App, csms: CsmsSimulator) -> None:
    assert await reserve(csms, 9) == "Rejected"
    await script(charger, f"plug; tap {TAG}; expect Charging")
    assert await reserve(csms, 1, tag="0F0F0F0F", rid=2) == "Occupied"
    assert await reserve(csms, 0, tag="0F0F0F0F", rid=3) == "Occupied"
    await script(charger, f"wait 0.7; tap {TAG}; expect Finishing; unplug; expect Available")
    await csms.call(CP, call.ChangeAvailability(connector_id=1, type="Inoperative"))
    assert await reserve(csms, 1, rid=4) == "Unavailable"


async def test_TC_049_CS_reservation_of_the_charge_point(charger: App, csms: CsmsSimulator) -> None:
    assert await reserve(csms, 0, rid=5) == "Accepted"
    await script(charger, f"expect Reserved; plug; tap {TAG}; expect Charging")


async def test_TC_051_052_CS_cancel_reservation(charger: App, csms: CsmsSimulator) -> None:
    assert await reserve(csms, 1, rid=7) == "Accepted"
    assert (await csms.call(CP, call.CancelReservation(reservation_id=8))).status == "Rejected"
    assert (await csms.call(CP, call.CancelReservation(reservation_id=7))).status == "Accepted"
    await script(charger, "expect Available")


async def test_TC_053_1_CS_a_card_with_the_reservations_parent_may_use_it(charger: App, csms: CsmsSimulator) -> None:
    csms.parents["0F0F0F0F"] = "FLEET-7"
    assert await reserve(csms, 1, parent="FLEET-7") == "Accepted"
    await script(charger, "plug; tap 0F0F0F0F; expect Charging")


async def test_TC_054_CS_trigger_every_message(charger: App, csms: CsmsSimulator) -> None:
    await script(charger, f"plug; tap {TAG}; expect Charging")
    await wait_until(lambda: calls(csms, "StartTransaction"), what="StartTransaction")
    before = len(csms.actions())
    for message in ("BootNotification", "Heartbeat", "StatusNotification", "MeterValues",
                    "DiagnosticsStatusNotification", "FirmwareStatusNotification"):
        result = await csms.call(CP, call.TriggerMessage(requested_message=message, connector_id=1))
        assert result.status == "Accepted"
        await wait_until(lambda m=message: m in csms.actions()[before:], what=f"the triggered {message}")
    triggered = calls(csms, "MeterValues")[-1]
    assert triggered["transactionId"] == 1
    assert triggered["meterValue"][0]["sampledValue"][0]["context"] == "Trigger"


async def test_TC_055_CS_trigger_for_an_unknown_connector_is_rejected(charger: App, csms: CsmsSimulator) -> None:
    result = await csms.call(CP, call.TriggerMessage(requested_message="StatusNotification", connector_id=5))
    assert result.status == "Rejected"
    everything = await csms.call(CP, call.TriggerMessage(requested_message="StatusNotification"))
    assert everything.status == "Accepted"


async def test_connector_0_is_the_station_not_every_connector(charger: App, csms: CsmsSimulator) -> None:
    await script(charger, f"plug; tap {TAG}; expect Charging")
    await wait_until(lambda: calls(csms, "StatusNotification")[-1]["status"] == "Charging", what="Charging")
    before = len(calls(csms, "StatusNotification"))
    result = await csms.call(CP, call.TriggerMessage(requested_message="StatusNotification", connector_id=0))
    assert result.status == "Accepted"
    await wait_until(lambda: len(calls(csms, "StatusNotification")) > before, what="the triggered status")
    await script(charger, "wait 0.3")
    assert [s["connectorId"] for s in calls(csms, "StatusNotification")[before:]] == [0]
    meter_values = len(calls(csms, "MeterValues"))
    result = await csms.call(CP, call.TriggerMessage(requested_message="MeterValues", connector_id=0))
    assert result.status == "Rejected"  # the station has no meter of its own
    await script(charger, "wait 0.3")
    assert [m for m in calls(csms, "MeterValues")[meter_values:] if m.get("transactionId") is None] == []
