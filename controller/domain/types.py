"""The station's own vocabulary: statuses, reasons, tokens, decisions, limits and answers, spelt by no protocol.

OCPP 1.6 and 2.0.1 both map from these (``controller/ocpp/v16/codes.py`` for 1.6): the enums are supersets of
what either version can say, so an adapter only ever translates, never loses a distinction.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime


class EvseStatus(enum.StrEnum):
    """What one EVSE is doing, as an operator sees it (1.6 reports these as they are)."""

    AVAILABLE = "Available"
    PREPARING = "Preparing"
    CHARGING = "Charging"
    SUSPENDED_EV = "SuspendedEV"
    SUSPENDED_EVSE = "SuspendedEVSE"
    FINISHING = "Finishing"
    RESERVED = "Reserved"
    UNAVAILABLE = "Unavailable"
    FAULTED = "Faulted"


class ChargingState(enum.StrEnum):
    """Where energy stands within a transaction (2.0.1 ChargingStateEnumType)."""

    CHARGING = "Charging"
    EV_CONNECTED = "EVConnected"
    SUSPENDED_EV = "SuspendedEV"
    SUSPENDED_EVSE = "SuspendedEVSE"
    IDLE = "Idle"


class StopReason(enum.StrEnum):
    """Why a transaction ended: every reason 1.6 (Reason) or 2.0.1 (ReasonEnumType) knows."""

    LOCAL = "Local"
    REMOTE = "Remote"
    EV_DISCONNECTED = "EVDisconnected"
    EMERGENCY_STOP = "EmergencyStop"
    DE_AUTHORIZED = "DeAuthorized"
    HARD_RESET = "HardReset"
    SOFT_RESET = "SoftReset"
    IMMEDIATE_RESET = "ImmediateReset"
    REBOOT = "Reboot"
    POWER_LOSS = "PowerLoss"
    UNLOCK_COMMAND = "UnlockCommand"
    GROUND_FAULT = "GroundFault"
    OVERCURRENT_FAULT = "OvercurrentFault"
    ENERGY_LIMIT_REACHED = "EnergyLimitReached"
    TIME_LIMIT_REACHED = "TimeLimitReached"
    SOC_LIMIT_REACHED = "SOCLimitReached"
    LOCAL_OUT_OF_CREDIT = "LocalOutOfCredit"
    MASTER_PASS = "MasterPass"
    POWER_QUALITY = "PowerQuality"
    STOPPED_BY_EV = "StoppedByEV"
    TIMEOUT = "Timeout"
    OTHER = "Other"


class TriggerReason(enum.StrEnum):
    """What made a transaction start, change or end (2.0.1 TriggerReasonEnumType; 1.6 sends none)."""

    AUTHORIZED = "Authorized"
    CABLE_PLUGGED_IN = "CablePluggedIn"
    CHARGING_RATE_CHANGED = "ChargingRateChanged"
    CHARGING_STATE_CHANGED = "ChargingStateChanged"
    DEAUTHORIZED = "Deauthorized"
    ENERGY_LIMIT_REACHED = "EnergyLimitReached"
    EV_COMMUNICATION_LOST = "EVCommunicationLost"
    EV_CONNECT_TIMEOUT = "EVConnectTimeout"
    METER_VALUE_CLOCK = "MeterValueClock"
    METER_VALUE_PERIODIC = "MeterValuePeriodic"
    TIME_LIMIT_REACHED = "TimeLimitReached"
    TRIGGER = "Trigger"
    UNLOCK_COMMAND = "UnlockCommand"
    STOP_AUTHORIZED = "StopAuthorized"
    EV_DEPARTED = "EVDeparted"
    EV_DETECTED = "EVDetected"
    REMOTE_STOP = "RemoteStop"
    REMOTE_START = "RemoteStart"
    ABNORMAL_CONDITION = "AbnormalCondition"
    SIGNED_DATA_RECEIVED = "SignedDataReceived"
    RESET_COMMAND = "ResetCommand"


class IdTokenType(enum.StrEnum):
    """How an identifier was presented (2.0.1 IdTokenEnumType)."""

    CENTRAL = "Central"
    EMAID = "eMAID"
    ISO14443 = "ISO14443"
    ISO15693 = "ISO15693"
    KEY_CODE = "KeyCode"
    LOCAL = "Local"
    MAC_ADDRESS = "MacAddress"
    NO_AUTHORIZATION = "NoAuthorization"


@dataclass(frozen=True)
class IdToken:
    """An identifier a driver or the CSMS presents: a card UID, a remote start's token, a group."""

    value: str
    type: IdTokenType = IdTokenType.ISO14443

    def same_as(self, other: IdToken | str | None) -> bool:
        """Identifiers compare case-insensitively (1.6 CiString20Type; UIDs are hex)."""
        if other is None:
            return False
        value = other.value if isinstance(other, IdToken) else other
        return self.value.casefold() == value.casefold()


