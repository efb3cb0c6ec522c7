"""Session scenarios of the OCTT 1.6 list on the bench (the names say which case each mirrors)."""

from __future__ import annotations

from controller.app import App
from hil.csms import CsmsSimulator
from tests.bench.test_ocpp16_auth import go_offline
from tests.bench.test_ocpp16_commands import last_status
from tests.bench.test_ocpp16_core import CP, TAG, calls, script
from tests.conftest import wait_until


async def stops(csms: CsmsSimulator, n: int = 1) -> list[dict[str, object]]:
    await wait_until(lambda: len(calls(csms, "StopTransaction")) >= n, timeout=10, what="StopTransaction")
    return calls(csms, "StopTransaction")


async def test_TC_003_CS_regular_session_plug_in_first(charger: App, csms: CsmsSimulator) -> None:
    await script(charger, f"plug; expect Preparing; tap {TAG}; expect Charging; wait 0.7; tap {TAG}; expect Finishing")
    await script(charger, "unplug; expect Available")
    assert [s["reason"] for s in await stops(csms)] == ["Local"]
    # The station is Available; the CSMS hears it when the queue has carried the StopTransaction before it.
    await wait_until(lambda: last_status(csms, 1) == "Available", what="Available reported")
    reported = [s["status"] for s in calls(csms, "StatusNotification") if s["connectorId"] == 1]
    assert reported[-4:] == ["Preparing", "Charging", "Finishing", "Available"]


async def test_TC_004_1_CS_regular_session_identification_first(charger: App, csms: CsmsSimulator) -> None:
    await script(charger, f"tap {TAG}; expect Preparing; wait 0.3; plug; expect Charging")
    await wait_until(lambda: calls(csms, "StartTransaction"), what="StartTransaction")


async def test_TC_010_CS_remote_start_cable_plugged_in_first(charger: App, csms: CsmsSimulator) -> None:
    await script(charger, "plug; expect Preparing")
    assert await csms.remote_start(CP, "REMOTE01", 1) == "Accepted"
    await script(charger, "expect Charging")


async def test_TC_011_2_CS_remote_start_times_out_without_a_cable(charger: App, csms: CsmsSimulator) -> None:
    from tests.bench.test_ocpp16_core import change

    assert await change(csms, "ConnectionTimeOut", "1") == "Accepted"
    assert await csms.remote_start(CP, "REMOTE01", 1) == "Accepted"
    await script(charger, "expect Preparing; wait 1.3; expect Available")
    assert "StartTransaction" not in csms.actions()


async def test_TC_012_028_CS_remote_stop_and_its_rejection(charger: App, csms: CsmsSimulator) -> None:
    await script(charger, f"plug; tap {TAG}; expect Charging")
    await wait_until(lambda: csms.transactions, what="StartTransaction")
    (tx_id,) = csms.transactions
    assert await csms.remote_stop(CP, tx_id + 100) == "Rejected"
    assert await csms.remote_stop(CP, tx_id) == "Accepted"
    assert [s["reason"] for s in await stops(csms)] == ["Remote"]


async def test_TC_036_038_039_CS_a_whole_transaction_offline_arrives_in_order(
    charger: App, csms: CsmsSimulator
) -> None:
    await script(charger, f"plug; tap {TAG}; expect Charging; wait 0.7; tap {TAG}; expect Finishing; unplug")
    await stops(csms)
    await go_offline(charger, csms)
    # Cached id, offline start, meter values, offline stop: all queued, then delivered in order.
    await script(charger, f"expect Available; plug; wait 0.7; tap {TAG}; expect Charging; wait 2.2; tap {TAG}")
    await script(charger, "expect Finishing")
    await csms.start()
    await stops(csms, 2)
    actions = [a for a in csms.actions() if a in ("StartTransaction", "MeterValues", "StopTransaction")]
    second = actions[actions.index("StopTransaction") + 1:]
    assert second[0] == "StartTransaction" and second[-1] == "StopTransaction" and "MeterValues" in second
    start, stop = calls(csms, "StartTransaction")[1], calls(csms, "StopTransaction")[1]
    assert start["timestamp"] < stop["timestamp"]  # the times they happened, not the times they were sent
    assert stop["transactionId"] == 2


async def test_TC_041_CS_fault_behaviour(charger: App, csms: CsmsSimulator) -> None:
    await script(charger, f"plug; tap {TAG}; expect Charging; ev E; expect Faulted")
    assert charger.platform is not None and not charger.platform.contactors[1].closed
    await wait_until(lambda: last_status(csms, 1) == "Faulted", what="Faulted at the CSMS")
    faulted = [s for s in calls(csms, "StatusNotification") if s["status"] == "Faulted"][-1]
    assert faulted["errorCode"] == "OtherError" and faulted["info"] == "pilot state E"
    assert [s["reason"] for s in await stops(csms)] == ["EmergencyStop"]
    await script(charger, "unplug; expect Available")
