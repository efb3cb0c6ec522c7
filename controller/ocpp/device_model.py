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

from controller.config import Config
from controller.domain.types import Answer
from controller.storage import Store

log = logging.getLogger(__name__)

BOOLEAN, INTEGER, STRING, MEMBER_LIST = "boolean", "integer", "string", "MemberList"
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

    def __str__(self) -> str:
        return f"{self.component}.{self.variable}" + (f"[{self.instance}]" if self.instance else "")


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
        if self.data_type == MEMBER_LIST:
            members = split(value)
            if not members and not self.allow_empty:
                return "expected at least one member (an empty list cannot be sampled)"
            if self.max_items is not None and len(members) > self.max_items:
                return f"more than {self.max_items} members"
            unknown = [m for m in members if m not in self.values]
            if self.check is None and unknown:
                return f"{unknown[0]!r} is none of {','.join(self.values)}"
        return self.check(value) if self.check is not None else None

    def normal(self, value: str) -> str:
        """``value`` in its canonical spelling."""
        if self.data_type == BOOLEAN:
            return value.strip().lower()
        if self.data_type == MEMBER_LIST:
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

HEARTBEAT_INTERVAL = Ref(OCPP_COMM, "HeartbeatInterval")
BASIC_AUTH_PASSWORD = Ref("SecurityCtrlr", "BasicAuthPassword")
SECURITY_PROFILE = Ref("SecurityCtrlr", "SecurityProfile")
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
AUTH_CACHE_ENABLED = Ref(AUTH_CACHE, "Enabled")
LOCAL_LIST_ENABLED = Ref(LOCAL_LIST, "Enabled")
LOCAL_LIST_ENTRIES = Ref(LOCAL_LIST, "Entries")
LOCAL_LIST_ITEMS_PER_MESSAGE = Ref(LOCAL_LIST, "ItemsPerMessage")
TX_UPDATED_INTERVAL = Ref(SAMPLED, "TxUpdatedInterval")
TX_STARTED_MEASURANDS = Ref(SAMPLED, "TxStartedMeasurands")
TX_UPDATED_MEASURANDS = Ref(SAMPLED, "TxUpdatedMeasurands")
TX_ENDED_MEASURANDS = Ref(SAMPLED, "TxEndedMeasurands")
ALIGNED_INTERVAL = Ref(ALIGNED, "Interval")
ALIGNED_MEASURANDS = Ref(ALIGNED, "Measurands")
ALIGNED_TX_ENDED_MEASURANDS = Ref(ALIGNED, "TxEndedMeasurands")
GET_VARIABLES_ITEMS = Ref(DEVICE_DATA, "ItemsPerMessage", "GetVariables")
NON_EVSE_SPECIFIC_RESERVATION = Ref(RESERVATION, "NonEvseSpecific")
PHASE_ROTATION = Ref(INTERNAL, "ConnectorPhaseRotation")
NUMBER_OF_CONNECTORS = Ref(INTERNAL, "NumberOfConnectors")
SUPPORTED_FEATURE_PROFILES = Ref(INTERNAL, "SupportedFeatureProfiles")

PROFILES = "Core,LocalAuthListManagement,Reservation,RemoteTrigger"
LOCAL_LIST_MAX = 1000
SEND_LOCAL_LIST_MAX = 250
GET_VARIABLES_MAX = 50


def _password_problem(value: str) -> str | None:
    return None if 16 <= len(value) <= 40 else "expected 16-40 characters"


