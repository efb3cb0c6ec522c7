"""Whole sessions on the bench: simulated buses, real drivers, a real websocket CSMS on 127.0.0.1."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import pytest

from controller.app import App
from hil.csms import CsmsSimulator
from hil.script import parse_script
from hil.steps import run_steps
from tests.conftest import wait_until

TAG = "04A1B2C3"


async def script(app: App, text: str) -> None:
    results = await run_steps(parse_script(text), app.platform)
    failed = [r for r in results if not r.ok]
    assert not failed, failed


def contactor_changes(app: App) -> list[str]:
    assert app.platform is not None
    return [o.value for o in app.platform.timeline.items("contactor", 1)]


async def test_happy_path_bills_the_energy_the_meter_measured(charger: App, csms: CsmsSimulator) -> None:
    await script(charger, f"plug; tap {TAG}; expect Charging; draw 16; wait 2.5; tap {TAG}; expect Finishing")
    assert charger.platform is not None
    meter = charger.platform.meters[1]
    await script(charger, "unplug; expect Available")
    await wait_until(lambda: any(t.meter_stop is not None for t in csms.transactions.values()), what="StopTransaction")
    (tx,) = csms.transactions.values()
    assert (tx.id_tag, tx.connector_id, tx.reason) == (TAG, 1, "Local")
    delivered = tx.meter_stop - tx.meter_start  # type: ignore[operator]
    # 16 A x 3 phases x 230 V for ~2.5 s is ~7.7 Wh (plus the first moments at 32 A).
    assert 7 <= delivered <= 12
    assert abs(meter.energy_wh - tx.meter_stop) < 2  # type: ignore[operator]
    assert contactor_changes(charger) == ["closed", "open"]
    actions = csms.actions()
    assert actions[0] == "BootNotification"
    order = [a for a in actions if a in ("Authorize", "StartTransaction", "MeterValues", "StopTransaction")]
    assert order[:2] == ["Authorize", "StartTransaction"] and order[-1] == "StopTransaction"
    assert order.count("MeterValues") >= 1 and len(tx.meter_values) >= 1
    sampled = tx.meter_values[0]["sampled_value"]  # the ocpp package hands payloads over in snake_case
    kinds = {(v.get("measurand"), v.get("phase")) for v in sampled}
    assert {("Energy.Active.Import.Register", None), ("Power.Active.Import", None),
            ("Current.Import", "L1"), ("Current.Import", "L3"), ("Voltage", "L2-N")} <= kinds
    assert csms.timestamp_errors == []
    # The statuses after a transaction's end follow its StopTransaction: the last ones may still be on the way.
    await wait_until(lambda: [s for _t, _id, c, s, _e in csms.statuses if c == 1][-1:] == ["Available"],
                     what="connector 1's last status")
    statuses = [(c, s) for _t, _id, c, s, _e in csms.statuses]
    assert (0, "Available") in statuses and (1, "Charging") in statuses and (1, "Finishing") in statuses


async def test_rejected_card_gives_no_power(charger: App, csms: CsmsSimulator) -> None:
    await script(charger, "plug; expect Preparing; tap DEADBEEF; wait 1; expect Preparing")
    assert charger.platform is not None
    assert contactor_changes(charger) == []
    offered = [o for o in charger.platform.timeline.items("pwm", 1) if 0 < o.value < 100]
    assert offered == []
    assert "StartTransaction" not in csms.actions() and "Authorize" in csms.actions()


async def test_unplug_mid_charge_stops_the_transaction(charger: App, csms: CsmsSimulator) -> None:
    await script(charger, f"plug; tap {TAG}; expect Charging; wait 0.5; unplug; expect Available")
    await wait_until(lambda: any(t.reason for t in csms.transactions.values()), what="StopTransaction")
    (tx,) = csms.transactions.values()
    assert tx.reason == "EVDisconnected"
    assert contactor_changes(charger) == ["closed", "open"]


async def test_csms_restart_mid_session_is_survived(charger: App, csms: CsmsSimulator) -> None:
    await script(charger, f"plug; tap {TAG}; expect Charging")
    assert charger.ocpp is not None
    # The outage starts after the station read the StartTransaction reply (not inside the resend window).
    await wait_until(lambda: charger.ocpp is not None and len(charger.ocpp.queue) == 0, what="the outbox to drain")
    await csms.stop()
    await wait_until(lambda: not charger.ocpp.connected.is_set(), what="the station to notice the outage")
    # Charging does not depend on the CSMS; a stop during the outage is queued, not lost.
    await script(charger, "wait 0.5; expect Charging")
    await script(charger, f"tap {TAG}; expect Finishing")
    # PWM off first; the contactor opens as the EV leaves C (a few ms later).
    await wait_until(lambda: contactor_changes(charger)[-1:] == ["open"], what="the contactor to open")
    assert "closed" in contactor_changes(charger)
    statuses_before = len(csms.statuses)
    await csms.start()
    await wait_until(lambda: any(t.reason for t in csms.transactions.values()), timeout=10,
                     what="the queued StopTransaction")
    (tx,) = csms.transactions.values()
    assert tx.reason == "Local" and tx.meter_stop is not None and tx.meter_stop >= tx.meter_start
    assert csms.boots == ["TEST-CP"]  # no second BootNotification after a plain reconnect
    resent = [(c, s) for _t, _id, c, s, _e in csms.statuses[statuses_before:]]
    # An outage shorter than OfflineThreshold: what changed is told again, what did not is not.
    assert (1, "Finishing") in resent and (0, "Available") not in resent
    assert csms.duplicate_stops == [] and csms.unknown_stops == []


async def test_remote_start_and_stop(charger: App, csms: CsmsSimulator) -> None:
    assert await csms.remote_start("TEST-CP", "REMOTE01", 1) == "Accepted"
    await script(charger, "expect Preparing; plug; expect Charging")
    await wait_until(lambda: len(csms.transactions) == 1, what="StartTransaction")
    (tx_id,) = csms.transactions
    assert await csms.remote_stop("TEST-CP", tx_id) == "Accepted"
    await script(charger, "expect Finishing")
    await wait_until(lambda: csms.transactions[tx_id].reason is not None, what="StopTransaction")
    assert csms.transactions[tx_id].reason == "Remote"
    assert await csms.remote_stop("TEST-CP", 999) == "Rejected"


async def test_malformed_csms_frames_get_1_6_callerrors_and_never_crash_the_station(
    charger: App, csms: CsmsSimulator
) -> None:
    central = csms.connections["TEST-CP"]
    frames = {
        "x0": "this is not json",
        "x1": json.dumps([2, "x1", "RemoteStartTransaction", {"connectorId": "one", "idTag": "A"}]),
        "x2": json.dumps([2, "x2", "Teleport", {}]),
        "x3": json.dumps([2, "x3", "RemoteStopTransaction", {}]),
        "x4": json.dumps([2, "x4", "RemoteStartTransaction", {"idTag": "A", "connectorId": -1}]),
    }
    for raw in frames.values():
        await central._connection.send(raw)

    def errors() -> dict[str, str]:
        replies = [json.loads(f.raw) for f in csms.frames if f.direction == "in" and f.raw.startswith("[4")]
        return {r[1]: r[2] for r in replies}

    await wait_until(lambda: len(errors()) == 5, what="five CALLERRORs")
    assert errors() == {"-1": "FormationViolation", "x1": "TypeConstraintViolation", "x2": "NotImplemented",
                        "x3": "OccurenceConstraintViolation", "x4": "PropertyConstraintViolation"}
    assert await csms.remote_start("TEST-CP", "REMOTE01", 1) == "Accepted"
    await script(charger, "plug; expect Charging")


async def test_shutdown_leaves_outputs_safe(charger: App) -> None:
    await script(charger, f"plug; tap {TAG}; expect Charging")
    assert charger.platform is not None
    ev = charger.platform.evs[1]
    await charger.stop()
    assert charger.platform.contactors[1].closed is False
    assert ev.duty == 0.0  # state F: steady -12 V


@pytest.mark.parametrize(
    ("text", "message"),
    [("plug; charge 1", "unknown step 'charge 1'; valid steps: plug [N]; unplug [N]; ev B|C|D|E|auto|sleep [N]"),
     ("ev X", "usage: ev B|C|D|E|auto|sleep [N]"),
     ("expect Charged", "unknown status 'Charged'"),
     ("tap 12345", "UID must be hex digits"),
     ("wait soon", "SECONDS must be a number"),
     ("wait nan", "SECONDS must be a number"),
     ("wait 99999999999", "SECONDS must be at most 3600, got 99999999999"),
     ("expect Charging within 86400", "SECONDS must be at most 3600"),
     ("plug\n# a comment\n\nfly away", "line 4: unknown step 'fly away'")],
)
def test_bad_script_steps_are_errors_that_say_what_is_valid(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("|", r"\|").replace("[", r"\[").replace("]", r"\]")):
        parse_script(text)


async def test_a_failing_expect_stops_the_script_says_why_and_lists_the_rest_as_skipped(charger: App) -> None:
    results = await run_steps(parse_script("expect Charging within 0.2; plug; unplug"), charger.platform)
    assert [r.status for r in results] == ["failed", "skipped", "skipped"]
    assert results[0].detail == "connector 1 is Available, expected Charging within 0.2 s"
    assert 0.2 <= results[0].duration < 1.0 and results[1].duration == 0
    assert results[1].detail == "not run: an earlier step failed"
    assert charger.station.evses[1].status.value == "Available"  # the plug never happened


async def test_a_deadline_fails_the_step_it_interrupts(charger: App) -> None:
    started = time.monotonic()
    results = await run_steps(parse_script("wait 30; plug"), charger.platform, deadline=started + 0.3)
    assert [r.status for r in results] == ["failed", "skipped"] and time.monotonic() - started < 2
    assert results[0].detail == "the script's time limit (--timeout) ran out during this step"


async def test_second_card_while_first_is_charging_is_not_given_the_busy_connector(charger: App) -> None:
    await script(charger, f"plug; tap {TAG}; expect Charging; wait 0.6; tap 0A0B0C0D; wait 0.5; expect Charging")
    evse = charger.station.evses[1]
    assert evse.session is not None and evse.session.id_token.value == TAG


async def test_meter_outage_is_logged_and_survived(charger: App, caplog: pytest.LogCaptureFixture) -> None:
    from pymodbus.constants import ExcCodes

    caplog.set_level(logging.INFO, "controller.metering")
    assert charger.platform is not None
    charger.platform.meters[1].refuse = ExcCodes.DEVICE_FAILURE
    await wait_until(lambda: "meter read failed" in caplog.text, what="the failed read to be logged")
    charger.platform.meters[1].refuse = None
    await wait_until(lambda: "meter answers again" in caplog.text, what="the recovery to be logged")
    await script(charger, f"plug; tap {TAG}; expect Charging")


async def test_run_script_against_an_external_csms_with_another_id(tmp_path: Path, csms: CsmsSimulator) -> None:
    from hil.runner import run_script
    from tests.conftest import sim_config

    config = sim_config()
    config.station.id = "BENCH-7"
    steps = parse_script(f"plug; tap {TAG}; expect Charging; wait 0.5; tap {TAG}; expect Finishing")
    summary = await run_script(config, steps, state_dir=tmp_path, csms_url=csms.url)
    assert summary["ok"] and summary["csms"] == {"url": f"{csms.url}/BENCH-7", "built_in": False}
    await wait_until(lambda: any(t.reason for t in csms.transactions.values()), what="StopTransaction")
    (tx,) = csms.transactions.values()
    assert (tx.cp_id, tx.id_tag, tx.reason) == ("BENCH-7", TAG, "Local")
    assert summary["sessions"][0]["energy_wh"] == tx.meter_stop - tx.meter_start  # type: ignore[operator]


async def test_run_script_on_2_0_1_summarises_its_transactions(tmp_path: Path) -> None:
    from hil.runner import run_script
    from tests.conftest import sim_config

    steps = parse_script(f"plug; tap {TAG}; expect Charging; wait 1.2; tap {TAG}; expect Finishing; wait 0.3")
    summary = await run_script(sim_config(version="2.0.1"), steps, state_dir=tmp_path)
    assert summary["ok"] and summary["csms"]["built_in"]
    (tx,) = summary["csms"]["transactions"]
    assert (tx["id_token"], tx["stopped_reason"], tx["in_seq_order"]) == (TAG, "Local", True)
    assert tx["events"] >= 3 and tx["ended"] is not None and tx["meter_values"] >= 1
    assert tx["transaction_id"] == summary["sessions"][0]["transaction"]  # the station's own id


def test_percentiles_are_nearest_rank() -> None:
    from hil.perf import percentile, summarise

    values = [float(i) for i in range(1, 201)]
    assert percentile(values, 50) == 100.0 and percentile(values, 99) == 198.0 and percentile(values, 100) == 200.0
    assert summarise([0.001, 0.002, 0.003]) == {"n": 3, "p50_ms": 2.0, "p99_ms": 3.0, "max_ms": 3.0}
