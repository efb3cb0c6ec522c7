"""The composite-schedule engine: installed charging profiles -> the limit in force at any moment.

The rules are the same in OCPP 1.6 (§3.13) and 2.0.1 (K08):

- Within one purpose, the profile with the highest stack level that sets a limit at that moment wins; a
  profile sets none before its validFrom, from its validTo on, before its schedule starts and after the
  schedule's duration, so a lower stack level shows through those gaps. At the same stack level an EVSE's own
  TxDefaultProfile wins over the one installed on EVSE 0 for every EVSE.
- A TxProfile (for the running transaction only) overrides the TxDefaultProfile while it sets a limit.
- The result is the smallest of the station maximum, the external constraints and the transaction's limit.

Schedules are anchored as their kind says: Absolute at startSchedule (without one, like Relative), Relative at
the transaction's start (with none running: at the moment asked about), Recurring at startSchedule moved on by
whole days or weeks **in the station's time zone**, so a daily profile set for 17:00 keeps starting at 17:00
local time across a daylight-saving change (that day is 23 or 25 hours long; periods count elapsed seconds
from the occurrence's start, and the next occurrence cuts a longer schedule short).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo

from controller.ocpp.charging_profiles import ChargingProfile, Kind, Purpose, Recurrency, Unit

#: A bound on the periods of one composite schedule: a malformed mix of profiles must not loop for ever.
MAX_STEPS = 10_000


@dataclass(frozen=True)
class Limit:
    """One profile's limit at a moment."""

    value: float
    unit: Unit
    phases: int | None = None
    min_rate: float | None = None


@dataclass(frozen=True)
class Electrics:
    """What converts amps to watts at an EVSE: volts per phase (DC: the output voltage), phases (DC: 0)."""

    volts: float
    phases: int

    def watts_per_amp(self, phases: int | None) -> float:
        """Watts that one amp per phase makes on ``phases`` phases (None: the EVSE's own)."""
        if not self.phases:
            return self.volts  # DC: one current
        return self.volts * (phases or self.phases)

    def convert(self, limit: Limit, unit: Unit) -> float:
        """``limit`` in ``unit``."""
        if limit.unit == unit:
            return limit.value
        factor = self.watts_per_amp(limit.phases)
        return limit.value * factor if unit == Unit.WATTS else limit.value / factor


@dataclass(frozen=True)
class Limits:
    """What the profiles set for one EVSE at one moment, and when any of it may change next (None: never)."""

    station: Limit | None
    external: Limit | None
    transaction: Limit | None
    until: datetime | None


@dataclass(frozen=True)
class CompositePeriod:
    """A period of a composite schedule: from ``start`` seconds after the schedule's start."""

    start: int
    limit: float
    phases: int | None = None


def recurrence(base: datetime, every: Recurrency, at: datetime, zone: tzinfo) -> tuple[datetime, datetime]:
    """The start of the occurrence in force at ``at`` and of the next one (before ``base``: base twice)."""
    if at < base:
        return base, base
    step = 1 if every == Recurrency.DAILY else 7
    local = base.astimezone(zone)
    wall = local.replace(tzinfo=None)

    def occurrence(days: int) -> datetime:
        # In UTC: Python subtracts two times of one tzinfo by their wall clocks, which a DST change breaks.
        return (wall + timedelta(days=days)).replace(tzinfo=zone).astimezone(UTC)

    days = (at.astimezone(zone).date() - local.date()).days // step * step
    while days > 0 and occurrence(days) > at:
        days -= step
    while occurrence(days + step) <= at:
        days += step
    return occurrence(days), occurrence(days + step)


def profile_limit(profile: ChargingProfile, at: datetime, anchor: datetime,
                  zone: tzinfo) -> tuple[Limit | None, datetime | None]:
    """The limit ``profile`` sets at ``at`` (None: none) and when that may change next (None: never).

    ``anchor`` is where Relative schedules (and Absolute ones without startSchedule) start.
    """
    if profile.valid_from is not None and at < profile.valid_from:
        return None, profile.valid_from
    if profile.valid_to is not None and at >= profile.valid_to:
        return None, None
    schedule = profile.schedule
    following: datetime | None = None
    if profile.kind == Kind.RECURRING and schedule.start is not None and profile.recurrency is not None:
        start, following = recurrence(schedule.start, profile.recurrency, at, zone)
    elif profile.kind == Kind.ABSOLUTE and schedule.start is not None:
        start = schedule.start
    else:
        start = anchor
    changes = [t for t in (following, profile.valid_to) if t is not None]
    if at < start:
        return None, min([start, *changes])
    elapsed = (at - start).total_seconds()
    if schedule.duration is not None:
        if elapsed >= schedule.duration:
            return None, min(changes, default=None)
        changes.append(start + timedelta(seconds=schedule.duration))
    current = schedule.periods[0]
    for period in schedule.periods:
        if period.start > elapsed:
            changes.append(start + timedelta(seconds=period.start))
            break
        current = period
    limit = Limit(current.limit, schedule.unit, current.phases, schedule.min_rate)
    return limit, min(changes, default=None)