def standard_variables(config: Config) -> list[Variable]:
    """Every variable this station has, with defaults that suit a public charger or come from the config."""
    connectors = len(config.connector)

    def flag(ref: Ref, default: bool, mutability: str = READ_WRITE) -> Variable:
        return Variable(ref, BOOLEAN, "true" if default else "false", mutability)

    def number(ref: Ref, default: int, lo: int = 0, hi: int = 86400 * 7, mutability: str = READ_WRITE) -> Variable:
        return Variable(ref, INTEGER, str(default), mutability, lo, hi)

    def measurands(ref: Ref, default: str, allow_empty: bool) -> Variable:
        return Variable(ref, MEMBER_LIST, default, max_items=MEASURANDS_MAX, allow_empty=allow_empty,
                        check=measurand_problem, values=tuple(sorted(MEASURANDS)))

    def points(ref: Ref, default: str) -> Variable:
        return Variable(ref, MEMBER_LIST, default, allow_empty=False, values=TX_POINTS)

    password = config.ocpp.basic_auth_password
    profile = (2 if config.ocpp.csms_url.startswith("wss://") else 1) if password else 0

    return [
        Variable(BASIC_AUTH_PASSWORD, STRING, password, WRITE_ONLY, check=_password_problem),
        Variable(SECURITY_PROFILE, INTEGER, str(profile), READ_ONLY, 0, 3),
        number(HEARTBEAT_INTERVAL, config.ocpp.heartbeat_interval, lo=1),
        number(WEBSOCKET_PING_INTERVAL, 60, hi=3600),
        number(MESSAGE_ATTEMPTS, 3, lo=1, hi=100),
        number(MESSAGE_ATTEMPT_INTERVAL, 60, hi=3600),
        number(RESET_RETRIES, 3, hi=10),
        number(MINIMUM_STATUS_DURATION, 0, hi=3600),
        flag(UNLOCK_ON_EV_SIDE_DISCONNECT, True),
        number(EV_CONNECTION_TIMEOUT, 60, lo=1),
        flag(STOP_TX_ON_EV_SIDE_DISCONNECT, True),
        # A transaction is the charging session (1.6's meaning) unless the CSMS moves its edges.
        points(TX_START_POINT, "PowerPathClosed"),
        points(TX_STOP_POINT, "EVConnected,Authorized"),
        flag(STOP_TX_ON_INVALID_ID, True),
        number(MAX_ENERGY_ON_INVALID_ID, 0, hi=10_000_000),
        flag(AUTHORIZE_REMOTE_START, False),
        flag(LOCAL_AUTHORIZE_OFFLINE, True),
        flag(LOCAL_PRE_AUTHORIZE, False),
        flag(OFFLINE_TX_FOR_UNKNOWN_ID, False),
        flag(AUTH_CACHE_ENABLED, True),
        flag(LOCAL_LIST_ENABLED, True),
        Variable(LOCAL_LIST_ENTRIES, INTEGER, "0", READ_ONLY, max_items=LOCAL_LIST_MAX),
        number(LOCAL_LIST_ITEMS_PER_MESSAGE, SEND_LOCAL_LIST_MAX, mutability=READ_ONLY),
        number(TX_UPDATED_INTERVAL, config.ocpp.meter_value_sample_interval),
        # A DC car tells its state of charge; what the charger offers it is worth seeing beside what it takes.
        measurands(TX_UPDATED_MEASURANDS, "Energy.Active.Import.Register,Power.Active.Import,Current.Import,Voltage"
                   + (",SoC,Power.Offered" if any(c.dc for c in config.connector) else ""), allow_empty=False),
        measurands(TX_STARTED_MEASURANDS, "Energy.Active.Import.Register", allow_empty=True),
        measurands(TX_ENDED_MEASURANDS, "", allow_empty=True),
        number(ALIGNED_INTERVAL, 0),
        measurands(ALIGNED_MEASURANDS, "Energy.Active.Import.Register", allow_empty=False),
        measurands(ALIGNED_TX_ENDED_MEASURANDS, "", allow_empty=True),
        number(GET_VARIABLES_ITEMS, GET_VARIABLES_MAX, mutability=READ_ONLY),
        flag(NON_EVSE_SPECIFIC_RESERVATION, True, READ_ONLY),
        Variable(PHASE_ROTATION, STRING, ",".join(f"{i}.RST" for i in range(1, connectors + 1))),
        number(NUMBER_OF_CONNECTORS, connectors, mutability=READ_ONLY),
        Variable(SUPPORTED_FEATURE_PROFILES, STRING, PROFILES, READ_ONLY),
    ]


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

    def on_change(self, listener: Listener) -> None:
        """Call ``listener(ref, value)`` after every accepted change."""
        self._listeners.append(listener)

    def get(self, ref: Ref) -> str:
        """A variable's value as text."""
        return self._values[ref]

    def flag(self, ref: Ref) -> bool:
        """A boolean variable."""
        return self._values[ref] == "true"

    def number(self, ref: Ref) -> int:
        """An integer variable."""
        return int(self._values[ref])

    def items(self, ref: Ref) -> list[str]:
        """A list variable's members."""
        return split(self._values[ref])

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
        log.info("%s set to %s", ref, "(a new value)" if spec.mutability == WRITE_ONLY else repr(self._values[ref]))
        return Answer.ACCEPTED

    def set_runtime(self, ref: Ref, value: str) -> None:
        """A value the protocol itself sets (the heartbeat interval a BootNotification gives)."""
        self._apply(ref, value)

    def _apply(self, ref: Ref, value: str) -> None:
        self._store.put_variable(ref.component, ref.variable, ref.instance, value)  # saved first, then applied
        self._values[ref] = value
        for listener in list(self._listeners):
            listener(ref, value)
