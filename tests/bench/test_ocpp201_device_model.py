"""The 2.0.1 device model on the bench: every required Core variable in a FullInventory (TC_B_53), the
ChargingStation / EVSE / Connector components, the DeviceDataCtrlr limits, OfflineThreshold (TC_B_51/52), the
reconnect back-off (TC_B_57), ClockCtrlr and the TxEnded intervals."""

from __future__ import annotations

import asyncio
import datetime
import json
import logging
import re
from pathlib import Path

import pytest
from ocpp.v201 import call

from controller.app import App
from controller.ocpp.link import Backoff
from hil.benchconfig import socket_config
from hil.csms import CsmsSimulator
from tests.bench.test_ocpp16_auth import go_offline
from tests.bench.test_ocpp16_core import TAG, script
from tests.bench.test_ocpp201_core import CP, calls, events
from tests.bench.test_ocpp201_txpoints import set_variables
from tests.conftest import sim_config, wait_until

#: Part 2's required variables of the Core controllers and components (``ocpp.md`` §2.3), as TC_B_53 reads them.
REQUIRED = {
    "OCPPCommCtrlr": ["FileTransferProtocols", "MessageTimeout[Default]", "MessageAttempts[TransactionEvent]",
                      "MessageAttemptInterval[TransactionEvent]", "NetworkConfigurationPriority",
                      "NetworkProfileConnectionAttempts", "OfflineThreshold", "ResetRetries", "RetryBackOffRandomRange",
                      "RetryBackOffRepeatTimes", "RetryBackOffWaitMinimum", "UnlockOnEVSideDisconnect",
                      "WebSocketPingInterval"],
    "TxCtrlr": ["EVConnectionTimeOut", "StopTxOnEVSideDisconnect", "StopTxOnInvalidId", "TxStartPoint",
                "TxStopPoint"],
    "AuthCtrlr": ["AuthorizeRemoteStart", "LocalAuthorizeOffline", "LocalPreAuthorize"],
    "SampledDataCtrlr": ["TxStartedMeasurands", "TxUpdatedMeasurands", "TxUpdatedInterval", "TxEndedMeasurands",
                         "TxEndedInterval"],
    "AlignedDataCtrlr": ["Interval", "Measurands", "TxEndedInterval", "TxEndedMeasurands"],
    "DeviceDataCtrlr": ["ItemsPerMessage[GetReport]", "ItemsPerMessage[GetVariables]",
                        "ItemsPerMessage[SetVariables]", "BytesPerMessage[GetReport]",
                        "BytesPerMessage[GetVariables]", "BytesPerMessage[SetVariables]"],
    "ClockCtrlr": ["DateTime", "TimeSource"],
    "SecurityCtrlr": ["Identity", "OrganizationName", "SecurityProfile", "CertificateEntries"],
    "ChargingStation": ["AvailabilityState", "Available", "SupplyPhases"],
    "EVSE#1": ["AvailabilityState", "Available", "SupplyPhases", "Power"],
    "Connector#1": ["AvailabilityState", "Available", "SupplyPhases", "ConnectorType"],
}


async def full_inventory(csms: CsmsSimulator) -> list[dict[str, object]]:
    assert (await csms.call(CP, call.GetBaseReport(request_id=9, report_base="FullInventory"))).status == "Accepted"
    await wait_until(lambda: any(not p["tbc"] for p in calls(csms, "NotifyReport")), what="the last part")
    return [e for p in calls(csms, "NotifyReport") for e in p.get("reportData", [])]


def name(entry: dict[str, object]) -> tuple[str, str]:
    component, variable = entry["component"], entry["variable"]
    assert isinstance(component, dict) and isinstance(variable, dict)
    where = component["name"] + (f"#{component['evse']['id']}" if "evse" in component else "")
    instance = f"[{variable['instance']}]" if "instance" in variable else ""
    return where, variable["name"] + instance


async def test_TC_B_53_CS_every_required_variable_is_in_a_full_inventory(station201: App,
                                                                         csms: CsmsSimulator) -> None:
    entries = await full_inventory(csms)
    found = {name(e) for e in entries}
    missing = [(c, v) for c, variables in REQUIRED.items() for v in variables if (c, v) not in found]
    assert missing == []
    for entry in entries:
        characteristics, (attribute,) = entry["variableCharacteristics"], entry["variableAttribute"]
        if characteristics["dataType"] in ("OptionList", "SequenceList", "MemberList"):
            assert characteristics["valuesList"], name(entry)
        assert ("value" in attribute) == (attribute["mutability"] != "WriteOnly"), name(entry)
    connector = next(e for e in entries if name(e) == ("Connector#1", "ConnectorType"))
    assert connector["component"]["evse"] == {"id": 1, "connectorId": 1}
    assert connector["variableAttribute"][0]["value"] == "cType2"  # a tethered cable: no PP channel configured
    power = next(e for e in entries if name(e) == ("EVSE#1", "Power"))
    assert power["variableCharacteristics"]["maxLimit"] == 32 * 3 * 230  # 32 A on three phases


