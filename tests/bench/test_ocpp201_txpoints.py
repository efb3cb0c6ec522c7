"""TxStartPoint and TxStopPoint on the bench: a 2.0.1 transaction opened at the plug or the tap, and one held open
until the cable leaves (OCTT 2.0.1 E01 / E06 cases)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from ocpp.v201 import call

from controller.app import App
from hil.csms import CsmsSimulator
from tests.bench.test_ocpp16_core import TAG, script
from tests.bench.test_ocpp201_core import CP, events
from tests.conftest import sim_config, wait_until


async def set_variables(csms: CsmsSimulator, component: str, **values: str) -> list[str]:
    data = [{"component": {"name": component}, "variable": {"name": name}, "attribute_value": value}
            for name, value in values.items()]
    result = await csms.call(CP, call.SetVariables(set_variable_data=data))
    return [r["attribute_status"] for r in result.set_variable_result]


def shape(sent: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(eventType, triggerReason) of each event, the periodic samples left out."""
    return [(e["eventType"], e["triggerReason"]) for e in sent if not e["triggerReason"].startswith("MeterValue")]


async def ended(csms: CsmsSimulator) -> list[dict[str, Any]]:
    await wait_until(lambda: any(e["eventType"] == "Ended" for e in events(csms)), what="the Ended event")
    sent = events(csms)
    assert len({e["transactionInfo"]["transactionId"] for e in sent}) == 1  # one transaction throughout
    assert [e["seqNo"] for e in sent] == list(range(len(sent)))
    assert csms.duplicate_events == []
    return sent


async def test_TC_E_09_TC_E_03_CS_start_point_ev_connected_opens_the_transaction_at_the_plug(
        station201: App, csms: CsmsSimulator) -> None:
    assert await set_variables(csms, "TxCtrlr", TxStartPoint="EVConnected") == ["Accepted"]
    await script(station201, "plug; expect Preparing")
    await wait_until(lambda: events(csms), what="Started at the plug")
    started = events(csms)[0]
    assert (started["eventType"], started["triggerReason"]) == ("Started", "CablePluggedIn")
    assert "idToken" not in started and started["transactionInfo"]["chargingState"] == "EVConnected"
    assert started["evse"] == {"id": 1, "connectorId": 1}
    await script(station201, f"tap {TAG}; expect Charging; wait 0.7; tap {TAG}; expect Finishing")
    sent = await ended(csms)
    assert shape(sent)[:3] == [("Started", "CablePluggedIn"), ("Updated", "Authorized"),
                               ("Updated", "ChargingStateChanged")]
    authorized = sent[1]
    assert authorized["idToken"] == {"idToken": TAG, "type": "ISO14443"}  # in the first event after the tap
    assert sent[-1]["transactionInfo"]["stoppedReason"] == "Local"


async def test_TC_E_09_CS_a_cable_that_leaves_unauthorised_ends_its_transaction(station201: App,
                                                                              csms: CsmsSimulator) -> None:
    assert await set_variables(csms, "TxCtrlr", TxStartPoint="EVConnected") == ["Accepted"]
    await script(station201, "plug; expect Preparing; wait 0.3; unplug; expect Available")
    sent = await ended(csms)
    assert shape(sent) == [("Started", "CablePluggedIn"), ("Ended", "EVDeparted")]
    assert sent[-1]["transactionInfo"]["stoppedReason"] == "EVDisconnected"
    assert sent[-1]["transactionInfo"]["chargingState"] == "Idle"


async def test_TC_E_10_TC_E_04_CS_start_point_authorized_opens_the_transaction_at_the_tap(
        station201: App, csms: CsmsSimulator) -> None:
    assert await set_variables(csms, "TxCtrlr", TxStartPoint="Authorized") == ["Accepted"]
    await script(station201, f"tap {TAG}; expect Preparing")
    await wait_until(lambda: events(csms), what="Started at the tap")
    started = events(csms)[0]
    assert (started["eventType"], started["triggerReason"]) == ("Started", "Authorized")
    assert started["idToken"]["idToken"] == TAG and started["transactionInfo"]["chargingState"] == "Idle"
    tx_id = started["transactionInfo"]["transactionId"]
    await script(station201, "plug; expect Charging")
    evse = station201.station.evses[1]
    assert evse.transaction is not None and evse.transaction.local_id == tx_id  # the session is this transaction
    stop = await csms.call(CP, call.RequestStopTransaction(transaction_id=tx_id))
    assert stop.status == "Accepted"
    sent = await ended(csms)
    assert shape(sent)[:2] == [("Started", "Authorized"), ("Updated", "CablePluggedIn")]
    assert "idToken" not in sent[1]  # told once, in the Started event
    assert sent[-1]["transactionInfo"]["stoppedReason"] == "Remote"


