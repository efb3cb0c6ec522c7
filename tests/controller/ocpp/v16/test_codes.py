"""The 1.6 spellings cover the whole vocabulary, and only with values 1.6 has."""

from __future__ import annotations

from ocpp.v16.enums import ChargePointErrorCode, Reason

from controller.domain.faults import Fault
from controller.domain.types import StopReason
from controller.ocpp.v16.codes import ERROR_CODES, REASONS


def test_every_fault_has_a_16_error_code() -> None:
    assert set(ERROR_CODES) == set(Fault)
    assert set(ERROR_CODES.values()) <= {c.value for c in ChargePointErrorCode} - {"NoError"}


def test_the_dc_faults_use_the_codes_16_has_for_them() -> None:
    assert ERROR_CODES[Fault.EV_COMM_LOST] == "EVCommunicationError"
    assert ERROR_CODES[Fault.OVER_VOLTAGE] == "OverVoltage"
    assert ERROR_CODES[Fault.INSULATION_FAULT] == "GroundFailure"


def test_every_stop_reason_has_a_16_reason() -> None:
    assert set(REASONS) == set(StopReason)
    assert set(REASONS.values()) <= {r.value for r in Reason}
