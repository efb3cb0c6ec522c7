"""Malformed CSMS frames get the OCPP-J 1.6 CALLERROR code and spelling the spec gives."""

from __future__ import annotations

import pytest

from controller.ocpp.v16.rpc import CallError, Inspected, inspect

HANDLED = {"RemoteStartTransaction", "GetConfiguration"}


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
    result = inspect(raw, HANDLED)
    assert isinstance(result, CallError)
    assert (result.unique_id, result.code) == (unique_id, code)


def test_well_formed_frames_pass_and_unknown_message_types_are_ignored() -> None:
    assert inspect('[2, "ok", "RemoteStartTransaction", {"idTag": "AB", "connectorId": 1}]', HANDLED) == Inspected(
        2, "ok", "RemoteStartTransaction")
    assert inspect('[3, "r1", {}]', HANDLED) == Inspected(3, "r1", None)
    assert inspect('[7, "x", "whatever"]', HANDLED) is None
