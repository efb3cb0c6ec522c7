"""Domain events: what happened at an EVSE, rich enough for 1.6's messages and 2.0.1's TransactionEvent.

EVSEs emit them through the station, in order, on the loop thread; the OCPP adapters, the status LEDs, the
site-limit sharing and the bench subscribe. Nothing here knows a protocol.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime

from controller.domain.faults import Fault
from controller.domain.types import (
    AuthDecision,
    ChargingState,
    EvseStatus,
    IdToken,
    PowerLimit,
    StopReason,
    TriggerReason,
)
from hal.meter import MeterReading


@dataclass
class Transaction:
    """One charging transaction as the station knows it."""

    evse_id: int
    id_token: IdToken
    meter_start_wh: int
    started_at: datetime
    local_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    trigger: TriggerReason = TriggerReason.AUTHORIZED
    reservation_id: int | None = None
    #: The CSMS's RequestStartTransaction id (2.0.1), when a remote start began it.
    remote_start_id: int | None = None
    start_reading: MeterReading | None = None
    meter_stop_wh: int | None = None
    stopped_at: datetime | None = None
    stop_reason: StopReason | None = None
    stop_trigger: TriggerReason | None = None
    stop_id_token: IdToken | None = None
    stop_reading: MeterReading | None = None


@dataclass(frozen=True)
class StatusChanged:
    """An EVSE's status changed, or the fault or warning it reports with it did (evse 0: the whole station)."""

    evse_id: int
    status: EvseStatus
    fault: Fault | None = None
    detail: str | None = None


@dataclass(frozen=True)
class VehicleConnected:
    """A cable was plugged in (2.0.1 trigger CablePluggedIn)."""

    evse_id: int


@dataclass(frozen=True)
class VehicleDetected:
    """The vehicle at the end of the cable answers (IEC: the pilot shows its resistor; DC: its first frames)."""

    evse_id: int


@dataclass(frozen=True)
class VehicleDeparted:
    """The cable was pulled (2.0.1 trigger EVDeparted)."""

    evse_id: int


@dataclass(frozen=True)
class Authorized:
    """An identifier was accepted for an EVSE (card, remote start, local list)."""

    evse_id: int
    id_token: IdToken
    decision: AuthDecision


@dataclass(frozen=True)
class AuthorizationWithdrawn:
    """An authorisation ended before it became a transaction (no cable in time, a stop tap, a remote stop, a fault)."""

    evse_id: int
    id_token: IdToken
    reason: StopReason
    trigger: TriggerReason


@dataclass(frozen=True)
class Deauthorized:
    """The CSMS withdrew a running transaction's authorisation."""

    evse_id: int
    id_token: IdToken


@dataclass(frozen=True)
class ChargingStateChanged:
    """Energy started, paused or stopped within a transaction."""

    evse_id: int
    state: ChargingState


@dataclass(frozen=True)
class LimitChanged:
    """What an EVSE may offer changed (cable, site share, temperature, schedule...)."""

    evse_id: int
    limit: PowerLimit


@dataclass(frozen=True)
class TransactionStarted:
    """A transaction began."""

    transaction: Transaction


@dataclass(frozen=True)
class TransactionUpdated:
    """Something a transaction's record should carry happened (2.0.1 TransactionEvent Updated)."""

    transaction: Transaction
    trigger: TriggerReason


@dataclass(frozen=True)
class TransactionEnded:
    """A transaction ended (its stop fields are filled in)."""

    transaction: Transaction


@dataclass(frozen=True)
class MeterSample:
    """A reading taken for a running transaction at its sample interval."""

    evse_id: int
    transaction: Transaction
    reading: MeterReading
    at: datetime


@dataclass(frozen=True)
class CardRead:
    """A card was presented and a decision made (for indicators and the bench)."""

    uid: str
    accepted: bool
    evse_id: int | None
    detail: str


@dataclass(frozen=True)
class ReservationEnded:
    """A reservation ended unused: it ran out (``expired``), or the station removed it (its EVSE became
    unavailable or faulted)."""

    evse_id: int
    reservation_id: int
    expired: bool = True


Event = (StatusChanged | VehicleConnected | VehicleDetected | VehicleDeparted | Authorized | AuthorizationWithdrawn
         | Deauthorized | ChargingStateChanged | LimitChanged | TransactionStarted | TransactionUpdated
         | TransactionEnded | MeterSample | CardRead | ReservationEnded)
