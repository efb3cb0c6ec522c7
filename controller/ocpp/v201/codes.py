"""How OCPP 2.0.1 spells the station's vocabulary: statuses, reasons, identifier types and command answers."""

from __future__ import annotations

from ocpp.v201.enums import Action

from controller.domain.faults import Fault
from controller.domain.types import Answer, AuthStatus, EvseStatus, IdTokenType, StopReason
from controller.ocpp.framing import CODES_201, Rules

#: 2.0.1's frame rules: its actions, the ocpp package's 2.0.1 schemas (``...Request.json``), its CALLERROR codes.
RULES = Rules("2.0.1", "v201/schemas", {a.value for a in Action}, CODES_201, request_suffix="Request",
              non_negative=frozenset({"evseId", "connectorId", "id", "requestId", "remoteStartId", "seqNo",
                                      "versionNumber", "reservationId"}))

#: ConnectorStatusEnumType per station status: 2.0.1 folds the session states into Occupied.
CONNECTOR_STATUS: dict[EvseStatus, str] = {
    EvseStatus.AVAILABLE: "Available",
    EvseStatus.PREPARING: "Occupied",
    EvseStatus.CHARGING: "Occupied",
    EvseStatus.SUSPENDED_EV: "Occupied",
    EvseStatus.SUSPENDED_EVSE: "Occupied",
    EvseStatus.FINISHING: "Occupied",
    EvseStatus.RESERVED: "Reserved",
    EvseStatus.UNAVAILABLE: "Unavailable",
    EvseStatus.FAULTED: "Faulted",
}

#: ReasonEnumType (TransactionEvent stoppedReason) per stop reason: the domain's are 2.0.1's, but for the 1.6
#: ones 2.0.1 spells otherwise (a reset of either kind is a reboot; UnlockConnector ends it as Remote).
STOPPED_REASONS: dict[StopReason, str] = {
    **{reason: reason.value for reason in StopReason},
    StopReason.HARD_RESET: "ImmediateReset", StopReason.SOFT_RESET: "Reboot", StopReason.UNLOCK_COMMAND: "Remote",
}

#: NotifyEvent's component and variable per fault (the device model's names for the part that failed).
FAULT_COMPONENTS: dict[Fault, tuple[str, str]] = {
    Fault.PILOT_FAULT: ("ControlPilot", "Problem"),
    Fault.PILOT_UNREADABLE: ("ControlPilot", "Problem"),
    Fault.DIODE_FAULT: ("ControlPilot", "Problem"),
    Fault.VENTILATION_NOT_AVAILABLE: ("ControlPilot", "Problem"),
    Fault.PROXIMITY_FAULT: ("ConnectorPlugRetentionLock", "Problem"),
    Fault.CONTACTOR_WELDED: ("PowerContactor", "Problem"),
    Fault.CONTACTOR_FAILED_TO_CLOSE: ("PowerContactor", "Problem"),
    Fault.RCM_TRIP: ("RCD", "Tripped"),
    Fault.RCM_SELFTEST_FAILED: ("RCD", "Problem"),
    Fault.LOCK_FAILURE: ("ConnectorPlugRetentionLock", "Problem"),
    Fault.OVERCURRENT: ("EVSE", "Problem"),
    Fault.OVER_TEMPERATURE: ("EVSE", "Problem"),
    Fault.METER_COMM_LOST: ("FiscalMetering", "Problem"),
    Fault.READER_FAILURE: ("TokenReader", "Problem"),
    Fault.EV_COMM_LOST: ("EVSE", "Problem"),
    Fault.INSULATION_FAULT: ("ElectricalFeed", "Problem"),
    Fault.INSULATION_WARNING: ("ElectricalFeed", "Problem"),
    Fault.OVER_VOLTAGE: ("EVSE", "Problem"),
    Fault.VOLTAGE_MISMATCH: ("EVSE", "Problem"),
    Fault.POWER_STAGE_FAULT: ("ElectricalFeed", "Problem"),
    Fault.EMERGENCY_STOP: ("EmergencyStopSensor", "Active"),
    Fault.CONNECTOR_LOST: ("Connector", "Problem"),
    Fault.INTERNAL_ERROR: ("Controller", "Problem"),
}


def auth_status(value: str | None) -> AuthStatus:
    """A 2.0.1 AuthorizationStatusEnumType as the station's own (anything unknown is Invalid)."""
    return next((s for s in AuthStatus if s.value == value), AuthStatus.INVALID)


def token_type(value: str | None) -> IdTokenType:
    """A 2.0.1 IdTokenEnumType (anything unknown is Central: the CSMS vouches for it)."""
    return next((t for t in IdTokenType if t.value == value), IdTokenType.CENTRAL)


AVAILABILITY = {Answer.ACCEPTED: "Accepted", Answer.SCHEDULED: "Scheduled", Answer.REJECTED: "Rejected"}
# 2.0.1 has no NotSupported: an unknown connector is answered before the station is asked, so NOT_SUPPORTED here
# is a connector without a lock, whose cable nothing holds (as with no cable, TC_F_07: Unlocked).
UNLOCK = {Answer.ACCEPTED: "Unlocked", Answer.FAILED: "UnlockFailed", Answer.REJECTED: "OngoingAuthorizedTransaction",
          Answer.NOT_SUPPORTED: "Unlocked"}
RESERVATION = {Answer.ACCEPTED: "Accepted", Answer.FAULTED: "Faulted", Answer.OCCUPIED: "Occupied",
               Answer.REJECTED: "Rejected", Answer.UNAVAILABLE: "Unavailable"}
SET_VARIABLE = {Answer.ACCEPTED: "Accepted", Answer.REJECTED: "Rejected", Answer.NOT_SUPPORTED: "UnknownVariable",
                Answer.REBOOT_REQUIRED: "RebootRequired"}


def spell(table: dict[Answer, str], answer: Answer, default: str = "Rejected") -> str:
    """The 2.0.1 status for a command's answer."""
    return table.get(answer, default)
