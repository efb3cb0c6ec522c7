"""More OCTT 2.0.1 Core station cases on the bench: boot answers, device-model edge cases, transaction status,
availability, clock-aligned values, DataTransfer and a triggered Heartbeat."""

from __future__ import annotations

import asyncio
from pathlib import Path

from ocpp.v201 import call

from controller.app import App
from hil.csms import CsmsSimulator
from tests.bench.test_ocpp16_core import TAG, script
from tests.bench.test_ocpp201_core import CP, calls, events
from tests.conftest import sim_config, wait_until

HEARTBEAT = {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"}}


async def test_TC_B_02_03_30_CS_pending_then_rejected_then_accepted_boot(tmp_path: Path, csms: CsmsSimulator) -> None:
    csms.boot_answers = ["Pending", "Rejected"]
    csms.boot_retry = 1
    app = App(sim_config(version="2.0.1"), state_dir=tmp_path, csms_url=csms.url)
    await app.start()
    try:
        assert app.ocpp is not None
        await asyncio.wait_for(app.ocpp.connected.wait(), 10)
        assert len(csms.boots) == 3  # Pending, Rejected, then Accepted: nothing else before it
        first_other = next(i for i, a in enumerate(csms.actions()) if a != "BootNotification")
        assert first_other == 3
    finally:
        await app.stop()


async def test_TC_B_11_34_36_37_39_CS_set_and_get_variables_refusals(station201: App, csms: CsmsSimulator) -> None:
    results = (await csms.call(CP, call.SetVariables(set_variable_data=[
        {**HEARTBEAT, "attribute_value": "often"},
        {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "NoSuchVariable"}, "attribute_value": "1"},
        {"component": {"name": "InternalCtrlr"}, "variable": {"name": "NumberOfConnectors"}, "attribute_value": "4"},
        {**HEARTBEAT, "attribute_value": "60", "attribute_type": "Target"},
    ]))).set_variable_result
    assert [r["attribute_status"] for r in results] == ["Rejected", "UnknownVariable", "Rejected",
                                                        "NotSupportedAttributeType"]
    got = (await csms.call(CP, call.GetVariables(get_variable_data=[{**HEARTBEAT, "attribute_type": "MaxSet"}])))
    assert got.get_variable_result[0]["attribute_status"] == "NotSupportedAttributeType"


async def test_TC_E_28_to_34_CS_transaction_status(station201: App, csms: CsmsSimulator) -> None:
    unknown = await csms.call(CP, call.GetTransactionStatus(transaction_id="unknown"))
    assert (unknown.messages_in_queue, unknown.ongoing_indicator) == (False, False)
    idle = await csms.call(CP, call.GetTransactionStatus())
    assert idle.messages_in_queue is False and idle.ongoing_indicator is None
    await script(station201, f"plug; tap {TAG}; expect Charging; wait 0.7; tap {TAG}; expect Finishing")
    await wait_until(lambda: events(csms) and events(csms)[-1]["eventType"] == "Ended", what="Ended")
    # The CSMS has the event before the station has read its answer: wait until the station has too.
    await wait_until(lambda: station201.ocpp is not None and len(station201.ocpp.queue) == 0, what="the answer")
    tx_id = events(csms)[0]["transactionInfo"]["transactionId"]
    ended = await csms.call(CP, call.GetTransactionStatus(transaction_id=tx_id))
    assert (ended.messages_in_queue, ended.ongoing_indicator) == (False, False)


async def test_TC_G_05_06_11_14_CS_station_availability_and_with_a_transaction(station201: App,
                                                                             csms: CsmsSimulator) -> None:
    await script(station201, f"plug; tap {TAG}; expect Charging")
    answer = await csms.call(CP, call.ChangeAvailability(operational_status="Inoperative"))
    assert answer.status == "Scheduled"  # the transaction runs on
    assert station201.status(1) == "Charging"
    await script(station201, f"wait 0.7; tap {TAG}; expect Unavailable; unplug")  # the scheduled change
    assert (await csms.call(CP, call.ChangeAvailability(operational_status="Operative"))).status == "Accepted"
    await script(station201, "expect Available")


