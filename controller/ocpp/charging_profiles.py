"""Charging profiles in the station's own words, for every OCPP version.

A profile is what a CSMS (or another outside source of limits) installs on the station: a schedule of limits
(amps per phase or watts) with a purpose, a stack level and a validity. The adapters translate their version's
``ChargingProfile`` into :class:`ChargingProfile` and back; :mod:`controller.ocpp.composite` turns the installed
ones into limits; :mod:`controller.ocpp.smart_charging` keeps them. The JSON form here is the one the store keeps,
so it never changes with a version's spelling.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from controller.clock import iso_utc, parse_time


class Purpose(enum.Enum):
    """What a profile limits (1.6 and 2.0.1 ``chargingProfilePurpose``)."""

    #: The whole station's total (1.6 ChargePointMaxProfile, 2.0.1 ChargingStationMaxProfile); EVSE 0 only.
    STATION_MAX = "station max"
    #: Every transaction of an EVSE (or of every EVSE, on EVSE 0) that has no TxProfile.
    TX_DEFAULT = "tx default"
    #: One running transaction; it overrides the TxDefaultProfile and ends with the transaction.
    TX = "tx"
    #: 2.0.1 ChargingStationExternalConstraints: limits from outside the CSMS (an energy manager, the grid).
    EXTERNAL = "external"


class Kind(enum.Enum):
    """How a schedule is anchored in time."""

    ABSOLUTE = "Absolute"
    RECURRING = "Recurring"
    RELATIVE = "Relative"


class Recurrency(enum.Enum):
    """How often a Recurring schedule starts again."""

    DAILY = "Daily"
    WEEKLY = "Weekly"


class Unit(enum.Enum):
    """The unit of a schedule's limits: amps per phase, or watts in all."""

    AMPS = "A"
    WATTS = "W"


class Source(enum.Enum):
    """Who set a limit (2.0.1 ChargingLimitSourceEnumType)."""

    CSO = "CSO"
    EMS = "EMS"
    SO = "SO"
    OTHER = "Other"


@dataclass(frozen=True)
class Period:
    """From ``start`` seconds after the schedule's start on: at most ``limit``, on ``phases`` phases."""

    start: int
    limit: float
    phases: int | None = None


@dataclass(frozen=True)
class Schedule:
    """A profile's schedule: its periods in order of start, and how long it lasts (None: until the next one)."""

    unit: Unit
    periods: tuple[Period, ...]
    start: datetime | None = None
    duration: int | None = None
    min_rate: float | None = None
    #: 2.0.1 gives each schedule an id; 1.6 has none (0).
    id: int = 0


@dataclass(frozen=True)
class ChargingProfile:
    """One installed profile. ``transaction_id`` is the station-local id of a TxProfile's transaction."""

    id: int
    evse_id: int
    stack_level: int
    purpose: Purpose
    kind: Kind
    schedule: Schedule
    recurrency: Recurrency | None = None
    valid_from: datetime | None = None
    valid_to: datetime | None = None
    transaction_id: str | None = None
    source: Source = Source.CSO
    #: The transaction id as the CSMS wrote it (1.6: its number; 2.0.1: the station's id), to report it back.
    wire_transaction_id: str | None = field(default=None, compare=False)

    def bound(self, transaction_id: str, wire_id: str | None) -> ChargingProfile:
        """This TxProfile, tied to a running transaction."""
        return replace(self, transaction_id=transaction_id, wire_transaction_id=wire_id)

    def to_json(self) -> dict[str, Any]:
        """The stored form."""
        s = self.schedule
        return {
            "id": self.id, "evse_id": self.evse_id, "stack_level": self.stack_level, "purpose": self.purpose.value,
            "kind": self.kind.value, "recurrency": self.recurrency.value if self.recurrency else None,
            "valid_from": _time(self.valid_from), "valid_to": _time(self.valid_to),
            "transaction_id": self.transaction_id, "wire_transaction_id": self.wire_transaction_id,
            "source": self.source.value,
            "schedule": {"id": s.id, "unit": s.unit.value, "start": _time(s.start), "duration": s.duration,
                         "min_rate": s.min_rate,
                         "periods": [[p.start, p.limit, p.phases] for p in s.periods]},
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ChargingProfile:
        """A profile from its stored form."""
        s = data["schedule"]
        schedule = Schedule(Unit(s["unit"]), tuple(Period(int(a), float(b), c) for a, b, c in s["periods"]),
                            _parse(s["start"]), s["duration"], s["min_rate"], int(s["id"]))
        return cls(int(data["id"]), int(data["evse_id"]), int(data["stack_level"]), Purpose(data["purpose"]),
                   Kind(data["kind"]), schedule, Recurrency(data["recurrency"]) if data["recurrency"] else None,
                   _parse(data["valid_from"]), _parse(data["valid_to"]), data["transaction_id"],
                   Source(data["source"]), data["wire_transaction_id"])


def shape_problem(profile: ChargingProfile, *, max_periods: int) -> str | None:
    """What makes a profile unusable whatever is installed (None: nothing), as the log says it."""
    s = profile.schedule
    if not s.periods:
        return "the schedule has no periods"
    if len(s.periods) > max_periods:
        return f"{len(s.periods)} periods, more than ChargingScheduleMaxPeriods ({max_periods})"
    if s.periods[0].start != 0:
        return f"the first period starts at {s.periods[0].start} s, not 0"
    starts = [p.start for p in s.periods]
    if starts != sorted(set(starts)):
        return "the periods' startPeriod values do not increase"
    if any(p.limit < 0 for p in s.periods):
        return "a negative limit"
    if any(p.phases is not None and p.phases not in (1, 2, 3) for p in s.periods):
        return "numberPhases is not 1, 2 or 3"
    if s.duration is not None and s.duration <= 0:
        return "a duration of 0 s or less"
    if profile.kind == Kind.RECURRING and (profile.recurrency is None or s.start is None):
        return "a Recurring profile needs recurrencyKind and startSchedule"
    if profile.valid_from and profile.valid_to and profile.valid_to <= profile.valid_from:
        return "validTo is not after validFrom"
    return None


def _time(moment: datetime | None) -> str | None:
    return None if moment is None else iso_utc(moment)


def _parse(text: str | None) -> datetime | None:
    return None if text is None else parse_time(text)