async def test_TC_E_13_CS_start_point_authorized_with_a_remote_start(station201: App, csms: CsmsSimulator) -> None:
    assert await set_variables(csms, "TxCtrlr", TxStartPoint="Authorized") == ["Accepted"]
    answer = await csms.call(CP, call.RequestStartTransaction(id_token={"id_token": TAG, "type": "Central"},
                                                              remote_start_id=77, evse_id=1))
    assert answer.status == "Accepted"
    await wait_until(lambda: events(csms), what="Started at the remote start")
    started = events(csms)[0]
    assert started["triggerReason"] == "RemoteStart" and started["transactionInfo"]["remoteStartId"] == 77


async def test_TC_E_05_39_CS_authorization_first_and_no_cable_in_time(station201: App, csms: CsmsSimulator) -> None:
    assert await set_variables(csms, "TxCtrlr", TxStartPoint="Authorized", EVConnectionTimeOut="1") == [
        "Accepted", "Accepted"]
    await script(station201, f"tap {TAG}; expect Preparing; expect Available within 3")
    sent = await ended(csms)
    assert shape(sent) == [("Started", "Authorized"), ("Ended", "EVConnectTimeout")]
    assert sent[-1]["transactionInfo"]["stoppedReason"] == "Timeout"


async def test_TC_E_14_CS_stop_point_ev_connected_holds_the_transaction_until_the_cable_leaves(
        station201: App, csms: CsmsSimulator) -> None:
    assert await set_variables(csms, "TxCtrlr", TxStopPoint="EVConnected") == ["Accepted"]
    await script(station201, f"plug; tap {TAG}; expect Charging; wait 0.7; tap {TAG}; expect Finishing")
    await wait_until(lambda: any(e["triggerReason"] == "StopAuthorized" for e in events(csms)),
                     what="the stop tap's event")
    stopped = next(e for e in events(csms) if e["triggerReason"] == "StopAuthorized")
    assert stopped["eventType"] == "Updated" and stopped["transactionInfo"]["chargingState"] == "EVConnected"
    tx_id = stopped["transactionInfo"]["transactionId"]
    status = await csms.call(CP, call.GetTransactionStatus(transaction_id=tx_id))
    assert status.ongoing_indicator is True  # still running: the cable is in
    await script(station201, "wait 0.3; unplug; expect Available")
    sent = await ended(csms)
    last = sent[-1]
    assert (last["eventType"], last["triggerReason"]) == ("Ended", "EVDeparted")
    assert last["transactionInfo"]["stoppedReason"] == "Local"  # why charging stopped
    assert last["transactionInfo"]["chargingState"] == "Idle"
    assert any(s["context"] == "Transaction.End" for v in last["meterValue"] for s in v["sampledValue"])
    assert last["timestamp"] > stopped["timestamp"]


async def test_TC_E_07_CS_the_default_points_end_the_transaction_at_the_stop_tap(station201: App,
                                                                               csms: CsmsSimulator) -> None:
    await script(station201, f"plug; tap {TAG}; expect Charging; wait 0.7; tap {TAG}; expect Finishing")
    sent = await ended(csms)
    assert (sent[-1]["triggerReason"], sent[-1]["transactionInfo"]["chargingState"]) == ("StopAuthorized",
                                                                                       "EVConnected")


