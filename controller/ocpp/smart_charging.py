"""Smart charging: the installed charging profiles, their rules, and the limits they put on every EVSE.

The version adapters translate SetChargingProfile, ClearChargingProfile, GetCompositeSchedule (and 2.0.1's
GetChargingProfiles) into calls here. Profiles are kept on disk, so they hold across restarts and while the CSMS
is away. :meth:`SmartCharging.run` applies them: at every period boundary (and whenever a profile, a
transaction or the clock changes) each EVSE gets its ``profile`` limit (the external constraints and the
transaction's limit) and the station its total (the station maximum, shared between the EVSEs like the site
limit). The charging protocols apply a lower limit at once and a higher one under their own rules (IEC 61851's
5 s between raises); a limit below what the EV can take pauses the charge (SuspendedEVSE), it never stops it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, tzinfo

from controller.clock import Clock
from controller.domain.events import Event, TransactionEnded, TransactionStarted
from controller.domain.types import PowerLimit
from controller.evse.machine import Evse
from controller.ocpp.charging_profiles import ChargingProfile, Purpose, Unit, shape_problem
from controller.ocpp.composite import (
    CompositePeriod,
    Electrics,
    Limit,
    Limits,
    composite_schedule,
    limits_at,
    smallest,
)
from controller.station import Station
from controller.storage import Store

log = logging.getLogger(__name__)

#: The EVSE limit the profiles set (beside "cable", "site", "temperature", ...).
PROFILE = "profile"
#: What the station takes (ChargeProfileMaxStackLevel, ChargingScheduleMaxPeriods, MaxChargingProfilesInstalled).
MAX_STACK_LEVEL = 8
MAX_PERIODS = 48
MAX_PROFILES = 32
#: Volts per phase assumed when the meter has not told them yet.
NOMINAL_VOLTS = 230.0
#: The longest the limits go unchecked: a clock corrected by the CSMS moves every boundary, and a watts limit
#: turns into other amps when the measured voltage or the phases the EV draws on change.
RECHECK = 10.0
#: How long a remote start's profile waits for its transaction.
REMOTE_START_WAIT = timedelta(minutes=10)


@dataclass(frozen=True)
class Rules:
    """Where the versions differ on installing a profile."""

    #: 1.6: a profile with the stack level and purpose of an installed one (on the same EVSE) replaces it;
    #: 2.0.1 (K01.FR.06) refuses it when their validity overlaps.
    replace_same_level: bool
    #: 2.0.1 (K01.FR.03): a TxProfile names its transaction.
    tx_needs_id: bool


@dataclass(frozen=True)
class Composite:
    """A composite schedule as GetCompositeSchedule answers it."""

    evse_id: int
    start: datetime
    duration: int
    unit: Unit
    periods: list[CompositePeriod]


@dataclass
class _Pending:
    profile: ChargingProfile
    id_token: str
    remote_start_id: int | None
    since: datetime


class SmartCharging:
    """The station's charging profiles and the limits they set."""

    def __init__(self, station: Station, store: Store, clock: Clock, zone: tzinfo) -> None:
        self.station = station
        self.store = store
        self.clock = clock
        self.zone = zone
        self.profiles: dict[int, ChargingProfile] = {}
        self._pending: list[_Pending] = []
        self._changed = asyncio.Event()
        stale = []
        for pid, text in store.charging_profiles():
            try:
                profile = ChargingProfile.from_json(json.loads(text))
            except (ValueError, KeyError, TypeError) as exc:
                log.error("stored charging profile %d is unreadable (%r); it is dropped", pid, exc)
                stale.append(pid)
                continue
            if profile.purpose == Purpose.TX:
                stale.append(pid)  # its transaction ended with the process that ran it (a power loss or a restart)
                continue
            self.profiles[profile.id] = profile
        self._drop(stale)
        station.subscribe(self._on_event)

    # ------------------------------------------------------------- installing

    def install(self, profile: ChargingProfile, rules: Rules) -> str | None:
        """SetChargingProfile: None when installed, or why it was refused (the log says it too)."""
        problem = self._problem(profile, rules)
        if problem is not None:
            log.info("charging profile %d for EVSE %d refused: %s", profile.id, profile.evse_id, problem)
            return problem
        if profile.purpose == Purpose.TX:
            evse = self.station.evses[profile.evse_id]
            profile = profile.bound(_running_id(evse) or "", profile.wire_transaction_id)
        replaced = [p.id for p in self.profiles.values() if p.id == profile.id or (
            rules.replace_same_level and _same_slot(p, profile))]
        self._drop(replaced)
        self._put(profile)
        log.info("charging profile %d installed on EVSE %d (%s, stack level %d)%s", profile.id, profile.evse_id,
                 profile.purpose.value, profile.stack_level, f", replacing {replaced}" if replaced else "")
        return None

    def _problem(self, profile: ChargingProfile, rules: Rules) -> str | None:
        shape = shape_problem(profile, max_periods=MAX_PERIODS)
        if shape is not None:
            return shape
        if profile.evse_id != 0 and profile.evse_id not in self.station.evses:
            return f"the station has no EVSE {profile.evse_id}"
        if not 0 <= profile.stack_level <= MAX_STACK_LEVEL:
            return f"stack level {profile.stack_level} is not 0-{MAX_STACK_LEVEL}"
        if profile.purpose == Purpose.EXTERNAL:
            return "ChargingStationExternalConstraints are set by the station's own sources, not the CSMS"
        if profile.purpose == Purpose.STATION_MAX and profile.evse_id != 0:
            return "a station maximum belongs on EVSE 0"
        if profile.purpose == Purpose.TX:
            if profile.evse_id == 0:
                return "a TxProfile needs an EVSE: it limits one transaction"
            running = _running_id(self.station.evses[profile.evse_id])
            if running is None:
                return f"no transaction runs on EVSE {profile.evse_id}"
            if rules.tx_needs_id and profile.transaction_id is None:
                return "a TxProfile names its transaction"
            if profile.transaction_id is not None and profile.transaction_id != running:
                return f"transaction {profile.wire_transaction_id} does not run on EVSE {profile.evse_id}"
        if not rules.replace_same_level:
            clash = next((p for p in self.profiles.values() if p.id != profile.id and _same_slot(p, profile)
                          and _overlap(p, profile)), None)
            if clash is not None:
                return f"profile {clash.id} has the same stack level and purpose with an overlapping validity"
        if profile.id not in self.profiles and len(self.profiles) >= MAX_PROFILES:
            return f"{MAX_PROFILES} profiles are installed, the most this station keeps"
        return None

    def clear(self, profile_id: int | None = None, evse_id: int | None = None, purpose: Purpose | None = None,
              stack_level: int | None = None) -> bool:
        """ClearChargingProfile: True when something was cleared (an id alone decides; otherwise every criterion
        given must match)."""
        if profile_id is not None:
            gone = [profile_id] if profile_id in self.profiles else []
        else:
            gone = [p.id for p in self.matching(evse_id, purpose, stack_level)]
        self._drop(gone)
        if gone:
            log.info("charging profiles %s cleared", gone)
        return bool(gone)

    def matching(self, evse_id: int | None = None, purpose: Purpose | None = None, stack_level: int | None = None,
                 ids: list[int] | None = None) -> list[ChargingProfile]:
        """The installed profiles that match every criterion given, by EVSE and id."""
        return sorted((p for p in self.profiles.values()
                       if evse_id in (None, p.evse_id) and purpose in (None, p.purpose)
                       and stack_level in (None, p.stack_level) and (not ids or p.id in ids)),
                      key=lambda p: (p.evse_id, p.id))

    def remote_start_problem(self, profile: ChargingProfile) -> str | None:
        """What keeps a remote start's profile from being used (None: nothing); the start is refused then."""
        problem = shape_problem(profile, max_periods=MAX_PERIODS)
        if problem is None and profile.purpose != Purpose.TX:
            problem = "a remote start's profile must be a TxProfile"
        if problem is None and not 0 <= profile.stack_level <= MAX_STACK_LEVEL:
            problem = f"stack level {profile.stack_level} is not 0-{MAX_STACK_LEVEL}"
        if problem is not None:
            log.info("remote start's charging profile %d refused: %s", profile.id, problem)
        return problem

    def expect_remote_start(self, profile: ChargingProfile, id_token: str, remote_start_id: int | None) -> None:
        """An accepted remote start's profile: it becomes the TxProfile of the transaction the start begins."""
        self._pending.append(_Pending(profile, id_token.upper(), remote_start_id, self.clock.utcnow()))

    # ---------------------------------------------------------------- reading

    def electrics(self, evse: Evse) -> Electrics:
        """The volts and phases that convert an EVSE's amps and watts (measured where the meter says)."""
        volts = [v for v in (evse.reading.voltage if evse.reading is not None else ()) if v]
        if not evse.phases:
            return Electrics(volts[0] if volts else evse.protocol.volts() or NOMINAL_VOLTS, 0)
        return Electrics(sum(volts) / len(volts) if volts else NOMINAL_VOLTS, evse.phases)

    def limits(self, evse: Evse, at: datetime | None = None) -> Limits:
        """What the profiles set for an EVSE now (or at ``at``)."""
        at = at or self.clock.utcnow()
        tx = evse.transaction
        return limits_at(list(self.profiles.values()), evse.id, at, anchor=tx.started_at if tx else at,
                         transaction_id=_running_id(evse), zone=self.zone)

    def composite(self, evse_id: int, duration: int, unit: Unit | None) -> Composite | None:
        """GetCompositeSchedule: the schedule from now for ``duration`` s (None: no such EVSE)."""
        now = self.clock.utcnow()
        profiles = list(self.profiles.values())
        if evse_id == 0:
            evses = list(self.station.evses.values())
            chosen = unit or (Unit.AMPS if all(e.phases for e in evses) else Unit.WATTS)
            ceiling = sum(_own_ceiling(e, chosen, self.electrics(e)) for e in evses)
            if self.station.site_current_limit and chosen == Unit.AMPS:
                ceiling = min(ceiling, self.station.site_current_limit)
            electrics = self.electrics(evses[0]) if evses else Electrics(NOMINAL_VOLTS, 3)
            periods = composite_schedule(profiles, 0, now, duration, chosen, electrics, anchor=now,
                                         transaction_id=None, zone=self.zone, ceiling=ceiling)
            return Composite(0, now, duration, chosen, periods)
        evse = self.station.evses.get(evse_id)
        if evse is None:
            return None
        chosen = unit or (Unit.AMPS if evse.phases else Unit.WATTS)
        electrics = self.electrics(evse)
        tx = evse.transaction
        periods = composite_schedule(profiles, evse_id, now, duration, chosen, electrics,
                                     anchor=tx.started_at if tx else now, transaction_id=_running_id(evse),
                                     zone=self.zone, ceiling=_own_ceiling(evse, chosen, electrics))
        return Composite(evse_id, now, duration, chosen, periods)

    # ---------------------------------------------------------------- applying

    async def run(self) -> None:
        """Apply the limits at every boundary, and whenever something changed, until cancelled."""
        while True:
            until = self.apply()
            wait = RECHECK
            if until is not None:
                wait = min(RECHECK, max(0.0, (until - self.clock.utcnow()).total_seconds()) + 0.01)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), wait)
            self._changed.clear()

    def changed(self) -> None:
        """Something the limits depend on changed (the clock, a setting): look again now."""
        self._changed.set()

    def apply(self) -> datetime | None:
        """Set every EVSE's profile limit and the station's total for now; returns the next boundary."""
        now = self.clock.utcnow()
        next_change: datetime | None = None
        station: Limit | None = None
        for evse in self.station.evses.values():
            limits = self.limits(evse, now)
            station = limits.station
            limit = self._evse_limit(limits, self.electrics(evse))
            evse.set_limit(PROFILE, limit)
            if limit is not None and limit.watts is not None and evse.transaction is not None:
                evse.refresh()  # the same watts, perhaps other amps (volts, phases in use)
            if limits.until is not None and (next_change is None or limits.until < next_change):
                next_change = limits.until
        self.station.set_station_limit(None if station is None else _power(station))
        return next_change

    @staticmethod
    def _evse_limit(limits: Limits, electrics: Electrics) -> PowerLimit | None:
        result: PowerLimit | None = None
        for limit in (limits.external, limits.transaction):
            if limit is not None:
                result = _power(limit) if result is None else result.combine(_power(limit))
        tx = limits.transaction
        if tx is not None and tx.min_rate:
            # Below the EV's least rate it could not charge at all: pause instead of offering too little.
            least = smallest(Limits(None, limits.external, tx, None), tx.unit, electrics, None)
            if least is not None and least < tx.min_rate:
                return PowerLimit(amps=0.0)
        return result

    def _on_event(self, event: Event) -> None:
        if isinstance(event, TransactionStarted):
            self._bind_remote_start(event)
            self._changed.set()
        elif isinstance(event, TransactionEnded):
            # A TxProfile ends with its transaction (1.6 §3.13.4, 2.0.1 K01.FR.33).
            self._drop([p.id for p in self.profiles.values()
                        if p.purpose == Purpose.TX and p.transaction_id == event.transaction.local_id])
            self._changed.set()

    def _bind_remote_start(self, event: TransactionStarted) -> None:
        tx = event.transaction
        now = self.clock.utcnow()
        self._pending = [p for p in self._pending if now - p.since < REMOTE_START_WAIT]
        for pending in self._pending:
            same = (pending.remote_start_id == tx.remote_start_id if pending.remote_start_id is not None
                    else pending.id_token == tx.id_token.value.upper())
            if same:
                self._pending.remove(pending)
                profile = pending.profile
                self._drop([profile.id])
                self._put(replace(profile, evse_id=tx.evse_id, transaction_id=tx.local_id, wire_transaction_id=None))
                log.info("remote start's charging profile %d applies to transaction %s", profile.id, tx.local_id)
                return

    # ----------------------------------------------------------------- store

    def _put(self, profile: ChargingProfile) -> None:
        self.store.put_charging_profile(profile.id, json.dumps(profile.to_json()))
        self.profiles[profile.id] = profile
        self._changed.set()

    def _drop(self, ids: list[int]) -> None:
        if ids:
            self.store.drop_charging_profiles(ids)
            for pid in ids:
                self.profiles.pop(pid, None)
            self._changed.set()