async def test_TC_J_01_02_CS_clock_aligned_values_idle_and_in_a_transaction(station201: App,
                                                                          csms: CsmsSimulator) -> None:
    interval = {"component": {"name": "AlignedDataCtrlr"}, "variable": {"name": "Interval"}}
    result = await csms.call(CP, call.SetVariables(set_variable_data=[{**interval, "attribute_value": "1"}]))
    assert result.set_variable_result[0]["attribute_status"] == "Accepted"
    await wait_until(lambda: calls(csms, "MeterValues"), 3, "an idle clock-aligned MeterValues")
    sample = calls(csms, "MeterValues")[0]["meterValue"][0]["sampledValue"][0]
    assert sample["context"] == "Sample.Clock"
    await script(station201, f"plug; tap {TAG}; expect Charging; wait 1.5")
    clocked = [e for e in events(csms) if e["triggerReason"] == "MeterValueClock"]
    assert clocked and clocked[0]["eventType"] == "Updated"
    assert clocked[0]["meterValue"][0]["sampledValue"][0]["context"] == "Sample.Clock"


async def test_TC_P_01_CS_data_transfer_and_TC_F_20_a_triggered_heartbeat(station201: App,
                                                                        csms: CsmsSimulator) -> None:
    unknown = await csms.call(CP, call.DataTransfer(vendor_id="com.example.unknown"))
    assert unknown.status == "UnknownVendorId"
    beats = len(calls(csms, "Heartbeat"))
    assert (await csms.call(CP, call.TriggerMessage(requested_message="Heartbeat"))).status == "Accepted"
    await wait_until(lambda: len(calls(csms, "Heartbeat")) > beats, what="the triggered Heartbeat")


async def test_TC_B_33_35_CS_an_unknown_variable_and_an_unknown_component(station201: App,
                                                                         csms: CsmsSimulator) -> None:
    got = await csms.call(CP, call.GetVariables(get_variable_data=[
        {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "NoSuchVariable"}}]))
    assert got.get_variable_result[0]["attribute_status"] == "UnknownVariable"
    changed = await csms.call(CP, call.SetVariables(set_variable_data=[
        {"component": {"name": "NoSuchCtrlr"}, "variable": {"name": "X"}, "attribute_value": "1"}]))
    assert changed.set_variable_result[0]["attribute_status"] == "UnknownComponent"


async def test_TC_B_22_CS_an_immediate_reset_ends_the_transaction_first(station201: App,
                                                                       csms: CsmsSimulator) -> None:
    await script(station201, f"plug; tap {TAG}; expect Charging")
    assert (await csms.call(CP, call.Reset(type="Immediate"))).status == "Accepted"
    await wait_until(lambda: events(csms) and events(csms)[-1]["eventType"] == "Ended", what="Ended")
    ended = events(csms)[-1]
    assert ended["transactionInfo"]["stoppedReason"] == "ImmediateReset"
    assert ended["triggerReason"] == "ResetCommand"
    await wait_until(lambda: station201.restart == "hard", what="the restart")


async def test_TC_G_18_CS_an_inoperative_evse_stays_so_across_a_reboot(tmp_path: Path, csms: CsmsSimulator) -> None:
    app = App(sim_config(version="2.0.1"), state_dir=tmp_path, csms_url=csms.url)
    await app.start()
    try:
        assert app.ocpp is not None
        await asyncio.wait_for(app.ocpp.connected.wait(), 10)
        answer = await csms.call(CP, call.ChangeAvailability(operational_status="Inoperative", evse={"id": 1}))
        assert answer.status == "Accepted"
    finally:
        await app.stop()
    before = len(calls(csms, "StatusNotification"))
    again = App(sim_config(version="2.0.1"), state_dir=tmp_path, csms_url=csms.url)
    await again.start()
    try:
        await wait_until(lambda: len(calls(csms, "StatusNotification")) > before, what="the status after the boot")
        assert calls(csms, "StatusNotification")[before]["connectorStatus"] == "Unavailable"
    finally:
        await again.stop()


async def test_TC_P_03_CS_custom_data_in_a_request_is_accepted(station201: App, csms: CsmsSimulator) -> None:
    custom = {"vendorId": "com.example.bench", "anything": {"nested": [1, 2]}}
    assert (await csms.call(CP, call.ClearCache(custom_data=custom))).status == "Accepted"
    got = await csms.call(CP, call.GetVariables(custom_data=custom, get_variable_data=[
        {**HEARTBEAT, "custom_data": custom}]))
    assert got.get_variable_result[0]["attribute_status"] == "Accepted"