async def test_points_the_station_cannot_detect_are_refused(station201: App, csms: CsmsSimulator) -> None:
    answers = await set_variables(csms, "TxCtrlr", TxStartPoint="ParkingBayOccupancy")
    answers += await set_variables(csms, "TxCtrlr", TxStopPoint="")
    answers += await set_variables(csms, "TxCtrlr", TxStartPoint="DataSigned,EVConnected")
    assert answers == ["Rejected", "Rejected", "Rejected"]
    got = await csms.call(CP, call.GetVariables(get_variable_data=[
        {"component": {"name": "TxCtrlr"}, "variable": {"name": "TxStartPoint"}}]))
    assert got.get_variable_result[0]["attribute_value"] == "PowerPathClosed"  # unchanged


async def test_a_transaction_opened_at_the_plug_survives_a_restart_as_power_loss(tmp_path: Path,
                                                                                csms: CsmsSimulator) -> None:
    app = App(sim_config(version="2.0.1"), state_dir=tmp_path, csms_url=csms.url)
    await app.start()
    try:
        assert app.ocpp is not None
        await asyncio.wait_for(app.ocpp.connected.wait(), 10)
        assert await set_variables(csms, "TxCtrlr", TxStartPoint="EVConnected") == ["Accepted"]
        await script(app, "plug; expect Preparing")
        await wait_until(lambda: events(csms), what="Started at the plug")
    finally:
        await app.stop()  # no charging session ran, so nothing ended it
    again = App(sim_config(version="2.0.1"), state_dir=tmp_path, csms_url=csms.url)
    await again.start()
    try:
        sent = await ended(csms)
        assert sent[-1]["transactionInfo"]["stoppedReason"] == "PowerLoss" and sent[-1]["seqNo"] == 1
    finally:
        await again.stop()


async def test_a_transaction_opened_at_the_tap_ends_when_the_evse_is_made_inoperative(station201: App,
                                                                                     csms: CsmsSimulator) -> None:
    assert await set_variables(csms, "TxCtrlr", TxStartPoint="Authorized") == ["Accepted"]
    await script(station201, f"tap {TAG}; expect Preparing")
    await wait_until(lambda: events(csms), what="Started at the tap")
    change = await csms.call(CP, call.ChangeAvailability(operational_status="Inoperative", evse={"id": 1}))
    assert change.status == "Accepted"
    sent = await ended(csms)
    assert shape(sent) == [("Started", "Authorized"), ("Ended", "AbnormalCondition")]
    assert station201.station.evses[1].next_transaction_id is None  # the next session gets an id of its own


async def test_a_card_the_csms_refuses_in_the_started_answer_is_withdrawn(station201: App,
                                                                         csms: CsmsSimulator) -> None:
    entry = {"id_token": {"id_token": TAG, "type": "ISO14443"}, "id_token_info": {"status": "Accepted"}}
    listed = await csms.call(CP, call.SendLocalList(version_number=1, update_type="Full",
                                                    local_authorization_list=[entry]))
    assert listed.status == "Accepted"
    assert await set_variables(csms, "AuthCtrlr", LocalPreAuthorize="true") == ["Accepted"]
    assert await set_variables(csms, "TxCtrlr", TxStartPoint="Authorized") == ["Accepted"]
    csms.tag_statuses[TAG] = "Invalid"  # the list is out of date: the CSMS says no in the Started answer
    await script(station201, f"tap {TAG}")
    sent = await ended(csms)
    assert shape(sent) == [("Started", "Authorized"), ("Ended", "Deauthorized")]
    assert sent[-1]["transactionInfo"]["stoppedReason"] == "DeAuthorized"
    await script(station201, "plug; wait 0.5; expect Preparing")  # and it does not charge when the cable comes


async def test_a_reset_ends_a_transaction_open_without_a_session(station201: App, csms: CsmsSimulator) -> None:
    assert await set_variables(csms, "TxCtrlr", TxStartPoint="EVConnected") == ["Accepted"]
    await script(station201, "plug; expect Preparing")
    await wait_until(lambda: events(csms), what="Started at the plug")
    assert (await csms.call(CP, call.Reset(type="OnIdle"))).status == "Scheduled"  # a transaction is open
    assert (await csms.call(CP, call.Reset(type="Immediate"))).status == "Accepted"
    sent = await ended(csms)
    assert (sent[-1]["triggerReason"], sent[-1]["transactionInfo"]["stoppedReason"]) == ("ResetCommand",
                                                                                       "ImmediateReset")