def _running_id(evse: Evse) -> str | None:
    """The transaction on an EVSE: charging, or opened early by the protocol (2.0.1 TxStartPoint)."""
    return evse.transaction.local_id if evse.transaction is not None else evse.next_transaction_id


def _same_slot(a: ChargingProfile, b: ChargingProfile) -> bool:
    return (a.evse_id, a.stack_level, a.purpose) == (b.evse_id, b.stack_level, b.purpose)


def _overlap(a: ChargingProfile, b: ChargingProfile) -> bool:
    """Whether two profiles' validity periods share a moment (an open end reaches for ever)."""
    if a.valid_from is not None and b.valid_to is not None and b.valid_to <= a.valid_from:
        return False
    return not (b.valid_from is not None and a.valid_to is not None and a.valid_to <= b.valid_from)


def _power(limit: Limit) -> PowerLimit:
    return PowerLimit(amps=limit.value) if limit.unit == Unit.AMPS else PowerLimit(watts=limit.value)


def _own_ceiling(evse: Evse, unit: Unit, electrics: Electrics) -> float:
    """What an EVSE's own limits (its maximum, cable, site share, temperature) allow, in ``unit``."""
    own = evse.limits.maximum
    for name in evse.limits.names():
        limit = evse.limits.get(name)
        if name != PROFILE and limit is not None:
            own = own.combine(limit)
    amps = own.amps
    watts = own.watts
    if unit == Unit.AMPS:
        by_watts = watts / electrics.watts_per_amp(None) if watts is not None else None
        values = [v for v in (amps, by_watts) if v is not None]
    else:
        by_amps = amps * electrics.watts_per_amp(None) if amps is not None else None
        values = [v for v in (watts, by_amps) if v is not None]
    return min(values, default=0.0)
