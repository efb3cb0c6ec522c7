"""OCTT 2.0.1 G (availability and connector statuses), F (remote start and stop edge cases) and E (retries of a
transaction message) cases on the bench."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from ocpp.v201 import call

from controller.app import App
from hil.csms import CsmsSimulator
from tests.bench.test_ocpp16_core import TAG, script
from tests.bench.test_ocpp201_core import CP, calls, events
from tests.bench.test_ocpp201_txpoints import set_variables
from tests.conftest import sim_config, wait_until

CONNECTOR = {"id": 1, "connector_id": 1}


def statuses(csms: CsmsSimulator) -> list[str]:
    return [s["connectorStatus"] for s in calls(csms, "StatusNotification")]


async def change(csms: CsmsSimulator, operative: bool, evse: dict[str, Any] | None = None) -> str:
    status = "Operative" if operative else "Inoperative"
    return str((await csms.call(CP, call.ChangeAvailability(operational_status=status, evse=evse))).status)


async def booted(tmp_path: Path, csms: CsmsSimulator, **ocpp: Any) -> App:
    app = App(sim_config(version="2.0.1", **ocpp), state_dir=tmp_path, csms_url=csms.url)
    await app.start()
    assert app.ocpp is not None
    await asyncio.wait_for(app.ocpp.connected.wait(), 10)
    await wait_until(lambda: calls(csms, "StatusNotification"), what="the first status")
    return app


async def test_TC_G_01_02_CS_a_plug_and_an_unplug_are_told(station201: App, csms: CsmsSimulator) -> None:
    await wait_until(lambda: calls(csms, "StatusNotification"), what="the first status")
    before = len(statuses(csms))
    await script(station201, "plug; expect Preparing; wait 0.2; unplug; expect Available")
    await wait_until(lambda: len(statuses(csms)) >= before + 2, what="both statuses")
    assert statuses(csms)[before:] == ["Occupied", "Available"]


async def test_TC_G_07_08_15_16_CS_a_connector_made_inoperative_and_operative_each_once(station201: App,
                                                                                      csms: CsmsSimulator) -> None:
    await wait_until(lambda: calls(csms, "StatusNotification"), what="the first status")
    before = len(statuses(csms))
    assert [await change(csms, False, CONNECTOR), await change(csms, False, CONNECTOR)] == ["Accepted"] * 2
    await script(station201, "expect Unavailable")
    assert [await change(csms, True, CONNECTOR), await change(csms, True, CONNECTOR)] == ["Accepted"] * 2
    await script(station201, "expect Available; wait 0.3")
    assert statuses(csms)[before:] == ["Unavailable", "Available"]  # a change to the state it has tells nothing
    assert await change(csms, False, {"id": 1, "connector_id": 2}) == "Rejected"  # no second connector


async def test_TC_G_09_10_12_13_CS_a_change_to_the_state_it_has_is_accepted_quietly(station201: App,
                                                                                  csms: CsmsSimulator) -> None:
    await wait_until(lambda: calls(csms, "StatusNotification"), what="the first status")
    before = len(statuses(csms))
    assert [await change(csms, True, {"id": 1}), await change(csms, True)] == ["Accepted", "Accepted"]
    assert [await change(csms, False), await change(csms, False)] == ["Accepted", "Accepted"]
    assert [await change(csms, False, {"id": 1})] == ["Accepted"]
    await script(station201, "expect Unavailable; wait 0.3")
    assert statuses(csms)[before:] == ["Unavailable"]


async def test_TC_G_17_CS_a_connector_with_a_transaction_becomes_inoperative_after_it(station201: App,
                                                                                    csms: CsmsSimulator) -> None:
    await script(station201, f"plug; tap {TAG}; expect Charging")
    assert await change(csms, False, CONNECTOR) == "Scheduled"
    await script(station201, f"wait 1.0; expect Charging; tap {TAG}; expect Unavailable")
    await wait_until(lambda: events(csms) and events(csms)[-1]["eventType"] == "Ended", what="Ended")


async def test_TC_G_19_21_CS_a_connector_and_the_station_stay_inoperative_across_a_reboot(
        tmp_path: Path, csms: CsmsSimulator) -> None:
    for target in (CONNECTOR, None):
        app = await booted(tmp_path, csms)
        try:
            assert await change(csms, False, target) == "Accepted"
        finally:
            await app.stop()
        before = len(statuses(csms))
        again = await booted(tmp_path, csms)
        try:
            await wait_until(lambda n=before: len(statuses(csms)) > n, what="the status after the boot")  # type: ignore[misc]
            assert statuses(csms)[before] == "Unavailable"
            assert await change(csms, True) == "Accepted"  # back for the next round
            await script(again, "expect Available")
        finally:
            await again.stop()


async def test_TC_F_04_CS_a_remote_start_with_no_cable_in_time_starts_nothing(station201: App,
                                                                            csms: CsmsSimulator) -> None:
    assert await set_variables(csms, "TxCtrlr", EVConnectionTimeOut="1") == ["Accepted"]
    answer = await csms.call(CP, call.RequestStartTransaction(id_token={"id_token": TAG, "type": "Central"},
                                                              remote_start_id=5, evse_id=1))
    assert answer.status == "Accepted"
    await script(station201, "expect Preparing; expect Available within 3; wait 0.3")
    assert events(csms) == []  # TxStartPoint PowerPathClosed: no cable, no transaction


async def test_TC_F_08_09_CS_remote_stop_of_a_running_and_of_an_unknown_transaction(station201: App,
                                                                                   csms: CsmsSimulator) -> None:
    await script(station201, f"plug; tap {TAG}; expect Charging")
    await wait_until(lambda: events(csms), what="Started")
    unknown = await csms.call(CP, call.RequestStopTransaction(transaction_id="not-a-transaction"))
    assert unknown.status == "Rejected"
    tx_id = events(csms)[0]["transactionInfo"]["transactionId"]
    assert (await csms.call(CP, call.RequestStopTransaction(transaction_id=tx_id))).status == "Accepted"
    await wait_until(lambda: events(csms)[-1]["eventType"] == "Ended", what="Ended")
    assert (events(csms)[-1]["triggerReason"], events(csms)[-1]["transactionInfo"]["stoppedReason"]) == (
        "RemoteStop", "Remote")


def handled(csms: CsmsSimulator) -> list[str]:
    """The eventType of every TransactionEvent the CSMS answered with a CALLRESULT."""
    return [e["event_type"] for tx in csms.events.values() for e in tx]


def sent_started(csms: CsmsSimulator) -> list[list[Any]]:
    """Every CALL of the Started event the CSMS received, answered or not."""
    frames = [json.loads(f.raw) for f in csms.frames if f.direction == "in"]
    return [m for m in frames if m[0] == 2 and m[2] == "TransactionEvent" and m[3]["eventType"] == "Started"]


async def retries(csms: CsmsSimulator, attempts: int) -> list[str]:
    """OCPPCommCtrlr.MessageAttempts / MessageAttemptInterval [TransactionEvent]: ``attempts``, no wait between."""
    data = [{"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": name, "instance": "TransactionEvent"},
             "attribute_value": value} for name, value in (("MessageAttempts", str(attempts)),
                                                           ("MessageAttemptInterval", "0"))]
    result = await csms.call(CP, call.SetVariables(set_variable_data=data))
    return [r["attribute_status"] for r in result.set_variable_result]


async def test_TC_E_42_51_CS_an_unanswered_or_failed_event_is_sent_again_until_it_is_answered(
        tmp_path: Path, csms: CsmsSimulator) -> None:
    app = await booted(tmp_path, csms, response_timeout=1)
    try:
        assert await retries(csms, attempts=3) == ["Accepted", "Accepted"]
        csms.fail_next["TransactionEvent"] = ["silence", "error"]
        await script(app, f"plug; tap {TAG}; expect Charging")
        await wait_until(lambda: "Started" in handled(csms), 10, "the third attempt")
        attempts = sent_started(csms)
        assert len(attempts) == 3 and len({m[1] for m in attempts}) == 1  # one message id on every attempt
        assert csms.duplicate_events == []
    finally:
        await app.stop()


async def test_TC_E_41_50_CS_an_event_is_given_up_after_message_attempts_and_the_rest_go_on(
        tmp_path: Path, csms: CsmsSimulator) -> None:
    app = await booted(tmp_path, csms, response_timeout=1)
    try:
        assert await retries(csms, attempts=2) == ["Accepted", "Accepted"]
        csms.fail_next["TransactionEvent"] = ["error", "silence"]
        await script(app, f"plug; tap {TAG}; expect Charging; wait 1.0; tap {TAG}; expect Finishing")
        await wait_until(lambda: "Ended" in handled(csms), 10, "the Ended event")
        assert len(sent_started(csms)) == 2  # MessageAttempts, then given up
        assert "Started" not in handled(csms) and "Updated" in handled(csms)  # the rest went on
    finally:
        await app.stop()


async def test_TC_B_23_CS_an_unavailable_evse_stays_so_across_a_reset(tmp_path: Path, csms: CsmsSimulator) -> None:
    app = await booted(tmp_path, csms)
    try:
        assert await change(csms, False, {"id": 1}) == "Accepted"
        await script(app, "expect Unavailable")
        assert (await csms.call(CP, call.Reset(type="Immediate"))).status == "Accepted"
        await wait_until(lambda: app.restart == "hard", what="the restart")
    finally:
        await app.stop()
    before = len(statuses(csms))
    again = await booted(tmp_path, csms)
    try:
        await wait_until(lambda: len(statuses(csms)) > before, what="the status after the reset")
        assert csms.boot_reasons[-1] == "RemoteReset" and statuses(csms)[before] == "Unavailable"
    finally:
        await again.stop()


async def test_TC_B_25_CS_an_evse_reset_without_a_transaction_starts_it_over(station201: App,
                                                                           csms: CsmsSimulator) -> None:
    await wait_until(lambda: calls(csms, "StatusNotification"), what="the first status")
    before = len(statuses(csms))
    assert (await csms.call(CP, call.Reset(type="Immediate", evse_id=1))).status == "Accepted"
    await wait_until(lambda: statuses(csms)[before:] == ["Unavailable", "Available"], what="the EVSE starting over")
    assert station201.restart is None  # the station itself does not restart


async def test_TC_B_26_27_CS_an_evse_reset_with_a_transaction_on_idle_waits_and_immediate_ends_it(
        station201: App, csms: CsmsSimulator) -> None:
    await script(station201, f"plug; tap {TAG}; expect Charging")
    assert (await csms.call(CP, call.Reset(type="OnIdle", evse_id=1))).status == "Scheduled"
    await script(station201, "wait 0.5; expect Charging")  # B_26: the transaction runs on
    assert (await csms.call(CP, call.Reset(type="Immediate", evse_id=1))).status == "Accepted"
    await wait_until(lambda: events(csms) and events(csms)[-1]["eventType"] == "Ended", what="Ended")
    ended = events(csms)[-1]
    assert (ended["triggerReason"], ended["transactionInfo"]["stoppedReason"]) == ("ResetCommand", "ImmediateReset")
    await script(station201, "expect Preparing")  # started over, the car still plugged in
    assert station201.restart is None
