"""How OCPP 1.6 spells the station's vocabulary: error codes, stop reasons, statuses and command answers."""

from __future__ import annotations

from ocpp.v16.enums import Action

from controller.domain.faults import Fault
from controller.domain.types import Answer, AuthStatus, IdTokenType, StopReason
from controller.ocpp.firmware_request import FwStatus
from controller.ocpp.framing import CODES_16, Rules

#: 1.6's frame rules: its actions, the ocpp package's 1.6 schemas, the 1.6 CALLERROR spellings.
RULES = Rules("1.6", "v16/schemas", {a.value for a in Action}, CODES_16, non_negative=frozenset({
    "connectorId", "reservationId", "transactionId", "listVersion", "duration", "retries", "retryInterval",
    "chargingProfileId", "stackLevel"}))

#: ChargePointErrorCode per fault; vendorErrorCode carries the fault's own name (1.6 has no code for most).
ERROR_CODES: dict[Fault, str] = {
    Fault.PILOT_FAULT: "OtherError",
    Fault.PILOT_UNREADABLE: "OtherError",
    Fault.DIODE_FAULT: "OtherError",
    Fault.VENTILATION_NOT_AVAILABLE: "OtherError",
    Fault.PROXIMITY_FAULT: "OtherError",
    Fault.CONTACTOR_WELDED: "PowerSwitchFailure",
    Fault.CONTACTOR_FAILED_TO_CLOSE: "PowerSwitchFailure",
    Fault.RCM_TRIP: "GroundFailure",
    Fault.RCM_SELFTEST_FAILED: "GroundFailure",
    Fault.LOCK_FAILURE: "ConnectorLockFailure",
    Fault.OVERCURRENT: "OverCurrentFailure",
    Fault.OVER_TEMPERATURE: "HighTemperature",
    Fault.METER_COMM_LOST: "PowerMeterFailure",
    Fault.READER_FAILURE: "ReaderFailure",
    Fault.EV_COMM_LOST: "EVCommunicationError",
    Fault.INSULATION_FAULT: "GroundFailure",
    Fault.INSULATION_WARNING: "GroundFailure",
    Fault.OVER_VOLTAGE: "OverVoltage",
    Fault.VOLTAGE_MISMATCH: "OtherError",
    Fault.POWER_STAGE_FAULT: "InternalError",
    Fault.EMERGENCY_STOP: "OtherError",
    Fault.CONNECTOR_LOST: "OtherError",
    Fault.INTERNAL_ERROR: "InternalError",
}

#: 1.6 Reason per stop reason: 2.0.1's finer reasons fold into the 1.6 value that covers them.
REASONS: dict[StopReason, str] = {
    StopReason.LOCAL: "Local",
    StopReason.REMOTE: "Remote",
    StopReason.EV_DISCONNECTED: "EVDisconnected",
    StopReason.EMERGENCY_STOP: "EmergencyStop",
    StopReason.DE_AUTHORIZED: "DeAuthorized",
    StopReason.HARD_RESET: "HardReset",
    StopReason.SOFT_RESET: "SoftReset",
    StopReason.IMMEDIATE_RESET: "HardReset",
    StopReason.REBOOT: "Reboot",
    StopReason.POWER_LOSS: "PowerLoss",
    StopReason.UNLOCK_COMMAND: "UnlockCommand",
    StopReason.GROUND_FAULT: "EmergencyStop",
    StopReason.OVERCURRENT_FAULT: "EmergencyStop",
    StopReason.ENERGY_LIMIT_REACHED: "Other",
    StopReason.TIME_LIMIT_REACHED: "Other",
    StopReason.SOC_LIMIT_REACHED: "Other",
    StopReason.LOCAL_OUT_OF_CREDIT: "Local",
    StopReason.MASTER_PASS: "Local",
    StopReason.POWER_QUALITY: "Other",
    StopReason.STOPPED_BY_EV: "EVDisconnected",
    StopReason.TIMEOUT: "Other",
    StopReason.OTHER: "Other",
}

#: AuthorizationStatus values 1.6 knows; the rest arrive only from 2.0.1 and fold into Invalid.
AUTH_STATUSES = {AuthStatus.ACCEPTED: "Accepted", AuthStatus.BLOCKED: "Blocked", AuthStatus.EXPIRED: "Expired",
                 AuthStatus.INVALID: "Invalid", AuthStatus.CONCURRENT_TX: "ConcurrentTx"}


def auth_status(value: str | None) -> AuthStatus:
    """A 1.6 AuthorizationStatus as the station's own (anything unknown is Invalid)."""
    return next((k for k, v in AUTH_STATUSES.items() if v == value), AuthStatus.INVALID)


#: 1.6 carries an idTag without a type: cards read by the station, identifiers from the CSMS.
CSMS_TOKEN = IdTokenType.CENTRAL

AVAILABILITY = {Answer.ACCEPTED: "Accepted", Answer.SCHEDULED: "Scheduled", Answer.REJECTED: "Rejected"}
UNLOCK = {Answer.ACCEPTED: "Unlocked", Answer.FAILED: "UnlockFailed", Answer.NOT_SUPPORTED: "NotSupported"}
RESERVATION = {Answer.ACCEPTED: "Accepted", Answer.FAULTED: "Faulted", Answer.OCCUPIED: "Occupied",
               Answer.REJECTED: "Rejected", Answer.UNAVAILABLE: "Unavailable"}
CONFIGURATION = {Answer.ACCEPTED: "Accepted", Answer.REJECTED: "Rejected", Answer.NOT_SUPPORTED: "NotSupported"}


def spell(table: dict[Answer, str], answer: Answer, default: str = "Rejected") -> str:
    """The 1.6 status for a command's answer."""
    return table.get(answer, default)

#: 1.6 FirmwareStatusNotification's words for an update's states (a refused signature is an InstallationFailed;
#: the states it has no word for are not told).
PLAIN_FIRMWARE = {FwStatus.IDLE: "Idle", FwStatus.DOWNLOADING: "Downloading", FwStatus.DOWNLOADED: "Downloaded",
                  FwStatus.DOWNLOAD_FAILED: "DownloadFailed", FwStatus.INVALID_SIGNATURE: "InstallationFailed",
                  FwStatus.INSTALLING: "Installing", FwStatus.INSTALLED: "Installed",
                  FwStatus.INSTALLATION_FAILED: "InstallationFailed",
                  FwStatus.INSTALL_VERIFICATION_FAILED: "InstallationFailed"}
#: What a trigger says in the states without a word: the last one told.
PLAIN_SO_FAR = {FwStatus.SIGNATURE_VERIFIED: "Downloaded", FwStatus.INSTALL_SCHEDULED: "Downloaded",
                FwStatus.INSTALL_REBOOTING: "Installing"}
