"""The device model: every setting the CSMS may read or change, as components and variables (2.0.1's model).

1.6's configuration keys are aliases onto these variables (``controller/ocpp/v16/keys.py``), the way libocpp maps
them, so both versions read and write one store. Values are strings in the OCPP formats ("true", "60",
"Energy.Active.Import.Register,Voltage"); each variable says its type, limits and mutability, and a value is
checked against them, then persisted, and only then applied, so a change that cannot be saved never half
happens. Code that a variable steers reads it here each time it acts: a change applies at once.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from controller.domain.types import Answer
from controller.storage import Store

log = logging.getLogger(__name__)

BOOLEAN, INTEGER, STRING, MEMBER_LIST = "boolean", "integer", "string", "MemberList"
DATE_TIME, OPTION_LIST, SEQUENCE_LIST, DECIMAL = "dateTime", "OptionList", "SequenceList", "decimal"
READ_ONLY, READ_WRITE, WRITE_ONLY = "ReadOnly", "ReadWrite", "WriteOnly"
_INTEGER = re.compile(r"-?[0-9]{1,12}")  # ASCII digits only: no fullwidth digits, no "1_0"

MEASURANDS = frozenset({"Energy.Active.Import.Register", "Power.Active.Import", "Current.Import", "Voltage",
                        "Power.Offered", "SoC"})
PHASES = frozenset({"L1", "L2", "L3", "L1-N", "L2-N", "L3-N"})
MEASURANDS_MAX = 8
#: The TxStartPoint / TxStopPoint members this station can detect. ParkingBayOccupancy needs a bay sensor and
#: DataSigned a signing meter (neither is here); EnergyTransfer is not offered: a pause would end the transaction.
TX_POINTS = ("EVConnected", "Authorized", "PowerPathClosed")


@dataclass(frozen=True)
class Ref:
    """Where a variable lives: component, variable and (optional) variable instance."""

    component: str
    variable: str
    instance: str = ""
    #: The EVSE of an EVSE or Connector component (0: a component of the station).
    evse: int = 0

    def __str__(self) -> str:
        where = f"{self.component}#{self.evse}" if self.evse else self.component
        return f"{where}.{self.variable}" + (f"[{self.instance}]" if self.instance else "")


@dataclass(frozen=True)
class Variable:
    """One variable: its type, default, mutability and limits."""

    ref: Ref
    data_type: str
    default: str
    mutability: str = READ_WRITE
    minimum: int = 0
    maximum: int = 86400 * 7
    #: For lists: at most this many members; None for other types.
    max_items: int | None = None
    #: For lists: whether an empty list can work (a sample of no measurands cannot).
    allow_empty: bool = True
    #: For lists: the members it may have (its valuesList in a report).
    values: tuple[str, ...] = ()
    #: Extra rule for a value (returns what is wrong, or None).
    check: Callable[[str], str | None] | None = None
    #: For a read-only value that is the station's state of the moment (the clock, a status): how to read it.
    live: Callable[[], str] | None = None
    #: A change applies from the next start (SetVariables answers RebootRequired).
    reboot: bool = False

    def problem(self, value: str) -> str | None:
        """What is wrong with ``value`` for this variable, or None."""
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return "not valid Unicode"
        if self.data_type == BOOLEAN:
            return None if value.strip().lower() in ("true", "false") else "expected true or false"
        if self.data_type == INTEGER:
            if not _INTEGER.fullmatch(value.strip()):
                return "expected an integer"
            number = int(value.strip())
            return None if self.minimum <= number <= self.maximum else f"expected {self.minimum}-{self.maximum}"
        if self.data_type == DECIMAL:
            try:
                decimal = float(value.strip())
            except ValueError:
                return "expected a decimal number"
            return None if self.minimum <= decimal <= self.maximum else f"expected {self.minimum}-{self.maximum}"
        if self.data_type == MEMBER_LIST:
            members = split(value)
            if not members and not self.allow_empty:
                return "expected at least one member (an empty list cannot be sampled)"
            if self.max_items is not None and len(members) > self.max_items:
                return f"more than {self.max_items} members"
            unknown = [m for m in members if m not in self.values]
            if self.check is None and unknown:
                return f"{unknown[0]!r} is none of {','.join(self.values)}"
        if self.data_type == SEQUENCE_LIST:
            members = split(value)
            unknown = [m for m in members if m not in self.values]
            if not members or unknown or len(set(members)) != len(members):
                return f"expected some of {','.join(self.values)} in order, each once"
        return self.check(value) if self.check is not None else None

    def normal(self, value: str) -> str:
        """``value`` in its canonical spelling."""
        if self.data_type == BOOLEAN:
            return value.strip().lower()
        if self.data_type in (MEMBER_LIST, SEQUENCE_LIST):
            return ",".join(split(value))
        return value.strip()


def split(value: str) -> list[str]:
    """A comma-separated list, empty members dropped."""
    return [v.strip() for v in value.split(",") if v.strip()]


def measurand_problem(value: str) -> str | None:
    """Measurands this station samples, each with an optional phase (``Current.Import.L2``)."""
    for item in split(value):
        measurand, _, phase = item.partition(".L")
        name = item if item in MEASURANDS else measurand
        if name not in MEASURANDS or (phase and f"L{phase}" not in PHASES):
            return f"unknown measurand {item!r}"
    return None


OCPP_COMM, TX, AUTH, AUTH_CACHE, LOCAL_LIST = "OCPPCommCtrlr", "TxCtrlr", "AuthCtrlr", "AuthCacheCtrlr", \
    "LocalAuthListCtrlr"
SAMPLED, ALIGNED, DEVICE_DATA, RESERVATION, INTERNAL = "SampledDataCtrlr", "AlignedDataCtrlr", "DeviceDataCtrlr", \
    "ReservationCtrlr", "InternalCtrlr"

CLOCK, SECURITY, SMART = "ClockCtrlr", "SecurityCtrlr", "SmartChargingCtrlr"

HEARTBEAT_INTERVAL = Ref(OCPP_COMM, "HeartbeatInterval")
FILE_TRANSFER_PROTOCOLS = Ref(OCPP_COMM, "FileTransferProtocols")
MESSAGE_TIMEOUT = Ref(OCPP_COMM, "MessageTimeout", "Default")
NETWORK_PRIORITY = Ref(OCPP_COMM, "NetworkConfigurationPriority")
NETWORK_PROFILE_ATTEMPTS = Ref(OCPP_COMM, "NetworkProfileConnectionAttempts")
OFFLINE_THRESHOLD = Ref(OCPP_COMM, "OfflineThreshold")
RETRY_RANDOM_RANGE = Ref(OCPP_COMM, "RetryBackOffRandomRange")
RETRY_REPEAT_TIMES = Ref(OCPP_COMM, "RetryBackOffRepeatTimes")
RETRY_WAIT_MINIMUM = Ref(OCPP_COMM, "RetryBackOffWaitMinimum")
DATE_TIME_NOW = Ref(CLOCK, "DateTime")
TIME_SOURCE = Ref(CLOCK, "TimeSource")
IDENTITY = Ref(SECURITY, "Identity")
ORGANIZATION_NAME = Ref(SECURITY, "OrganizationName")
CERTIFICATE_ENTRIES = Ref(SECURITY, "CertificateEntries")
BASIC_AUTH_PASSWORD = Ref(SECURITY, "BasicAuthPassword")
SECURITY_PROFILE = Ref(SECURITY, "SecurityProfile")
MAX_CERTIFICATE_CHAIN_SIZE = Ref(SECURITY, "MaxCertificateChainSize")
ADDITIONAL_ROOT_CHECK = Ref(SECURITY, "AdditionalRootCertificateCheck")
WEBSOCKET_PING_INTERVAL = Ref(OCPP_COMM, "WebSocketPingInterval")
MESSAGE_ATTEMPTS = Ref(OCPP_COMM, "MessageAttempts", "TransactionEvent")
MESSAGE_ATTEMPT_INTERVAL = Ref(OCPP_COMM, "MessageAttemptInterval", "TransactionEvent")
RESET_RETRIES = Ref(OCPP_COMM, "ResetRetries")
MINIMUM_STATUS_DURATION = Ref(OCPP_COMM, "MinimumStatusDuration")
UNLOCK_ON_EV_SIDE_DISCONNECT = Ref(OCPP_COMM, "UnlockOnEVSideDisconnect")
EV_CONNECTION_TIMEOUT = Ref(TX, "EVConnectionTimeOut")
STOP_TX_ON_EV_SIDE_DISCONNECT = Ref(TX, "StopTxOnEVSideDisconnect")
TX_START_POINT = Ref(TX, "TxStartPoint")
TX_STOP_POINT = Ref(TX, "TxStopPoint")
STOP_TX_ON_INVALID_ID = Ref(TX, "StopTxOnInvalidId")
MAX_ENERGY_ON_INVALID_ID = Ref(TX, "MaxEnergyOnInvalidId")
AUTHORIZE_REMOTE_START = Ref(AUTH, "AuthorizeRemoteStart")
LOCAL_AUTHORIZE_OFFLINE = Ref(AUTH, "LocalAuthorizeOffline")
LOCAL_PRE_AUTHORIZE = Ref(AUTH, "LocalPreAuthorize")
OFFLINE_TX_FOR_UNKNOWN_ID = Ref(AUTH, "OfflineTxForUnknownIdEnabled")
MASTER_PASS_GROUP_ID = Ref(AUTH, "MasterPassGroupId")
AUTH_CACHE_ENABLED = Ref(AUTH_CACHE, "Enabled")
LOCAL_LIST_ENABLED = Ref(LOCAL_LIST, "Enabled")
LOCAL_LIST_ENTRIES = Ref(LOCAL_LIST, "Entries")
LOCAL_LIST_ITEMS_PER_MESSAGE = Ref(LOCAL_LIST, "ItemsPerMessage")
TX_UPDATED_INTERVAL = Ref(SAMPLED, "TxUpdatedInterval")
TX_STARTED_MEASURANDS = Ref(SAMPLED, "TxStartedMeasurands")
TX_UPDATED_MEASURANDS = Ref(SAMPLED, "TxUpdatedMeasurands")
TX_ENDED_MEASURANDS = Ref(SAMPLED, "TxEndedMeasurands")
TX_ENDED_INTERVAL = Ref(SAMPLED, "TxEndedInterval")
ALIGNED_INTERVAL = Ref(ALIGNED, "Interval")
ALIGNED_MEASURANDS = Ref(ALIGNED, "Measurands")
ALIGNED_TX_ENDED_MEASURANDS = Ref(ALIGNED, "TxEndedMeasurands")
ALIGNED_TX_ENDED_INTERVAL = Ref(ALIGNED, "TxEndedInterval")
GET_VARIABLES_ITEMS = Ref(DEVICE_DATA, "ItemsPerMessage", "GetVariables")
GET_VARIABLES_BYTES = Ref(DEVICE_DATA, "BytesPerMessage", "GetVariables")
SET_VARIABLES_ITEMS = Ref(DEVICE_DATA, "ItemsPerMessage", "SetVariables")
SET_VARIABLES_BYTES = Ref(DEVICE_DATA, "BytesPerMessage", "SetVariables")
GET_REPORT_ITEMS = Ref(DEVICE_DATA, "ItemsPerMessage", "GetReport")
GET_REPORT_BYTES = Ref(DEVICE_DATA, "BytesPerMessage", "GetReport")
NON_EVSE_SPECIFIC_RESERVATION = Ref(RESERVATION, "NonEvseSpecific")
PHASE_ROTATION = Ref(INTERNAL, "ConnectorPhaseRotation")
NUMBER_OF_CONNECTORS = Ref(INTERNAL, "NumberOfConnectors")
SUPPORTED_FEATURE_PROFILES = Ref(INTERNAL, "SupportedFeatureProfiles")
SMART_ENABLED = Ref(SMART, "Enabled")
SMART_AVAILABLE = Ref(SMART, "Available")
SMART_ENTRIES = Ref(SMART, "Entries", "ChargingProfiles")
LIMIT_CHANGE_SIGNIFICANCE = Ref(SMART, "LimitChangeSignificance")
PERIODS_PER_SCHEDULE = Ref(SMART, "PeriodsPerSchedule")
PROFILE_STACK_LEVEL = Ref(SMART, "ProfileStackLevel")
RATE_UNIT = Ref(SMART, "RateUnit")
PHASES_3TO1 = Ref(SMART, "Phases3to1")
AC_PHASE_SWITCHING = Ref(SMART, "ACPhaseSwitchingSupported")

PROFILES = "Core,FirmwareManagement,LocalAuthListManagement,Reservation,RemoteTrigger,SmartCharging"
LOCAL_LIST_MAX = 1000
SEND_LOCAL_LIST_MAX = 250
GET_VARIABLES_MAX = 50
#: The most a GetVariables or SetVariables request may carry, in bytes of its JSON frame.
BYTES_PER_MESSAGE = 65536


def component_ref(component: str, variable: str, evse: int) -> Ref:
    """A variable of an EVSE's component (``EVSE``, ``Connector``) or, with EVSE 0, of the station's."""
    return Ref(component, variable, evse=evse)


Listener = Callable[[Ref, str], None]


class DeviceModel:
    """The station's variables: typed, persisted, read live."""

    def __init__(self, store: Store, variables: Iterable[Variable]) -> None:
        self._store = store
        self.variables = {v.ref: v for v in variables}
        self._values = {ref: v.default for ref, v in self.variables.items()}
        for (component, variable, instance), value in store.variables().items():
            ref = Ref(component, variable, instance)
            spec = self.variables.get(ref)
            if spec is not None and spec.mutability != READ_ONLY and spec.problem(value) is None:
                self._values[ref] = spec.normal(value)
        self._listeners: list[Listener] = []
        self._live: dict[Ref, Callable[[], str]] = {}

    def provide(self, ref: Ref, reader: Callable[[], str]) -> None:
        """Read a variable from the station's state from now on (a value only known once the core runs)."""
        self._live[ref] = reader

    def on_change(self, listener: Listener) -> None:
        """Call ``listener(ref, value)`` after every accepted change."""
        self._listeners.append(listener)

    def get(self, ref: Ref) -> str:
        """A variable's value as text."""
        live = self._live.get(ref) or self.variables[ref].live
        return live() if live is not None else self._values[ref]

    def flag(self, ref: Ref) -> bool:
        """A boolean variable."""
        return self.get(ref) == "true"

    def number(self, ref: Ref) -> int:
        """An integer variable."""
        return int(self.get(ref))

    def items(self, ref: Ref) -> list[str]:
        """A list variable's members."""
        return split(self.get(ref))

    def set(self, ref: Ref, value: str) -> Answer:
        """A change from the CSMS: ACCEPTED, REJECTED (read-only, or a value that cannot work) or NOT_SUPPORTED."""
        spec = self.variables.get(ref)
        if spec is None:
            return Answer.NOT_SUPPORTED
        if spec.mutability == READ_ONLY:
            log.info("change of %s refused: read-only", ref)
            return Answer.REJECTED
        problem = spec.problem(value)
        if problem is not None:
            log.info("change of %s to %s refused: %s", ref, "(a new value)" if spec.mutability == WRITE_ONLY else
                     repr(value[:60]), problem)
            return Answer.REJECTED
        self._apply(ref, spec.normal(value))
        log.info("%s set to %s%s", ref, "(a new value)" if spec.mutability == WRITE_ONLY else repr(self._values[ref]),
                 "; it applies from the next start" if spec.reboot else "")
        return Answer.REBOOT_REQUIRED if spec.reboot else Answer.ACCEPTED

    def set_runtime(self, ref: Ref, value: str) -> None:
        """A value the protocol itself sets (the heartbeat interval a BootNotification gives)."""
        self._apply(ref, value)

    def _apply(self, ref: Ref, value: str) -> None:
        self._store.put_variable(ref.component, ref.variable, ref.instance, value)  # saved first, then applied
        self._values[ref] = value
        for listener in list(self._listeners):
            listener(ref, value)
