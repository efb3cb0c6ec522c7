"""What a hostile or fuzzing CSMS sends: answered where OCPP says so, never a crash, never a dropped connection."""

from __future__ import annotations

import json
from typing import Any

import pytest
from ocpp.v16 import call

from controller.app import App
from hil.csms import CsmsSimulator
from tests.bench.test_ocpp16_core import CP, change
from tests.conftest import wait_until


async def send(csms: CsmsSimulator, raw: str | bytes) -> None:
    """Put a frame on the wire as it stands (the bench CSMS's own checks are bypassed)."""
    await csms.connections[CP]._connection._ws.send(raw)


def answers(csms: CsmsSimulator, unique_id: str) -> list[list[Any]]:
    """The station's CALLRESULTs and CALLERRORs for ``unique_id``."""
    found = []
    for f in csms.frames:
        if f.direction == "in" and f.raw.startswith(("[3", "[4")):
            message = json.loads(f.raw)
            if message[1] == unique_id:
                found.append(message)
    return found


async def answer(csms: CsmsSimulator, unique_id: str) -> list[Any]:
    await wait_until(lambda: answers(csms, unique_id), what=f"the answer to {unique_id}")
    (found,) = answers(csms, unique_id)
    return found


async def still_the_same_connection(charger: App, csms: CsmsSimulator, before: Any) -> None:
    """The link never dropped, and the station still answers and sends on it."""
    assert charger.ocpp is not None
    assert (await csms.call(CP, call.GetLocalListVersion())).list_version == 0
    before_heartbeats = csms.actions().count("Heartbeat")
    assert (await csms.call(CP, call.TriggerMessage(requested_message="Heartbeat"))).status == "Accepted"
    await wait_until(lambda: csms.actions().count("Heartbeat") > before_heartbeats, what="a triggered Heartbeat")
    assert csms.connections[CP] is before and charger.ocpp.link.connections == 1


def _remote_start(unique_id: str, limit: str) -> str:
    return (f'[2,"{unique_id}","RemoteStartTransaction",{{"idTag":"A1B2C3D4","connectorId":1,"chargingProfile":'
            '{"chargingProfileId":1,"stackLevel":0,"chargingProfilePurpose":"TxProfile","chargingProfileKind":'
            '"Relative","chargingSchedule":{"chargingRateUnit":"A","chargingSchedulePeriod":[{"startPeriod":0,'
            f'"limit":{limit}}}],"minChargingRate":{limit}}}}}}}]')


async def test_a_decimal_charging_limit_is_a_valid_remote_start(charger: App, csms: CsmsSimulator) -> None:
    before = csms.connections[CP]
    for i, limit in enumerate(["16.0", "6.0", "16.5", "21.4", "10.1"]):
        await send(csms, _remote_start(f"z{i}", limit))
        reply = await answer(csms, f"z{i}")
        assert reply[0] == 3 and reply[2]["status"] in ("Accepted", "Rejected")  # answered, not refused as a frame
    for i, limit in enumerate(["NaN", "Infinity", "1E+400"]):
        await send(csms, _remote_start(f"n{i}", limit))
        reply = await answer(csms, f"n{i}")
        assert reply[0] == 4 and reply[2] in ("FormationViolation", "TypeConstraintViolation")
    await still_the_same_connection(charger, csms, before)


async def test_deep_nesting_gets_a_formation_violation(charger: App, csms: CsmsSimulator) -> None:
    before = csms.connections[CP]
    await send(csms, '[2,"deep","GetConfiguration",{"key":' + "[" * 1000 + "]" * 1000 + "}]")
    assert (await answer(csms, "deep"))[:3] == [4, "deep", "FormationViolation"]
    await still_the_same_connection(charger, csms, before)