def _winner(profiles: Iterable[ChargingProfile], at: datetime, anchor: datetime,
            zone: tzinfo) -> tuple[Limit | None, datetime | None]:
    best: Limit | None = None
    best_key: tuple[int, bool] | None = None
    until: datetime | None = None
    for profile in profiles:
        limit, change = profile_limit(profile, at, anchor, zone)
        if change is not None and (until is None or change < until):
            until = change
        key = (profile.stack_level, profile.evse_id != 0)
        if limit is not None and (best_key is None or key > best_key):
            best, best_key = limit, key
    return best, until


def limits_at(profiles: list[ChargingProfile], evse_id: int, at: datetime, *, anchor: datetime,
              transaction_id: str | None, zone: tzinfo) -> Limits:
    """What the profiles set for ``evse_id`` (0: the station as a whole) at ``at``.

    ``transaction_id`` is the transaction running there (its TxProfiles count; None: none runs).
    """
    def of(purpose: Purpose, evses: tuple[int, ...]) -> list[ChargingProfile]:
        return [p for p in profiles if p.purpose == purpose and p.evse_id in evses]

    here = (0, evse_id)
    station, t1 = _winner(of(Purpose.STATION_MAX, (0,)), at, anchor, zone)
    external, t2 = _winner(of(Purpose.EXTERNAL, here), at, anchor, zone)
    tx: Limit | None = None
    t3 = t4 = None
    if evse_id:
        tx_profiles = [p for p in of(Purpose.TX, (evse_id,))
                       if transaction_id is not None and p.transaction_id == transaction_id]
        tx, t3 = _winner(tx_profiles, at, anchor, zone)
        if tx is None:
            tx, t4 = _winner(of(Purpose.TX_DEFAULT, here), at, anchor, zone)
        else:
            t4 = _winner(of(Purpose.TX_DEFAULT, here), at, anchor, zone)[1]
    changes = [t for t in (t1, t2, t3, t4) if t is not None and t > at]
    return Limits(station, external, tx, min(changes, default=None))


def smallest(limits: Limits, unit: Unit, electrics: Electrics, ceiling: float | None) -> float | None:
    """The smallest of the limits in ``unit`` (and ``ceiling``, the station's own maximum); None: no limit."""
    values = [electrics.convert(lim, unit) for lim in (limits.station, limits.external, limits.transaction)
              if lim is not None]
    if ceiling is not None:
        values.append(ceiling)
    return min(values, default=None)


def composite_schedule(profiles: list[ChargingProfile], evse_id: int, start: datetime, duration: int, unit: Unit,
                       electrics: Electrics, *, anchor: datetime, transaction_id: str | None, zone: tzinfo,
                       ceiling: float) -> list[CompositePeriod]:
    """The composite schedule of ``evse_id`` from ``start`` for ``duration`` seconds, in ``unit``.

    ``ceiling`` is the EVSE's own maximum in ``unit``: it fills the times no profile limits, so the schedule
    always says what the station would deliver.
    """
    end = start + timedelta(seconds=duration)
    periods: list[CompositePeriod] = []
    at = start
    for _ in range(MAX_STEPS):
        limits = limits_at(profiles, evse_id, at, anchor=anchor, transaction_id=transaction_id, zone=zone)
        value = smallest(limits, unit, electrics, ceiling)
        phases = next((lim.phases for lim in (limits.transaction, limits.external, limits.station)
                       if lim is not None and lim.phases is not None), None)
        period = CompositePeriod(round((at - start).total_seconds()), round(value if value is not None else ceiling, 1),
                                 phases)
        if periods and periods[-1].start == period.start:
            periods.pop()  # a change within the first half second: the later limit is the one that holds
        if not periods or (periods[-1].limit, periods[-1].phases) != (period.limit, period.phases):
            periods.append(period)
        if limits.until is None or limits.until >= end:
            break
        at = limits.until
    return periods