async def test_an_evse_component_reports_its_state_of_the_moment(station201: App, csms: CsmsSimulator) -> None:
    def ask(component: dict[str, object], variable: str) -> dict[str, object]:
        return {"component": component, "variable": {"name": variable}}

    evse = {"name": "EVSE", "evse": {"id": 1}}
    wanted = [ask(evse, "AvailabilityState"), ask({"name": "ClockCtrlr"}, "DateTime"),
              ask({"name": "Connector", "evse": {"id": 1, "connector_id": 2}}, "ConnectorType"),
              ask({"name": "EVSE", "evse": {"id": 7}}, "Power")]
    idle = (await csms.call(CP, call.GetVariables(get_variable_data=wanted))).get_variable_result
    assert idle[0]["attribute_value"] == "Available"
    now = datetime.datetime.fromisoformat(idle[1]["attribute_value"].replace("Z", "+00:00"))
    assert abs((now - datetime.datetime.now(datetime.UTC)).total_seconds()) < 5
    assert [r["attribute_status"] for r in idle[2:]] == ["UnknownComponent", "UnknownComponent"]
    await script(station201, f"plug; tap {TAG}; expect Charging; wait 1.2")
    busy = (await csms.call(CP, call.GetVariables(get_variable_data=[ask(evse, "AvailabilityState"),
                                                                      ask(evse, "Power")]))).get_variable_result
    assert busy[0]["attribute_value"] == "Occupied" and int(busy[1]["attribute_value"]) > 0
    refused = await set_variables(csms, "ChargingStation", AvailabilityState="Available")
    assert refused == ["Rejected"]  # read-only: ChangeAvailability changes it


