"""OCPP 1.6 configuration keys: typed, persisted, read-only ones refused.

Defaults suit a public charger (authorisation cache on, LocalAuthorizeOffline
on, MeterValueSampleInterval from the config file, 60 s by default). Values
the CSMS changes are persisted in the store and survive restarts. The code
that a key steers reads it through :class:`ConfigurationKeys` each time it
acts, so a change takes effect at once and no key needs RebootRequired.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from controller.config import Config
from controller.storage import Store

log = logging.getLogger(__name__)

MEASURANDS = frozenset({
    "Energy.Active.Import.Register", "Power.Active.Import", "Current.Import", "Voltage",
})
PHASES = frozenset({"L1", "L2", "L3", "L1-N", "L2-N", "L3-N"})
PROFILES = "Core,LocalAuthListManagement,Reservation,RemoteTrigger"
MAX_GET_KEYS = 50
LOCAL_LIST_MAX = 1000
SEND_LOCAL_LIST_MAX = 250
MEASURAND_LIST_MAX = 8


@dataclass(frozen=True)
class KeySpec:
    """One key: its type, access, default and limits."""

    name: str
    kind: str  # "bool", "int" or "csl" (comma-separated list)
    default: str
    readonly: bool = False
    minimum: int = 0
    maximum: int = 86400 * 7


def _measurand_problem(value: str) -> str | None:
    for item in filter(None, (v.strip() for v in value.split(","))):
        measurand, _, phase = item.partition(".L")
        name = item if item in MEASURANDS else measurand
        if name not in MEASURANDS or (phase and f"L{phase}" not in PHASES):
            return f"unknown measurand {item!r}"
    if len(value.split(",")) > MEASURAND_LIST_MAX:
        return f"more than {MEASURAND_LIST_MAX} measurands"
    return None


_MEASURAND_KEYS = {"MeterValuesSampledData", "MeterValuesAlignedData", "StopTxnSampledData", "StopTxnAlignedData"}


def core_keys(config: Config) -> list[KeySpec]:
    """Every key this station supports, with defaults from the config file where it has them."""
    connectors = len(config.connector)
    return [
        KeySpec("AllowOfflineTxForUnknownId", "bool", "false"),
        KeySpec("AuthorizationCacheEnabled", "bool", "true"),
        KeySpec("AuthorizeRemoteTxRequests", "bool", "false"),
        KeySpec("ClockAlignedDataInterval", "int", "0"),
        KeySpec("ConnectionTimeOut", "int", "60", minimum=1),
        KeySpec("ConnectorPhaseRotation", "csl", ",".join(f"{i}.RST" for i in range(1, connectors + 1))),
        KeySpec("GetConfigurationMaxKeys", "int", str(MAX_GET_KEYS), readonly=True),
        KeySpec("HeartbeatInterval", "int", str(config.ocpp.heartbeat_interval), minimum=1),
        KeySpec("LocalAuthorizeOffline", "bool", "true"),
        KeySpec("LocalPreAuthorize", "bool", "false"),
        KeySpec("MaxEnergyOnInvalidId", "int", "0", maximum=10_000_000),
        KeySpec("MeterValuesAlignedData", "csl", "Energy.Active.Import.Register"),
        KeySpec("MeterValuesAlignedDataMaxLength", "int", str(MEASURAND_LIST_MAX), readonly=True),
        KeySpec("MeterValuesSampledData", "csl",
                "Energy.Active.Import.Register,Power.Active.Import,Current.Import,Voltage"),
        KeySpec("MeterValuesSampledDataMaxLength", "int", str(MEASURAND_LIST_MAX), readonly=True),
        KeySpec("MeterValueSampleInterval", "int", str(config.ocpp.meter_value_sample_interval)),
        KeySpec("MinimumStatusDuration", "int", "0", maximum=3600),
        KeySpec("NumberOfConnectors", "int", str(connectors), readonly=True),
        KeySpec("ResetRetries", "int", "3", maximum=10),
        KeySpec("StopTransactionOnEVSideDisconnect", "bool", "true"),
        KeySpec("StopTransactionOnInvalidId", "bool", "true"),
        KeySpec("StopTxnAlignedData", "csl", ""),
        KeySpec("StopTxnAlignedDataMaxLength", "int", str(MEASURAND_LIST_MAX), readonly=True),
        KeySpec("StopTxnSampledData", "csl", ""),
        KeySpec("StopTxnSampledDataMaxLength", "int", str(MEASURAND_LIST_MAX), readonly=True),
        KeySpec("SupportedFeatureProfiles", "csl", PROFILES, readonly=True),
        KeySpec("TransactionMessageAttempts", "int", "3", minimum=1, maximum=100),
        KeySpec("TransactionMessageRetryInterval", "int", "60", maximum=3600),
        KeySpec("UnlockConnectorOnEVSideDisconnect", "bool", "true"),
        KeySpec("WebSocketPingInterval", "int", "60", maximum=3600),
        KeySpec("LocalAuthListEnabled", "bool", "true"),
        KeySpec("LocalAuthListMaxLength", "int", str(LOCAL_LIST_MAX), readonly=True),
        KeySpec("SendLocalListMaxLength", "int", str(SEND_LOCAL_LIST_MAX), readonly=True),
        KeySpec("ReserveConnectorZeroSupported", "bool", "true", readonly=True),
    ]


class ConfigurationKeys:
    """The station's key/value configuration as the CSMS sees it."""

    def __init__(self, config: Config, store: Store) -> None:
        self._store = store
        self.specs = {k.name: k for k in core_keys(config)}
        self._values = {k.name: k.default for k in self.specs.values()}
        for name, spec in self.specs.items():
            stored = store.get_setting(f"ocpp.{name}")
            if stored is not None and not spec.readonly and self._problem(spec, stored) is None:
                self._values[name] = stored
        self._listeners: list[Callable[[str, str], None]] = []

    def on_change(self, listener: Callable[[str, str], None]) -> None:
        """Call ``listener(key, value)`` after every accepted change."""
        self._listeners.append(listener)

    # --------------------------------------------------------------- reading

    def flag(self, name: str) -> bool:
        """A boolean key."""
        return self._values[name].lower() == "true"

    def number(self, name: str) -> int:
        """An integer key."""
        return int(self._values[name])

    def items(self, name: str) -> list[str]:
        """A comma-separated key as a list (empty items dropped)."""
        return [v.strip() for v in self._values[name].split(",") if v.strip()]

    def get(self, names: list[str] | None) -> tuple[list[dict[str, object]], list[str]]:
        """GetConfiguration: (configurationKey entries, unknownKey names)."""
        wanted = names or list(self.specs)
        known = [
            {"key": n, "readonly": self.specs[n].readonly, "value": self._values[n]} for n in wanted if n in self.specs
        ]
        unknown = [n for n in wanted if n not in self.specs]
        return known, unknown

    # --------------------------------------------------------------- writing

    def change(self, name: str, value: str) -> str:
        """ChangeConfiguration: Accepted, Rejected, RebootRequired or NotSupported."""
        spec = self.specs.get(name)
        if spec is None:
            return "NotSupported"
        if spec.readonly:
            log.info("ChangeConfiguration %s refused: read-only", name)
            return "Rejected"
        problem = self._problem(spec, value)
        if problem is not None:
            log.info("ChangeConfiguration %s = %r refused: %s", name, value, problem)
            return "Rejected"
        value = value.strip().lower() if spec.kind == "bool" else value.strip()
        self._values[name] = value
        self._store.set_setting(f"ocpp.{name}", value)
        log.info("configuration key %s set to %r", name, value)
        for listener in list(self._listeners):
            listener(name, value)
        # Every key applies without a restart (WebSocketPingInterval at the next connection), so none
        # answers RebootRequired.
        return "Accepted"

    def set_runtime(self, name: str, value: str) -> None:
        """Set a key from the protocol itself (the heartbeat interval a BootNotification gives)."""
        self._values[name] = value
        self._store.set_setting(f"ocpp.{name}", value)

    @staticmethod
    def _problem(spec: KeySpec, value: str) -> str | None:
        if spec.kind == "bool":
            return None if value.strip().lower() in ("true", "false") else "expected true or false"
        if spec.kind == "int":
            try:
                number = int(value.strip())
            except ValueError:
                return "expected an integer"
            if not spec.minimum <= number <= spec.maximum:
                return f"expected {spec.minimum}-{spec.maximum}"
            return None
        if spec.name in _MEASURAND_KEYS:
            return _measurand_problem(value)
        return None
