"""Frames from the CSMS: the OCPP-J 1.6 CALLERROR code and spelling, and the hostile frames a fuzzer sent."""

from __future__ import annotations

import json

import pytest

from controller.ocpp.framing import MAX_DESCRIPTION, CallError, Frame
from controller.ocpp.v16.codes import RULES

HANDLED = {"RemoteStartTransaction", "GetConfiguration", "ChangeConfiguration", "DataTransfer"}


def inspect(raw: str | bytes) -> Frame | CallError | None:
    return RULES.inspect(raw, HANDLED)


@pytest.mark.parametrize(
    ("raw", "unique_id", "code"),
    [
        ("not json at all", "-1", "FormationViolation"),
        ('[2, "m1", "RemoteStartTransaction", {"idTag": ', "m1", "FormationViolation"),
        ('{"call": 2}', "-1", "FormationViolation"),
        ('[2, "m2", "RemoteStartTransaction"]', "m2", "FormationViolation"),
        ('[2, "m3", "FlyToTheMoon", {}]', "m3", "NotImplemented"),
        ('[2, "m4", "Reset", {"type": "Hard"}]', "m4", "NotSupported"),
        ('[2, "m5", "RemoteStartTransaction", {}]', "m5", "OccurenceConstraintViolation"),
        ('[2, "m6", "RemoteStartTransaction", {"idTag": 42}]', "m6", "TypeConstraintViolation"),
        ('[2, "m7", "RemoteStartTransaction", {"idTag": "123456789012345678901"}]', "m7", "TypeConstraintViolation"),
        ('[2, "m8", "RemoteStartTransaction", {"idTag": "A", "connectorId": -2}]', "m8",
         "PropertyConstraintViolation"),
        ('[2, "m9", "GetConfiguration", {"key": ["a"], "colour": "red"}]', "m9", "FormationViolation"),
    ],
)
def test_each_malformation_gets_its_1_6_code(raw: str, unique_id: str, code: str) -> None:
    result = inspect(raw)
    assert isinstance(result, CallError)
    assert (result.unique_id, result.code) == (unique_id, code)


def test_well_formed_frames_pass_and_unknown_message_types_are_ignored() -> None:
    ok = inspect('[2, "ok", "RemoteStartTransaction", {"idTag": "AB", "connectorId": 1}]')
    assert isinstance(ok, Frame) and (ok.unique_id, ok.action) == ("ok", "RemoteStartTransaction")
    result = inspect('[3, "r1", {}]')
    assert isinstance(result, Frame) and result.payload == {}
    assert inspect('[7, "x", "whatever"]') is None


def _profile(limit: str) -> str:
    return ('[2,"z3","RemoteStartTransaction",{"idTag":"A1B2C3D4","connectorId":1,"chargingProfile":'
            '{"chargingProfileId":1,"stackLevel":0,"chargingProfilePurpose":"TxProfile","chargingProfileKind":'
            '"Relative","chargingSchedule":{"chargingRateUnit":"A","chargingSchedulePeriod":[{"startPeriod":0,'
            f'"limit":{limit}}}],"minChargingRate":{limit}}}}}}}]')


@pytest.mark.parametrize("limit", ["16.0", "6.0", "16.5", "21.4", "10.1", "16"])
def test_decimal_limits_are_multiples_of_0_1_exactly(limit: str) -> None:
    assert isinstance(inspect(_profile(limit)), Frame)


@pytest.mark.parametrize(("limit", "code"), [("4.11", "PropertyConstraintViolation"),
                                             ("1E+400", "TypeConstraintViolation"),
                                             ("NaN", "FormationViolation"), ("Infinity", "FormationViolation")])
def test_impossible_limits_are_refused_with_a_callerror(limit: str, code: str) -> None:
    result = inspect(_profile(limit))
    assert isinstance(result, CallError) and (result.unique_id, result.code) == ("z3", code)


def test_deep_nesting_is_refused_not_a_recursion_error() -> None:
    for depth in (30, 1000, 100_000):
        result = inspect('[2,"d","GetConfiguration",{"key":' + "[" * depth + "]" * depth + "}]")
        assert isinstance(result, CallError) and (result.unique_id, result.code) == ("d", "FormationViolation")


def test_answers_are_never_answered_with_a_callerror() -> None:
    for raw in ('[3,"x"]', '[4,"x"]', '[3,"x",{"a":' + "[" * 50 + "]" * 50 + "}]", '[4,"x","NotACode"]'):
        result = inspect(raw)
        assert isinstance(result, Frame) and result.payload is None and result.error_code is None
    assert inspect('[3, 17, {}]') is None  # no readable id: nothing to match, nothing to answer


def test_a_lone_surrogate_is_refused_cleanly() -> None:
    for raw in ('[2,"s","RemoteStartTransaction",{"idTag":"\\ud800X"}]',
                '[2,"s","ChangeConfiguration",{"key":"HeartbeatInterval","value":"\\udfff"}]'):
        result = inspect(raw)
        assert isinstance(result, CallError) and (result.unique_id, result.code) == ("s", "TypeConstraintViolation")


def test_a_huge_bad_value_is_not_echoed_whole() -> None:
    result = inspect(json.dumps([2, "big", "DataTransfer", {"vendorId": "x" * 400_000}]))
    assert isinstance(result, CallError) and len(result.to_json()) < MAX_DESCRIPTION + 100


def test_binary_frames_are_not_ocpp_j() -> None:
    result = inspect(b'[2,"b","GetConfiguration",{}]')
    assert isinstance(result, CallError) and (result.unique_id, result.code) == ("b", "FormationViolation")
    assert inspect(b"\x00\x01garbage") is None


def test_the_station_checks_its_own_requests_and_the_answers_it_gets() -> None:
    assert RULES.request_problem("MeterValues", {"connectorId": 1, "meterValue": [{
        "timestamp": "2026-11-21T10:00:00.000Z", "sampledValue": []}]}) is not None  # an empty sample cannot work
    assert RULES.result_problem("Heartbeat", {}) is not None  # no currentTime
    assert RULES.result_problem("Heartbeat", {"currentTime": "2026-11-21T10:00:00.000Z"}) is None


def test_the_quick_check_leaves_a_payload_as_it_is_and_agrees_with_the_exact_one() -> None:
    from controller.ocpp.v201.codes import RULES as RULES_201

    report = {"requestId": 1, "generatedAt": "2026-11-21T10:00:00.000Z", "seqNo": 0, "reportData": [{
        "component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"},
        "variableAttribute": [{"value": "60"}]}]}
    before = json.dumps(report)
    assert RULES_201.request_problem("NotifyReport", report) is None
    assert json.dumps(report) == before  # the schema's defaults (persistent, constant) are not filled in
    bad = {**report, "seqNo": "zero"}
    assert RULES_201.request_problem("NotifyReport", bad) == "seqNo: 'zero' is not of type 'integer'"
    event = {"eventType": "Updated", "timestamp": "2026-11-21T10:00:00.000Z", "triggerReason": "Trigger",
             "seqNo": 1, "transactionInfo": {"transactionId": "t"}, "meterValue": [{
                 "timestamp": "2026-11-21T10:00:00.000Z", "sampledValue": [{"value": 21.4}]}]}
    assert RULES_201.request_problem("TransactionEvent", event) is None