async def test_B06_FR_16_17_a_request_over_the_device_data_limits_is_a_callerror(station201: App,
                                                                                 csms: CsmsSimulator) -> None:
    one = {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"}}
    assert await csms.call(CP, call.GetVariables(get_variable_data=[one] * 51)) is None  # 50 at most
    big = {"component": {"name": "SecurityCtrlr"}, "variable": {"name": "OrganizationName"},
           "attribute_value": "x" * 1000}
    assert await csms.call(CP, call.SetVariables(set_variable_data=[big] * 60)) is None  # over 65536 bytes
    refusals = [json.loads(f.raw)[2] for f in csms.frames if f.direction == "in" and json.loads(f.raw)[0] == 4]
    assert refusals == ["OccurrenceConstraintViolation", "FormatViolation"]
    assert len((await csms.call(CP, call.GetVariables(get_variable_data=[one] * 50))).get_variable_result) == 50


async def test_TC_B_52_CS_after_a_short_outage_only_a_changed_status_is_told(station201: App,
                                                                           csms: CsmsSimulator) -> None:
    await wait_until(lambda: calls(csms, "StatusNotification"), what="the first status")
    await go_offline(station201, csms)
    await script(station201, "plug; expect Preparing")
    before = len(calls(csms, "StatusNotification"))
    await csms.start()
    await wait_until(lambda: len(calls(csms, "StatusNotification")) > before, what="the changed status")
    await asyncio.sleep(0.3)
    told = [(s["evseId"], s["connectorStatus"]) for s in calls(csms, "StatusNotification")[before:]]
    assert told == [(1, "Occupied")]


async def test_TC_B_51_CS_after_an_outage_over_the_threshold_every_status_is_told(tmp_path: Path,
                                                                                csms: CsmsSimulator) -> None:
    app = App(socket_config(2, ocpp={"version": "2.0.1"}), state_dir=tmp_path, csms_url=csms.url)
    await app.start()
    try:
        assert app.ocpp is not None
        await asyncio.wait_for(app.ocpp.connected.wait(), 10)
        assert await set_variables(csms, "OCPPCommCtrlr", OfflineThreshold="1") == ["Accepted"]
        await go_offline(app, csms)
        await asyncio.sleep(1.3)
        before = len(calls(csms, "StatusNotification"))
        await csms.start()
        await wait_until(lambda: len(calls(csms, "StatusNotification")) >= before + 2, what="every status")
        told = {s["evseId"] for s in calls(csms, "StatusNotification")[before:]}
        assert told == {1, 2}  # neither changed, both are told
    finally:
        await app.stop()


def test_TC_B_57_CS_the_reconnect_back_off_doubles_then_stays_flat() -> None:
    backoff = Backoff(minimum=2.0, random_range=0.0, repeat_times=3, attempts=10)
    assert [backoff.wait(n) for n in range(6)] == [2, 4, 8, 16, 16, 16]
    capped = Backoff(minimum=2.0, random_range=0.0, repeat_times=10, attempts=10, longest=5.0)
    assert [capped.wait(n) for n in range(4)] == [2, 4, 5, 5]  # never beyond ocpp.reconnect_max ...
    assert Backoff(minimum=10.0, random_range=0.0, repeat_times=3, attempts=10, longest=5.0).wait(3) == 10  # ...
    # ... unless the CSMS's own minimum is longer
    jittered = Backoff(minimum=1.0, random_range=5.0, repeat_times=0, attempts=10)
    waits = [jittered.wait(4) for _ in range(200)]
    assert min(waits) >= 1.0 and max(waits) <= 6.0 and max(waits) - min(waits) > 2  # spread over the range


async def test_TC_B_57_CS_the_station_waits_as_the_csms_set_it(station201: App, csms: CsmsSimulator,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    answers = await set_variables(csms, "OCPPCommCtrlr", RetryBackOffWaitMinimum="3", RetryBackOffRandomRange="0")
    assert answers == ["Accepted", "Accepted"]
    with caplog.at_level(logging.INFO, logger="controller.ocpp.link"):
        await go_offline(station201, csms)
        await wait_until(lambda: "reconnecting to CSMS in" in caplog.text, what="the wait")
    (first,) = re.findall(r"reconnecting to CSMS in ([0-9.]+) s", caplog.text)[:1]
    assert float(first) == 3.0


async def test_time_source_real_time_clock_keeps_the_station_clock(tmp_path: Path, csms: CsmsSimulator) -> None:
    app = App(sim_config(version="2.0.1"), state_dir=tmp_path, csms_url=csms.url)
    await app.start()
    try:
        assert app.ocpp is not None
        await asyncio.wait_for(app.ocpp.connected.wait(), 10)
        assert await set_variables(csms, "ClockCtrlr", TimeSource="RealTimeClock") == ["Accepted"]
        assert await set_variables(csms, "ClockCtrlr", TimeSource="GPS") == ["Rejected"]  # there is none
        csms.clock_offset = 300.0
        assert (await csms.call(CP, call.TriggerMessage(requested_message="Heartbeat"))).status == "Accepted"
        await wait_until(lambda: calls(csms, "Heartbeat"), what="the heartbeat")
        await asyncio.sleep(0.2)
        skew = (app.ocpp.clock.utcnow() - datetime.datetime.now(datetime.UTC)).total_seconds()
        assert abs(skew) < 5
    finally:
        await app.stop()


async def test_TC_J_03_CS_the_ended_event_carries_samples_at_its_tx_ended_intervals(station201: App,
                                                                         csms: CsmsSimulator) -> None:
    answers = await set_variables(csms, "SampledDataCtrlr", TxEndedMeasurands="Energy.Active.Import.Register",
                                  TxEndedInterval="1")
    answers += await set_variables(csms, "AlignedDataCtrlr", TxEndedMeasurands="Energy.Active.Import.Register",
                                   TxEndedInterval="1")
    assert answers == ["Accepted"] * 4
    await script(station201, f"plug; tap {TAG}; expect Charging; wait 3.5; unplug; expect Available")
    await wait_until(lambda: events(csms) and events(csms)[-1]["eventType"] == "Ended", what="Ended")
    contexts = [s["context"] for v in events(csms)[-1]["meterValue"] for s in v["sampledValue"]]
    assert contexts[0] == "Transaction.Begin" and contexts[-1] == "Transaction.End"
    # The aligned clock may take a second to see its new interval: at least two boundaries in 3.5 s.
    assert contexts.count("Sample.Periodic") >= 2 and contexts.count("Sample.Clock") >= 2
    assert calls(csms, "MeterValues") == []  # AlignedDataCtrlr.Interval is 0: nothing while idle
