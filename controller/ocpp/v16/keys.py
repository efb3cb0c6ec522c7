"""OCPP 1.6 configuration keys: aliases onto the device model, as libocpp maps them.

GetConfiguration lists these keys, in this order, with the value of the variable each stands for (or, for the
``*MaxLength`` keys, that variable's limit); a key is read-only when its variable is. ChangeConfiguration writes
the variable, with its checks. No key needs a restart, so none answers RebootRequired.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from controller.domain.types import Answer
from controller.ocpp import device_model as dm
from controller.ocpp.device_model import READ_ONLY, WRITE_ONLY, DeviceModel, Ref, split


@dataclass(frozen=True)
class Alias:
    """A 1.6 key and the variable it stands for; ``limit`` keys show the variable's member limit instead."""

    key: str
    ref: Ref
    limit: bool = False
    #: Variables the key sets too: one 1.6 key stands for what 2.0.1 splits in two.
    also: tuple[Ref, ...] = ()
    #: 1.6 names for a list variable's members (2.0.1's "A" is 1.6's "Current").
    spelling: tuple[tuple[str, str], ...] = ()


ALIASES: list[Alias] = [
    Alias("AllowOfflineTxForUnknownId", dm.OFFLINE_TX_FOR_UNKNOWN_ID),
    Alias("AuthorizationCacheEnabled", dm.AUTH_CACHE_ENABLED),
    Alias("AuthorizeRemoteTxRequests", dm.AUTHORIZE_REMOTE_START),
    # StopTxnAlignedData is taken every ClockAlignedDataInterval, StopTxnSampledData every MeterValueSampleInterval.
    Alias("ClockAlignedDataInterval", dm.ALIGNED_INTERVAL, also=(dm.ALIGNED_TX_ENDED_INTERVAL,)),
    Alias("ConnectionTimeOut", dm.EV_CONNECTION_TIMEOUT),
    Alias("ConnectorPhaseRotation", dm.PHASE_ROTATION),
    Alias("GetConfigurationMaxKeys", dm.GET_VARIABLES_ITEMS),
    Alias("HeartbeatInterval", dm.HEARTBEAT_INTERVAL),
    Alias("LocalAuthorizeOffline", dm.LOCAL_AUTHORIZE_OFFLINE),
    Alias("LocalPreAuthorize", dm.LOCAL_PRE_AUTHORIZE),
    Alias("MaxEnergyOnInvalidId", dm.MAX_ENERGY_ON_INVALID_ID),
    Alias("MeterValuesAlignedData", dm.ALIGNED_MEASURANDS),
    Alias("MeterValuesAlignedDataMaxLength", dm.ALIGNED_MEASURANDS, limit=True),
    Alias("MeterValuesSampledData", dm.TX_UPDATED_MEASURANDS),
    Alias("MeterValuesSampledDataMaxLength", dm.TX_UPDATED_MEASURANDS, limit=True),
    Alias("MeterValueSampleInterval", dm.TX_UPDATED_INTERVAL, also=(dm.TX_ENDED_INTERVAL,)),
    Alias("MinimumStatusDuration", dm.MINIMUM_STATUS_DURATION),
    Alias("NumberOfConnectors", dm.NUMBER_OF_CONNECTORS),
    Alias("ResetRetries", dm.RESET_RETRIES),
    Alias("StopTransactionOnEVSideDisconnect", dm.STOP_TX_ON_EV_SIDE_DISCONNECT),
    Alias("StopTransactionOnInvalidId", dm.STOP_TX_ON_INVALID_ID),
    Alias("StopTxnAlignedData", dm.ALIGNED_TX_ENDED_MEASURANDS),
    Alias("StopTxnAlignedDataMaxLength", dm.ALIGNED_TX_ENDED_MEASURANDS, limit=True),
    Alias("StopTxnSampledData", dm.TX_ENDED_MEASURANDS),
    Alias("StopTxnSampledDataMaxLength", dm.TX_ENDED_MEASURANDS, limit=True),
    Alias("SupportedFeatureProfiles", dm.SUPPORTED_FEATURE_PROFILES),
    Alias("TransactionMessageAttempts", dm.MESSAGE_ATTEMPTS),
    Alias("TransactionMessageRetryInterval", dm.MESSAGE_ATTEMPT_INTERVAL),
    Alias("UnlockConnectorOnEVSideDisconnect", dm.UNLOCK_ON_EV_SIDE_DISCONNECT),
    Alias("WebSocketPingInterval", dm.WEBSOCKET_PING_INTERVAL),
    Alias("LocalAuthListEnabled", dm.LOCAL_LIST_ENABLED),
    Alias("LocalAuthListMaxLength", dm.LOCAL_LIST_ENTRIES, limit=True),
    Alias("SendLocalListMaxLength", dm.LOCAL_LIST_ITEMS_PER_MESSAGE),
    Alias("ReserveConnectorZeroSupported", dm.NON_EVSE_SPECIFIC_RESERVATION),
    Alias("ChargeProfileMaxStackLevel", dm.PROFILE_STACK_LEVEL),
    Alias("ChargingScheduleAllowedChargingRateUnit", dm.RATE_UNIT, spelling=(("A", "Current"), ("W", "Power"))),
    Alias("ChargingScheduleMaxPeriods", dm.PERIODS_PER_SCHEDULE),
    Alias("MaxChargingProfilesInstalled", dm.SMART_ENTRIES, limit=True),
    Alias("ConnectorSwitch3to1PhaseSupported", dm.PHASES_3TO1),
    # The security whitepaper's keys.
    Alias("AuthorizationKey", dm.BASIC_AUTH_PASSWORD),
    Alias("SecurityProfile", dm.SECURITY_PROFILE),
    Alias("CpoName", dm.ORGANIZATION_NAME),
    Alias("CertificateSignedMaxChainSize", dm.MAX_CERTIFICATE_CHAIN_SIZE),
    Alias("CertificateStoreMaxLength", dm.CERTIFICATE_ENTRIES, limit=True),
    Alias("AdditionalRootCertificateCheck", dm.ADDITIONAL_ROOT_CHECK),
]
_BY_KEY = {a.key: a for a in ALIASES}