async def test_answers_nobody_asked_for_are_dropped_and_never_answered(charger: App, csms: CsmsSimulator) -> None:
    before = csms.connections[CP]
    for i in range(1500):
        await send(csms, json.dumps([3, f"u{i}", {"currentTime": "2026-01-01T00:00:00Z"}]))
        await send(csms, json.dumps([4, f"e{i}", "InternalError", "nobody asked", {}]))
    await send(csms, '[3,"short"]')
    await send(csms, '[4,"short"]')
    await still_the_same_connection(charger, csms, before)
    assert not [f for f in csms.frames if f.direction == "in" and f.raw.startswith("[4")]
    statuses = csms.actions().count("StatusNotification")
    assert (await csms.call(CP, call.TriggerMessage(requested_message="StatusNotification",
                                                    connector_id=1))).status == "Accepted"
    await wait_until(lambda: csms.actions().count("StatusNotification") == statuses + 1, what="the status")


async def test_a_schema_breaking_answer_is_a_failed_call_not_a_dropped_link(charger: App, csms: CsmsSimulator) -> None:
    before = csms.connections[CP]
    csms.bad_answers["Heartbeat"] = [{}]  # no currentTime
    assert (await csms.call(CP, call.TriggerMessage(requested_message="Heartbeat"))).status == "Accepted"
    await wait_until(lambda: csms.actions().count("Heartbeat") == 1, what="the Heartbeat")
    await still_the_same_connection(charger, csms, before)  # and the next Heartbeat is answered properly


async def test_a_lone_surrogate_is_refused_and_never_applied(charger: App, csms: CsmsSimulator) -> None:
    before = csms.connections[CP]
    await send(csms, '[2,"s1","RemoteStartTransaction",{"idTag":"\\ud800X"}]')
    assert (await answer(csms, "s1"))[:3] == [4, "s1", "TypeConstraintViolation"]
    await send(csms, '[2,"s2","ChangeConfiguration",{"key":"ConnectorPhaseRotation","value":"\\udfff"}]')
    assert (await answer(csms, "s2"))[:3] == [4, "s2", "TypeConstraintViolation"]
    known = await csms.call(CP, call.GetConfiguration(key=["ConnectorPhaseRotation"]))
    assert known.configuration_key[0]["value"] == "1.RST"
    await still_the_same_connection(charger, csms, before)


async def test_measurand_lists_that_cannot_be_sampled_are_rejected(charger: App, csms: CsmsSimulator) -> None:
    assert await change(csms, "MeterValuesSampledData", "") == "Rejected"
    assert await change(csms, "MeterValuesAlignedData", " , ") == "Rejected"
    assert await change(csms, "StopTxnSampledData", "") == "Accepted"  # nothing at a transaction's end is fine
    assert await change(csms, "MeterValuesSampledData", ",".join(["Voltage"] * 9)) == "Rejected"  # over MaxLength


async def test_a_huge_bad_value_gets_a_short_callerror(charger: App, csms: CsmsSimulator) -> None:
    await send(csms, json.dumps([2, "big", "DataTransfer", {"vendorId": "v" * 400_000}]))
    reply = await answer(csms, "big")
    assert reply[2] == "TypeConstraintViolation" and len(json.dumps(reply)) < 1000


@pytest.mark.parametrize("value", ["\uff11", "1_0", " 1 0", "0x10", "1e3"])  # \uff11: a fullwidth 1
async def test_integers_are_ascii_digits_only(charger: App, csms: CsmsSimulator, value: str) -> None:
    assert await change(csms, "HeartbeatInterval", value) == "Rejected"


async def test_nan_and_binary_frames_are_formation_violations(charger: App, csms: CsmsSimulator) -> None:
    before = csms.connections[CP]
    await send(csms, '[2,"nan","ChangeConfiguration",{"key":"HeartbeatInterval","value":NaN}]')
    assert (await answer(csms, "nan"))[:3] == [4, "nan", "FormationViolation"]
    await send(csms, b'[2,"bin","GetLocalListVersion",{}]')
    assert (await answer(csms, "bin"))[:3] == [4, "bin", "FormationViolation"]
    await still_the_same_connection(charger, csms, before)
