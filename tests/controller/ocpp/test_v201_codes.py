"""OCPP 2.0.1 spellings: every stop reason and trigger the station can report is one the 2.0.1 schema takes."""

from __future__ import annotations

import json
from importlib import resources

from controller.domain.types import EvseStatus, StopReason, TriggerReason
from controller.ocpp.v201.codes import CONNECTOR_STATUS, STOPPED_REASONS


def _enum(schema: str, name: str) -> set[str]:
    text = (resources.files("ocpp") / "v201" / "schemas" / f"{schema}.json").read_text()
    return set(json.loads(text)["definitions"][name]["enum"])


def test_every_stop_reason_and_trigger_is_a_2_0_1_value() -> None:
    reasons = _enum("TransactionEventRequest", "ReasonEnumType")
    assert {STOPPED_REASONS[r] for r in StopReason} <= reasons
    assert {t.value for t in TriggerReason} <= _enum("TransactionEventRequest", "TriggerReasonEnumType")
    assert STOPPED_REASONS[StopReason.HARD_RESET] == "ImmediateReset"


def test_every_status_is_a_2_0_1_connector_status() -> None:
    assert {CONNECTOR_STATUS[s] for s in EvseStatus} <= _enum("StatusNotificationRequest", "ConnectorStatusEnumType")
