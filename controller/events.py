"""Domain events the connectors emit, and the vocabulary they share with OCPP.

The names of statuses and stop reasons are OCPP 1.6's on purpose: they are what
an operator sees. Nothing here imports OCPP.
"""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass, field
from datetime import datetime

from hal.meter import MeterReading


class ConnectorStatus(enum.StrEnum):
    """What a connector reports (OCPP 1.6 ChargePointStatus)."""

    AVAILABLE = "Available"
    PREPARING = "Preparing"
    CHARGING = "Charging"
    SUSPENDED_EV = "SuspendedEV"
    SUSPENDED_EVSE = "SuspendedEVSE"
    FINISHING = "Finishing"
    RESERVED = "Reserved"
    UNAVAILABLE = "Unavailable"
    FAULTED = "Faulted"


class StopReason(enum.StrEnum):
    """Why a transaction ended (OCPP 1.6 Reason)."""

    LOCAL = "Local"
    REMOTE = "Remote"
    EV_DISCONNECTED = "EVDisconnected"
    EMERGENCY_STOP = "EmergencyStop"
    DE_AUTHORIZED = "DeAuthorized"
    HARD_RESET = "HardReset"
    SOFT_RESET = "SoftReset"
    UNLOCK_COMMAND = "UnlockCommand"
    OTHER = "Other"


@dataclass
class Transaction:
    """One charging transaction as the station knows it."""

    connector_id: int
    id_tag: str
    meter_start_wh: int
    started_at: datetime
    local_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    meter_stop_wh: int | None = None
    stopped_at: datetime | None = None
    stop_reason: StopReason | None = None
    stop_id_tag: str | None = None
    reservation_id: int | None = None
    start_reading: MeterReading | None = None
    stop_reading: MeterReading | None = None


@dataclass(frozen=True)
class StatusChanged:
    """A connector's reported status changed."""

    connector_id: int
    status: ConnectorStatus
    error_code: str = "NoError"
    info: str | None = None
    vendor_error_code: str | None = None


@dataclass(frozen=True)
class TransactionStarted:
    """Authorised and plugged in: a transaction began."""

    transaction: Transaction


@dataclass(frozen=True)
class TransactionEnded:
    """A transaction ended (its stop fields are filled in)."""

    transaction: Transaction


@dataclass(frozen=True)
class MeterSample:
    """A reading taken for a running transaction."""

    connector_id: int
    transaction: Transaction
    reading: MeterReading
    at: datetime


@dataclass(frozen=True)
class CardRead:
    """A card was presented and a decision made (for indicators and the bench)."""

    uid: str
    accepted: bool
    connector_id: int | None
    detail: str


Event = StatusChanged | TransactionStarted | TransactionEnded | MeterSample | CardRead
