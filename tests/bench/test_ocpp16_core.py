"""OCPP 1.6 Core on the bench: boot, configuration keys and what they change, meter values, invalid ids.

Test names follow the OCTT 1.6 charge-point test cases they mirror (shared/reference/octt_16_cs_testcases.tsv).
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from ocpp.v16 import call

from controller.app import App
from controller.ocpp import device_model as dm
from controller.ocpp.adapter import Registration
from hil.csms import CsmsSimulator
from hil.script import parse_script
from hil.steps import run_steps
from tests.conftest import sim_config, wait_until

TAG = "04A1B2C3"
CP = "TEST-CP"


async def script(app: App, text: str) -> None:
    results = await run_steps(parse_script(text), app.platform)
    assert all(r.ok for r in results), [r for r in results if not r.ok]


async def change(csms: CsmsSimulator, key: str, value: str) -> str:
    result = await csms.call(CP, call.ChangeConfiguration(key=key, value=value))
    return str(result.status)


def calls(csms: CsmsSimulator, action: str) -> list[dict[str, Any]]:
    found = []
    for f in csms.frames:
        message = json.loads(f.raw)
        if f.direction == "in" and message[0] == 2 and message[2] == action:
            found.append(message[3])
    return found


async def test_TC_001_CS_cold_boot(charger: App, csms: CsmsSimulator) -> None:
    await wait_until(lambda: len(calls(csms, "StatusNotification")) >= 2, what="status notifications")
    assert csms.actions()[0] == "BootNotification"
    statuses = [(s["connectorId"], s["status"]) for s in calls(csms, "StatusNotification")]
    assert statuses[:2] == [(0, "Available"), (1, "Available")]
    assert charger.ocpp is not None and charger.ocpp.model.number(dm.HEARTBEAT_INTERVAL) == csms.heartbeat_interval


@contextlib.asynccontextmanager
async def booting(tmp_path: Path, answer: str, retry: int) -> AsyncIterator[tuple[App, CsmsSimulator]]:
    """A charger whose first BootNotification gets ``answer`` (then Accepted after ``retry`` s)."""
    csms = CsmsSimulator()
    csms.boot_answers = [answer]
    csms.boot_retry = retry
    await csms.start()
    app = App(sim_config(), state_dir=tmp_path, csms_url=csms.url)
    await app.start()
    try:
        yield app, csms
    finally:
        await app.stop()
        await csms.stop()


async def test_TC_002_CS_boot_pending_answers_but_starts_nothing(tmp_path: Path) -> None:
    async with booting(tmp_path, "Pending", 1) as (_app, csms):
        await wait_until(lambda: CP in csms.connections and csms.boots, what="the first BootNotification")
        assert await csms.remote_start(CP, TAG, 1) == "Rejected"  # answered, but no remote start while Pending
        known = await csms.call(CP, call.GetConfiguration(key=["NumberOfConnectors"]))
        assert known.configuration_key[0]["value"] == "1"
        assert csms.actions() == ["BootNotification"]  # nothing else is sent before Accepted
        await wait_until(lambda: len(csms.boots) == 2, timeout=5, what="the second BootNotification")
        await wait_until(lambda: "StatusNotification" in csms.actions(), what="statuses after Accepted")


async def test_boot_rejected_is_silent_until_the_interval_ends(tmp_path: Path) -> None:
    async with booting(tmp_path, "Rejected", 2) as (app, csms):
        await wait_until(lambda: csms.boots, what="the first BootNotification")
        first = csms.frames[-1].t
        await script(app, f"plug; tap {TAG}; wait 0.5")  # a card while rejected: nothing goes out
        assert csms.actions() == ["BootNotification"]
        await wait_until(lambda: len(csms.boots) == 2, timeout=5, what="the second BootNotification")
        second = [f.t for f in csms.frames if f.direction == "in" and '"BootNotification"' in f.raw][1]
        assert second - first >= 1.9


async def test_TC_019_CS_get_configuration_all_some_and_unknown(charger: App, csms: CsmsSimulator) -> None:
    everything = await csms.call(CP, call.GetConfiguration())
    keys = {k["key"]: k for k in everything.configuration_key}
    assert keys["NumberOfConnectors"] == {"key": "NumberOfConnectors", "readonly": True, "value": "1"}
    assert keys["AuthorizationCacheEnabled"]["value"] == "true" and keys["LocalAuthorizeOffline"]["value"] == "true"
    assert "Core" in keys["SupportedFeatureProfiles"]["value"]
    some = await csms.call(CP, call.GetConfiguration(key=["MeterValueSampleInterval", "NoSuchKey"]))
    assert [k["key"] for k in some.configuration_key] == ["MeterValueSampleInterval"]
    assert some.unknown_key == ["NoSuchKey"]


async def test_TC_021_CS_change_configuration_is_applied_and_persisted(
    tmp_path: Path, charger: App, csms: CsmsSimulator
) -> None:
    assert await change(csms, "MeterValueSampleInterval", "17") == "Accepted"
    assert charger.ocpp is not None and charger.ocpp.model.number(dm.TX_UPDATED_INTERVAL) == 17
    await charger.stop()
    again = App(sim_config(), state_dir=tmp_path, csms_url=csms.url)
    await again.start()
    try:
        assert again.ocpp is not None and again.ocpp.model.number(dm.TX_UPDATED_INTERVAL) == 17
    finally:
        await again.stop()


async def test_TC_040_CS_unknown_key_bad_value_and_read_only(charger: App, csms: CsmsSimulator) -> None:
    assert await change(csms, "NoSuchKey", "1") == "NotSupported"
    assert await change(csms, "MeterValueSampleInterval", "often") == "Rejected"
    assert await change(csms, "StopTransactionOnInvalidId", "maybe") == "Rejected"
    assert await change(csms, "MeterValuesSampledData", "Temperature") == "Rejected"
    assert await change(csms, "NumberOfConnectors", "2") == "Rejected"


async def test_TC_070_CS_sampled_meter_values_follow_the_measurand_key(charger: App, csms: CsmsSimulator) -> None:
    assert await change(csms, "MeterValuesSampledData", "Energy.Active.Import.Register,Current.Import.L2") == "Accepted"
    assert await change(csms, "MeterValueSampleInterval", "1") == "Accepted"
    await script(charger, f"plug; tap {TAG}; expect Charging; wait 1.6")
    values = calls(csms, "MeterValues")
    assert values and all(v["transactionId"] == 1 for v in values)
    sampled = values[-1]["meterValue"][0]["sampledValue"]
    assert {(s["measurand"], s.get("phase"), s["context"]) for s in sampled} == {
        ("Energy.Active.Import.Register", None, "Sample.Periodic"), ("Current.Import", "L2", "Sample.Periodic")}


async def test_TC_071_CS_clock_aligned_meter_values(charger: App, csms: CsmsSimulator) -> None:
    assert await change(csms, "ClockAlignedDataInterval", "1") == "Accepted"
    await wait_until(lambda: calls(csms, "MeterValues"), timeout=3, what="an idle clock-aligned sample")
    idle = calls(csms, "MeterValues")[0]
    assert "transactionId" not in idle and idle["meterValue"][0]["sampledValue"][0]["context"] == "Sample.Clock"
    await script(charger, f"plug; tap {TAG}; expect Charging; wait 1.5")
    in_tx = [v for v in calls(csms, "MeterValues") if v.get("transactionId") == 1
             and v["meterValue"][0]["sampledValue"][0]["context"] == "Sample.Clock"]
    assert in_tx
    stamp = in_tx[0]["meterValue"][0]["timestamp"]
    assert stamp.endswith(".000Z")  # stamped with the boundary it belongs to: a whole second


async def test_stop_transaction_carries_stop_txn_sampled_and_aligned_data(charger: App, csms: CsmsSimulator) -> None:
    assert await change(csms, "StopTxnSampledData", "Energy.Active.Import.Register") == "Accepted"
    assert await change(csms, "StopTxnAlignedData", "Energy.Active.Import.Register") == "Accepted"
    assert await change(csms, "ClockAlignedDataInterval", "1") == "Accepted"
    await script(charger, f"plug; tap {TAG}; expect Charging; wait 1.5; tap {TAG}; expect Finishing")
    await wait_until(lambda: calls(csms, "StopTransaction"), what="StopTransaction")
    data = calls(csms, "StopTransaction")[0]["transactionData"]
    contexts = [d["sampledValue"][0]["context"] for d in data]
    assert contexts[0] == "Transaction.Begin" and contexts[-1] == "Transaction.End"
    assert "Sample.Clock" in contexts


async def test_TC_005_3_CS_ev_side_disconnect_keeps_the_transaction(charger: App, csms: CsmsSimulator) -> None:
    assert await change(csms, "StopTransactionOnEVSideDisconnect", "false") == "Accepted"
    await script(charger, f"plug; tap {TAG}; expect Charging; unplug; expect SuspendedEV; wait 0.3")
    assert charger.platform is not None and not charger.platform.contactors[1].closed
    assert "StopTransaction" not in csms.actions()
    await script(charger, f"plug; expect Charging; wait 0.3; tap {TAG}; expect Finishing")
    await wait_until(lambda: calls(csms, "StopTransaction"), what="StopTransaction")
    assert calls(csms, "StopTransaction")[0]["reason"] == "Local"


async def test_TC_005_1_CS_ev_side_disconnect_stops_the_transaction(charger: App, csms: CsmsSimulator) -> None:
    await script(charger, f"plug; tap {TAG}; expect Charging; unplug; expect Available")
    await wait_until(lambda: calls(csms, "StopTransaction"), what="StopTransaction")
    assert calls(csms, "StopTransaction")[0]["reason"] == "EVDisconnected"


async def test_TC_004_2_CS_connection_timeout(charger: App, csms: CsmsSimulator) -> None:
    assert await change(csms, "ConnectionTimeOut", "1") == "Accepted"
    await script(charger, f"tap {TAG}; expect Preparing; wait 1.3; expect Available")
    assert "StartTransaction" not in csms.actions()


async def test_invalid_id_at_start_stops_the_transaction(charger: App, csms: CsmsSimulator) -> None:
    csms.invalid_at_start.add(TAG)
    await script(charger, f"plug; tap {TAG}; expect Finishing within 5")
    await wait_until(lambda: calls(csms, "StopTransaction"), what="StopTransaction")
    assert calls(csms, "StopTransaction")[0]["reason"] == "DeAuthorized"


async def test_invalid_id_with_stop_off_suspends_energy_at_the_cap(charger: App, csms: CsmsSimulator) -> None:
    assert await change(csms, "StopTransactionOnInvalidId", "false") == "Accepted"
    assert await change(csms, "MaxEnergyOnInvalidId", "0") == "Accepted"
    csms.invalid_at_start.add(TAG)
    await script(charger, f"plug; tap {TAG}; expect SuspendedEVSE within 5")
    # PWM withdrawn: the contactor opens as the EV leaves C (milliseconds later), and the transaction stays.
    await wait_until(lambda: not charger.platform.contactors[1].closed, 1, what="the contactor to open")
    assert "StopTransaction" not in csms.actions()


async def test_a_start_never_confirmed_leaves_later_messages_with_minus_one(charger: App, csms: CsmsSimulator) -> None:
    assert await change(csms, "TransactionMessageAttempts", "1") == "Accepted"
    csms.refuse_starts = True
    await script(charger, f"plug; tap {TAG}; expect Charging; wait 0.7; tap {TAG}; expect Finishing")
    await wait_until(lambda: calls(csms, "StopTransaction"), what="StopTransaction")
    assert calls(csms, "StopTransaction")[0]["transactionId"] == -1


async def test_a_retried_transaction_message_keeps_its_message_id(tmp_path: Path, charger: App,
                                                                 csms: CsmsSimulator) -> None:
    assert await change(csms, "TransactionMessageRetryInterval", "1") == "Accepted"
    csms.refuse_next_starts = 1
    await script(charger, f"plug; tap {TAG}; expect Charging")
    await wait_until(lambda: len(csms.transactions) == 1, timeout=5, what="the retried StartTransaction")
    sent = [json.loads(f.raw)[1] for f in csms.frames if f.direction == "in" and '"StartTransaction"' in f.raw]
    assert len(sent) == 2 and sent[0] == sent[1]  # a CSMS can tell the retry from a second transaction
    # Across a restart too: refused again, the daemon stops before its retry, a new one sends the same id.
    await script(charger, f"wait 0.7; tap {TAG}; expect Finishing; unplug; expect Available")
    assert await change(csms, "TransactionMessageRetryInterval", "60") == "Accepted"
    csms.refuse_next_starts = 1
    await script(charger, f"wait 0.7; plug; tap {TAG}; expect Charging")
    await wait_until(lambda: len(calls(csms, "StartTransaction")) == 3, what="the refused StartTransaction")
    await charger.stop()
    again = App(sim_config(), state_dir=tmp_path, csms_url=csms.url)
    await again.start()
    try:
        await wait_until(lambda: len(csms.transactions) == 2, timeout=10, what="the StartTransaction after restart")
        sent = [json.loads(f.raw)[1] for f in csms.frames if f.direction == "in" and '"StartTransaction"' in f.raw]
        assert len(sent) == 4 and sent[2] == sent[3]
    finally:
        await again.stop()


async def test_minimum_status_duration_hides_short_lived_statuses(charger: App, csms: CsmsSimulator) -> None:
    assert await change(csms, "MinimumStatusDuration", "1") == "Accepted"
    await script(charger, f"plug; tap {TAG}; expect Charging; wait 1.2; ev B; expect SuspendedEV; ev auto")
    await script(charger, "expect Charging; wait 1.3")
    reported = [s["status"] for s in calls(csms, "StatusNotification") if s["connectorId"] == 1]
    assert "SuspendedEV" not in reported and reported[-1] == "Charging"


async def test_heartbeat_interval_change_takes_effect_at_once(charger: App, csms: CsmsSimulator) -> None:
    assert "Heartbeat" not in csms.actions()  # the boot interval is 300 s
    assert await change(csms, "HeartbeatInterval", "1") == "Accepted"
    # Not after the rest of the old 300 s wait: two heartbeats, a second apart, within a few seconds.
    await wait_until(lambda: csms.actions().count("Heartbeat") >= 2, timeout=5, what="two heartbeats")


async def test_a_dead_link_is_detected_by_websocket_pings_and_replaced(charger: App, csms: CsmsSimulator) -> None:
    assert await change(csms, "WebSocketPingInterval", "1") == "Accepted"
    await csms.stop()  # the new interval applies from the next connection
    await csms.start()
    assert charger.ocpp is not None
    await wait_until(lambda: charger.ocpp is not None and charger.ocpp.connected.is_set() and CP in csms.connections,
                     timeout=10, what="the reconnect")
    frozen = csms.connections[CP]
    # The CSMS side stops reading: no pong ever comes back, yet the TCP connection stays open.
    frozen._connection._ws.transport.pause_reading()
    await wait_until(lambda: not charger.ocpp.connected.is_set(), timeout=5, what="the dead link to be noticed")
    await wait_until(lambda: CP in csms.connections and csms.connections[CP] is not frozen, timeout=10,
                     what="a fresh connection")


async def test_TC_002_CS_a_triggered_boot_notification_while_pending_goes_out_at_once(tmp_path: Path) -> None:
    async with booting(tmp_path, "Pending", 30) as (_app, csms):
        await wait_until(lambda: CP in csms.connections and csms.boots, what="the first BootNotification")
        result = await csms.call(CP, call.TriggerMessage(requested_message="BootNotification"))
        assert result.status == "Accepted"
        await wait_until(lambda: len(csms.boots) == 2, timeout=2, what="the triggered BootNotification")
        await wait_until(lambda: "StatusNotification" in csms.actions(), what="statuses once Accepted")


async def test_after_a_rejected_boot_the_station_is_accepted_at_the_next_try(tmp_path: Path) -> None:
    async with booting(tmp_path, "Rejected", 1) as (app, csms):
        await wait_until(lambda: len(csms.boots) == 2, timeout=5, what="the second BootNotification")
        assert app.ocpp is not None
        await wait_until(lambda: app.ocpp is not None and app.ocpp.registration == Registration.ACCEPTED, timeout=3,
                         what="the station to take the answer")
        await wait_until(lambda: "StatusNotification" in csms.actions(), what="statuses once Accepted")
        assert csms.boots == [CP, CP] and app.ocpp.link.connections == 1  # no timeout, no reconnect loop


async def test_boot_notification_says_what_runs_and_which_meter_bills(tmp_path: Path, csms: CsmsSimulator) -> None:
    from importlib.metadata import version

    config = sim_config()
    config.station.serial_number = "WB-000042"
    app = App(config, state_dir=tmp_path, csms_url=csms.url)
    await app.start()
    try:
        await wait_until(lambda: calls(csms, "BootNotification"), what="BootNotification")
        boot = calls(csms, "BootNotification")[0]
        assert boot["firmwareVersion"] == version("evse-controller")
        assert boot["chargePointSerialNumber"] == "WB-000042"
        assert app.platform is not None and boot["meterSerialNumber"] == str(app.platform.meters[1].serial)
    finally:
        await app.stop()


async def test_the_station_closes_normally_when_it_goes_away(tmp_path: Path, csms: CsmsSimulator) -> None:
    app = App(sim_config(), state_dir=tmp_path, csms_url=csms.url)
    await app.start()
    await wait_until(lambda: app.ocpp is not None and app.ocpp.connected.is_set(), what="the link")
    await app.stop()
    await wait_until(lambda: csms.close_codes, what="the close")
    assert csms.close_codes == [1001]


async def test_a_password_in_the_csms_url_never_reaches_a_log(tmp_path: Path, csms: CsmsSimulator,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    url = csms.url.replace("ws://", "ws://TEST-CP:s3cr3t-Pa55@")
    app = App(sim_config(), state_dir=tmp_path, csms_url=url)
    await app.start()
    try:
        await wait_until(lambda: app.ocpp is not None and app.ocpp.connected.is_set(), what="the link")
        await csms.stop()  # and the reconnect attempts log the URL again
        await wait_until(lambda: "unreachable" in caplog.text, what="a failed reconnect")
        assert "s3cr3t" not in caplog.text and "TEST-CP:***@127.0.0.1" in caplog.text
    finally:
        await app.stop()


async def test_a_status_after_a_stop_reaches_the_csms_after_that_stop(charger: App, csms: CsmsSimulator) -> None:
    # A MeterValues is still waiting for its answer when the EV is unplugged: the Available must not take the
    # link before the StopTransaction queued behind it.
    csms.slow_answers["MeterValues"] = 0.5
    for _ in range(3):
        await script(charger, f"wait 0.7; plug; tap {TAG}; expect Charging; wait 1.2; unplug; expect Available")
        await wait_until(lambda: calls(csms, "StatusNotification")[-1]["status"] == "Available",
                         what="Available at the CSMS")
    order = [m[2] if m[2] != "StatusNotification" else m[3]["status"]
             for m in (json.loads(f.raw) for f in csms.frames if f.direction == "in")
             if m[0] == 2 and m[2] in ("StopTransaction", "StatusNotification") and m[3].get("connectorId", 1) == 1]
    # Each unplug: Charging, then its StopTransaction, then its Available; never the Available first.
    sessions = [order[i - 1:i + 2] for i, action in enumerate(order) if action == "StopTransaction"]
    assert sessions == [["Charging", "StopTransaction", "Available"]] * 3


async def test_a_station_going_away_from_a_frozen_csms_does_not_wait_out_a_close_timeout(
        tmp_path: Path, csms: CsmsSimulator) -> None:
    import time

    app = App(sim_config(), state_dir=tmp_path, csms_url=csms.url)
    await app.start()
    await wait_until(lambda: app.ocpp is not None and app.ocpp.connected.is_set() and CP in csms.connections,
                     what="the link")
    csms.connections[CP]._connection._ws.transport.pause_reading()  # it will never answer the close frame
    started = time.monotonic()
    await app.stop()
    assert time.monotonic() - started < 3.0  # the close waits 2 s at most, not websockets' 10 s