class AuthStatus(enum.StrEnum):
    """The answer about an identifier (1.6 AuthorizationStatus plus 2.0.1 AuthorizationStatusEnumType)."""

    ACCEPTED = "Accepted"
    BLOCKED = "Blocked"
    EXPIRED = "Expired"
    INVALID = "Invalid"
    CONCURRENT_TX = "ConcurrentTx"
    NO_CREDIT = "NoCredit"
    NOT_ALLOWED_TYPE_EVSE = "NotAllowedTypeEVSE"
    NOT_AT_THIS_LOCATION = "NotAtThisLocation"
    NOT_AT_THIS_TIME = "NotAtThisTime"
    UNKNOWN = "Unknown"


class AuthSource(enum.StrEnum):
    """Who decided: the CSMS online, the local list, the cache, or an offline rule."""

    CSMS = "CSMS"
    LOCAL_LIST = "LocalList"
    CACHE = "Cache"
    OFFLINE_RULE = "OfflineRule"
    NONE = "None"


@dataclass(frozen=True)
class AuthDecision:
    """May this identifier charge, who said so, until when, and which group it belongs to."""

    status: AuthStatus
    source: AuthSource = AuthSource.CSMS
    group: IdToken | None = None
    expiry: datetime | None = None

    @property
    def accepted(self) -> bool:
        """True when the identifier may charge."""
        return self.status == AuthStatus.ACCEPTED


@dataclass(frozen=True)
class PowerLimit:
    """How much an EVSE may deliver: amps per phase, watts in all, phases used (None: no limit of that kind)."""

    amps: float | None = None
    watts: float | None = None
    phases: int | None = None

    def combine(self, other: PowerLimit) -> PowerLimit:
        """The smaller of two limits in every dimension."""

        def low(a: float | None, b: float | None) -> float | None:
            return b if a is None else a if b is None else min(a, b)

        phases = low(self.phases, other.phases)
        return PowerLimit(low(self.amps, other.amps), low(self.watts, other.watts),
                          None if phases is None else int(phases))

    def amps_at(self, volts: float, phases: int) -> float | None:
        """The current this limit allows per phase at ``volts`` on ``phases`` phases (None: unlimited)."""
        used = min(phases, self.phases) if self.phases else phases
        by_watts = self.watts / (volts * used) if self.watts is not None else None
        if self.amps is None:
            return by_watts
        return self.amps if by_watts is None else min(self.amps, by_watts)


class Answer(enum.Enum):
    """The result of a command from the CSMS (or the bench), before any protocol spells it."""

    ACCEPTED = "accepted"
    REJECTED = "rejected"
    SCHEDULED = "scheduled"
    NOT_SUPPORTED = "not supported"
    FAILED = "failed"
    OCCUPIED = "occupied"
    FAULTED = "faulted"
    UNAVAILABLE = "unavailable"
    VERSION_MISMATCH = "version mismatch"
    #: Accepted, and it applies from the next start.
    REBOOT_REQUIRED = "reboot required"