class ConfigurationKeys:
    """The station's configuration as a 1.6 CSMS sees it: keys over the device model."""

    def __init__(self, model: DeviceModel, writers: dict[str, Callable[[str], Answer]] | None = None) -> None:
        self.model = model
        #: Keys whose change is an operation, not a variable write (1.6 SecurityProfile raises the profile).
        self.writers = writers or {}

    def value(self, alias: Alias) -> str:
        """A key's 1.6 value."""
        if alias.limit:
            return str(self.model.variables[alias.ref].max_items)
        value = self.model.get(alias.ref)
        if alias.spelling:
            names = dict(alias.spelling)
            return ",".join(names.get(member, member) for member in split(value))
        return value

    def _write_only(self, alias: Alias) -> bool:
        return not alias.limit and self.model.variables[alias.ref].mutability == WRITE_ONLY

    def readonly(self, alias: Alias) -> bool:
        """Whether ChangeConfiguration may write the key."""
        if alias.key in self.writers:
            return False
        return alias.limit or self.model.variables[alias.ref].mutability == READ_ONLY

    def get(self, names: list[str] | None) -> tuple[list[dict[str, object]], list[str]]:
        """GetConfiguration: (configurationKey entries, unknownKey names)."""
        wanted = names or [a.key for a in ALIASES]
        # A write-only key (AuthorizationKey) is listed without its value.
        known = [{"key": n, "readonly": self.readonly(_BY_KEY[n]),
                  **({} if self._write_only(_BY_KEY[n]) else {"value": self.value(_BY_KEY[n])})}
                 for n in wanted if n in _BY_KEY]
        return known, [n for n in wanted if n not in _BY_KEY]

    def change(self, key: str, value: str) -> Answer:
        """ChangeConfiguration: ACCEPTED, REJECTED or NOT_SUPPORTED."""
        alias = _BY_KEY.get(key)
        if alias is None:
            return Answer.NOT_SUPPORTED
        if key in self.writers:
            return self.writers[key](value)
        if alias.limit:
            return Answer.REJECTED
        answer = self.model.set(alias.ref, value)
        if answer == Answer.ACCEPTED:
            for ref in alias.also:
                self.model.set(ref, value)
        return answer
