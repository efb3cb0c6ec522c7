"""OCPP 2.0.1 on the bench: the simulated station against the bench CSMS's 2.0.1 side (the ``ocpp`` package's v201).

Named after the OCTT 2.0.1 station test cases they mirror.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from ocpp.v201 import call

from controller.app import App
from controller.ocpp import device_model as dm
from controller.storage import Store
from hil.control import send_script
from hil.csms import CsmsSimulator
from tests.bench.test_cli import start_daemon
from tests.bench.test_ocpp16_auth import go_offline
from tests.bench.test_ocpp16_core import TAG, script
from tests.conftest import sim_config, wait_until

CP = "TEST-CP"


def calls(csms: CsmsSimulator, action: str) -> list[dict[str, Any]]:
    found = []
    for f in csms.frames:
        message = json.loads(f.raw)
        if f.direction == "in" and message[0] == 2 and message[2] == action:
            found.append(message[3])
    return found


def events(csms: CsmsSimulator) -> list[dict[str, Any]]:
    return calls(csms, "TransactionEvent")


async def test_TC_B_01_CS_cold_boot_reports_power_up_and_every_connector(station201: App, csms: CsmsSimulator) -> None:
    boot = calls(csms, "BootNotification")[0]
    assert boot["reason"] == "PowerUp" and boot["chargingStation"]["vendorName"] == "evse-controller"
    await wait_until(lambda: calls(csms, "StatusNotification"), what="StatusNotification")
    status = calls(csms, "StatusNotification")[0]
    assert (status["evseId"], status["connectorId"], status["connectorStatus"]) == (1, 1, "Available")
    assert all(s["evseId"] >= 1 for s in calls(csms, "StatusNotification"))  # no station-level report in 2.0.1


async def test_TC_J_07_09_10_CS_a_card_session_is_one_transaction_of_numbered_events(station201: App,
                                                                                  csms: CsmsSimulator) -> None:
    await script(station201, f"plug; tap {TAG}; expect Charging; wait 1.5; ev B; expect SuspendedEV; unplug; "
                          "expect Available")
    await wait_until(lambda: any(e["eventType"] == "Ended" for e in events(csms)), what="the Ended event")
    sent = events(csms)
    ids = {e["transactionInfo"]["transactionId"] for e in sent}
    assert len(ids) == 1
    assert [e["seqNo"] for e in sent] == list(range(len(sent)))  # 0, 1, 2, ... with no gap
    started, ended = sent[0], sent[-1]
    assert started["eventType"] == "Started" and started["triggerReason"] == "Authorized"
    assert started["idToken"] == {"idToken": TAG, "type": "ISO14443"}
    assert started["evse"] == {"id": 1, "connectorId": 1} and "offline" not in started
    begin = started["meterValue"][0]["sampledValue"][0]  # J_07: TxStartedMeasurands in the Started event
    assert (begin["measurand"], begin["context"]) == ("Energy.Active.Import.Register", "Transaction.Begin")
    assert any(e["eventType"] == "Updated" and e["triggerReason"] == "MeterValuePeriodic" for e in sent)
    states = [e["transactionInfo"]["chargingState"] for e in sent if e["triggerReason"] == "ChargingStateChanged"]
    assert states[:2] == ["Charging", "SuspendedEV"]  # energy flowed, then the car paused (ev B)
    assert ended["eventType"] == "Ended" and ended["transactionInfo"]["stoppedReason"] == "EVDisconnected"
    assert ended["transactionInfo"]["chargingState"] == "Idle"  # the cable is out
    energy = [s for v in ended["meterValue"] for s in v["sampledValue"]
              if s["measurand"] == "Energy.Active.Import.Register"]
    assert energy[-1]["context"] == "Transaction.End" and energy[-1]["unitOfMeasure"] == {"unit": "Wh"}
    assert csms.duplicate_events == [] and not csms.timestamp_errors
    refused = [f.raw for f in csms.frames if f.direction == "out" and json.loads(f.raw)[0] == 4]
    assert refused == []  # the CSMS's 2.0.1 schemas took every frame the station sent


async def test_TC_F_01_and_TC_F_03_CS_remote_start_and_stop(station201: App, csms: CsmsSimulator) -> None:
    await script(station201, "plug; expect Preparing")
    result = await csms.call(CP, call.RequestStartTransaction(
        id_token={"id_token": "REMOTE01", "type": "Central"}, remote_start_id=42, evse_id=1))
    assert result.status == "Accepted"
    await script(station201, "expect Charging")
    await wait_until(lambda: events(csms), what="Started")
    started = events(csms)[0]
    assert started["triggerReason"] == "RemoteStart" and started["transactionInfo"]["remoteStartId"] == 42
    tx_id = started["transactionInfo"]["transactionId"]
    status = await csms.call(CP, call.GetTransactionStatus(transaction_id=tx_id))
    assert status.ongoing_indicator is True
    assert (await csms.call(CP, call.RequestStopTransaction(transaction_id=tx_id))).status == "Accepted"
    await wait_until(lambda: events(csms)[-1]["eventType"] == "Ended", what="Ended")
    ended = events(csms)[-1]
    assert ended["triggerReason"] == "RemoteStop" and ended["transactionInfo"]["stoppedReason"] == "Remote"
    assert ended["transactionInfo"]["chargingState"] == "EVConnected"  # the car is still plugged in
    assert (await csms.call(CP, call.RequestStopTransaction(transaction_id="nope"))).status == "Rejected"


async def test_TC_B_06_07_09_10_32_CS_get_and_set_variables(station201: App, csms: CsmsSimulator) -> None:
    heartbeat = {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"}}
    unknown = {"component": {"name": "NoSuchCtrlr"}, "variable": {"name": "X"}}
    got = await csms.call(CP, call.GetVariables(get_variable_data=[heartbeat, unknown]))
    results = got.get_variable_result
    assert results[0]["attribute_status"] == "Accepted" and results[0]["attribute_value"] == "300"
    assert results[1]["attribute_status"] == "UnknownComponent"
    changed = await csms.call(CP, call.SetVariables(set_variable_data=[{**heartbeat, "attribute_value": "120"}]))
    assert changed.set_variable_result[0]["attribute_status"] == "Accepted"
    assert station201.ocpp is not None and station201.ocpp.model.get(dm.HEARTBEAT_INTERVAL) == "120"
    ping = {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "WebSocketPingInterval"}}
    both = await csms.call(CP, call.SetVariables(set_variable_data=[{**heartbeat, "attribute_value": "90"},
                                                                    {**ping, "attribute_value": "45"}]))
    assert [r["attribute_status"] for r in both.set_variable_result] == ["Accepted", "Accepted"]  # B_10
    assert (station201.ocpp.model.get(dm.HEARTBEAT_INTERVAL), station201.ocpp.model.get(dm.WEBSOCKET_PING_INTERVAL)) \
        == ("90", "45")


async def test_TC_E_offline_a_whole_transaction_arrives_in_seqno_order_flagged_offline(
        station201: App, csms: CsmsSimulator) -> None:
    await script(station201, f"plug; tap {TAG}; expect Charging; wait 0.5; tap {TAG}; expect Finishing; unplug")
    await wait_until(lambda: any(e["eventType"] == "Ended" for e in events(csms)), what="the first Ended")
    await go_offline(station201, csms)
    await script(station201, f"expect Available; plug; wait 0.5; tap {TAG}; expect Charging; wait 2.2; tap {TAG}; "
                          "expect Finishing")
    await csms.start()
    await wait_until(lambda: len([e for e in events(csms) if e["eventType"] == "Ended"]) == 2, 15, "the second Ended")
    first_id = events(csms)[0]["transactionInfo"]["transactionId"]
    second = [e for e in events(csms) if e["transactionInfo"]["transactionId"] != first_id]
    assert [e["seqNo"] for e in second] == list(range(len(second)))
    assert second[0]["eventType"] == "Started" and second[-1]["eventType"] == "Ended"
    assert any(e["eventType"] == "Updated" for e in second)
    assert all(e.get("offline") is True for e in second)  # made while the link was down
    assert second[0]["timestamp"] < second[-1]["timestamp"]  # when they happened, not when they were sent
    assert csms.duplicate_events == []


async def test_TC_E_40_CS_a_connection_lost_during_a_transaction_loses_none_of_it(station201: App,
                                                                                csms: CsmsSimulator) -> None:
    await script(station201, f"plug; tap {TAG}; expect Charging")
    await wait_until(lambda: events(csms), what="Started")
    await go_offline(station201, csms)  # once every event so far is delivered
    before = len(events(csms))
    await script(station201, f"wait 2.2; tap {TAG}; expect Finishing")
    await csms.start()
    await wait_until(lambda: events(csms)[-1]["eventType"] == "Ended", 15, "the Ended event")
    sent = events(csms)
    assert [e["seqNo"] for e in sent] == list(range(len(sent))) and csms.duplicate_events == []
    assert len(sent) > before + 1 and all(e.get("offline") is True for e in sent[before:])  # made offline
    assert sent[-1]["transactionInfo"]["stoppedReason"] == "Local"


async def test_TC_E_a_killed_daemon_ends_its_transaction_as_power_loss_with_the_next_seqno(tmp_path: Path) -> None:
    config = tmp_path / "charger.toml"
    config.write_text(
        '[station]\nhardware = "sim"\nid = "KILL-201"\nreading_persist_interval = 0.2\n'
        '[ocpp]\nversion = "2.0.1"\nreconnect_min = 0.2\nmeter_value_sample_interval = 1\n'
        "[rfid]\npoll_interval = 0.05\n[[connector]]\nid = 1\n[connector.meter]\npoll_interval = 0.1\n")
    state = tmp_path / "state"
    csms = CsmsSimulator()
    await csms.start()
    daemon = await start_daemon(state, csms, "--config", str(config))
    try:
        # Booted (accepted), not only connected: a card tapped before the boot is answered is not authorised.
        await wait_until(lambda: csms.boot_reasons and (state / "bench.sock").exists(), timeout=20,
                         what="the daemon to boot")
        await asyncio.sleep(0.3)  # the boot's answer reaching the station, its first status notifications
        result = await send_script(state, "plug; tap 04A1B2C3; expect Charging; wait 1.5")
        assert result["ok"], result
        await wait_until(lambda: len(events(csms)) >= 2, what="Started and an Updated")
        store = Store(state)  # the daemon's own database: wait until every event is confirmed
        await wait_until(lambda: store.outbox_size() == 0, what="the events to be confirmed")
        store.close()
        daemon.kill()  # SIGKILL: no shutdown code runs
        await daemon.wait()
        sent = len(events(csms))
        daemon = await start_daemon(state, csms, "--config", str(config))
        await wait_until(lambda: events(csms)[-1]["eventType"] == "Ended", timeout=20, what="the PowerLoss Ended")
        ended = events(csms)[-1]
        assert ended["seqNo"] == sent and ended["offline"] is True  # numbered on from where it was
        assert ended["transactionInfo"]["stoppedReason"] == "PowerLoss"
        assert ended["triggerReason"] == "AbnormalCondition"
        assert csms.boot_reasons == ["PowerUp", "PowerUp"] and csms.duplicate_events == []
    finally:
        if daemon.returncode is None:
            daemon.terminate()
            await daemon.wait()
        await csms.stop()


async def test_TC_N_a_fault_is_reported_in_notify_event_and_its_end_too(station201: App, csms: CsmsSimulator) -> None:
    await script(station201, f"plug; tap {TAG}; expect Charging; fault short; expect Faulted")
    await wait_until(lambda: csms.notified, what="NotifyEvent")
    raised = csms.notified[0]
    assert raised["component"]["name"] == "ControlPilot" and raised["component"]["evse"]["id"] == 1
    assert (raised["actual_value"], raised["tech_code"], raised["trigger"]) == ("true", "PilotFault", "Alerting")
    await wait_until(lambda: any(s[3] == "Faulted" for s in csms.statuses), what="Faulted")
    await script(station201, "clear short; expect Preparing")
    await wait_until(lambda: len(csms.notified) == 2, what="the fault's end")
    assert csms.notified[1]["cleared"] is True and csms.notified[1]["actual_value"] == "false"
    ended = [e for e in events(csms) if e["eventType"] == "Ended"]
    assert ended and ended[0]["transactionInfo"]["stoppedReason"] == "EmergencyStop"


async def test_TC_J_a_dc_session_on_2_0_1_carries_the_cars_soc(tmp_path: Path, csms: CsmsSimulator) -> None:
    from hil.benchconfig import dc_config
    from hil.simhw import SimHardware

    app = App(dc_config(("chademo",), ocpp={"version": "2.0.1"}), state_dir=tmp_path, csms_url=csms.url)
    await app.start()
    try:
        assert app.ocpp is not None and isinstance(app.platform, SimHardware)
        await asyncio.wait_for(app.ocpp.connected.wait(), 10)
        outlet = app.platform.dc[1]
        outlet.quicken()
        await wait_until(lambda: app.supervisor.holds(1, "insulation"), 5, "the IMD's self-test")
        await script(app, f"plug; tap {TAG}; expect Charging within 15")
        await wait_until(lambda: outlet.circuit.current > 30, 15, "current")

        def soc() -> list[dict[str, Any]]:
            return [s for e in events(csms) for v in e.get("meterValue", []) for s in v["sampledValue"]
                    if s["measurand"] == "SoC"]

        await wait_until(soc, 5, "SoC in an Updated event")
        assert soc()[-1]["unitOfMeasure"] == {"unit": "Percent"} and soc()[-1]["location"] == "EV"
        assert 0 < soc()[-1]["value"] <= 100
    finally:
        await app.stop()


async def test_TC_B_12_13_14_CS_a_full_inventory_comes_in_notify_report_parts(station201: App,
                                                                            csms: CsmsSimulator) -> None:
    result = await csms.call(CP, call.GetBaseReport(request_id=7, report_base="FullInventory"))
    assert result.status == "Accepted"
    await wait_until(lambda: csms.reports.get(7) and not csms.reports[7][-1]["tbc"], what="the last part")
    parts = csms.reports[7]
    assert [p["seq_no"] for p in parts] == list(range(len(parts)))
    entries = {(e["component"]["name"], e["variable"]["name"]): e for p in parts for e in p["report_data"]}
    heartbeat = entries[("OCPPCommCtrlr", "HeartbeatInterval")]
    assert heartbeat["variable_attribute"][0] == {"type": "Actual", "value": "300", "mutability": "ReadWrite"}
    assert heartbeat["variable_characteristics"]["data_type"] == "integer"
    assert ("InternalCtrlr", "NumberOfConnectors") in entries
    measurands = entries[("SampledDataCtrlr", "TxUpdatedMeasurands")]["variable_characteristics"]
    assert measurands["data_type"] == "MemberList" and "SoC" in measurands["values_list"].split(",")
    summary = await csms.call(CP, call.GetBaseReport(request_id=8, report_base="SummaryInventory"))
    assert summary.status == "Accepted"
    await wait_until(lambda: csms.reports.get(8) and not csms.reports[8][-1]["tbc"], what="the summary")
    available = {(e["component"]["name"], e["variable"]["name"]): e["variable_attribute"][0]["value"]
                 for p in csms.reports[8] for e in p["report_data"]}
    assert available[("EVSE", "AvailabilityState")] == "Available"  # availability only: nothing else
    assert {v for _, v in available} == {"AvailabilityState", "Available"}
    writable = await csms.call(CP, call.GetBaseReport(request_id=9, report_base="ConfigurationInventory"))
    assert writable.status == "Accepted"
    await wait_until(lambda: csms.reports.get(9) and not csms.reports[9][-1]["tbc"], what="the configuration")
    assert all(e["variable_attribute"][0]["mutability"] != "ReadOnly" for p in csms.reports[9]
               for e in p["report_data"])


async def test_TC_B_20_CS_a_reset_restarts_and_the_next_boot_says_remote_reset(tmp_path: Path,
                                                                              csms: CsmsSimulator) -> None:
    app = App(sim_config(version="2.0.1"), state_dir=tmp_path, csms_url=csms.url)
    await app.start()
    try:
        assert app.ocpp is not None
        await asyncio.wait_for(app.ocpp.connected.wait(), 10)
        assert (await csms.call(CP, call.Reset(type="OnIdle"))).status == "Accepted"  # idle: at once
        await wait_until(lambda: app.restart == "soft", what="the restart")
    finally:
        await app.stop()
    again = App(sim_config(version="2.0.1"), state_dir=tmp_path, csms_url=csms.url)
    await again.start()
    try:
        await wait_until(lambda: len(csms.boot_reasons) == 2, what="the second boot")
        assert csms.boot_reasons == ["PowerUp", "RemoteReset"]
        await wait_until(lambda: len(csms.security_events) == 2, what="the second start's security event")
        assert csms.security_events == ["StartupOfTheDevice", "ResetOrReboot"]
        assert (await csms.call(CP, call.Reset(type="OnIdle", evse_id=5))).status == "Rejected"  # no such EVSE
    finally:
        await again.stop()
