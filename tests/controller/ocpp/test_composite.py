"""The composite-schedule engine against schedules worked out by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from controller.ocpp.charging_profiles import (
    ChargingProfile,
    Kind,
    Period,
    Purpose,
    Recurrency,
    Schedule,
    Unit,
)
from controller.ocpp.composite import CompositePeriod, Electrics, composite_schedule, limits_at, recurrence

T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
AC3 = Electrics(230.0, 3)
BERLIN = ZoneInfo("Europe/Berlin")


def profile(pid: int, periods: list[tuple[int, float]], *, level: int = 0, purpose: Purpose = Purpose.TX_DEFAULT,
            kind: Kind = Kind.ABSOLUTE, start: datetime | None = T0, duration: int | None = None, evse: int = 1,
            unit: Unit = Unit.AMPS, **extra: object) -> ChargingProfile:
    schedule = Schedule(unit, tuple(Period(s, v) for s, v in periods), start, duration)
    return ChargingProfile(pid, evse, level, purpose, kind, schedule, **extra)  # type: ignore[arg-type]


def schedule_of(profiles: list[ChargingProfile], start: datetime, duration: int, *, evse: int = 1,
                anchor: datetime | None = None, tx: str | None = None, zone: ZoneInfo | None = None,
                unit: Unit = Unit.AMPS) -> list[tuple[int, float]]:
    periods = composite_schedule(profiles, evse, start, duration, unit, AC3, anchor=anchor or start,
                                 transaction_id=tx, zone=zone or ZoneInfo("UTC"),
                                 ceiling=32.0 if unit == Unit.AMPS else 32.0 * 690)
    return [(p.start, p.limit) for p in periods]


def test_a_higher_stack_level_wins_while_it_lasts_and_the_lower_one_shows_after() -> None:
    base = profile(1, [(0, 20.0)], start=T0 - timedelta(hours=1))
    burst = profile(2, [(0, 10.0), (1800, 16.0)], level=1, duration=3600)
    got = schedule_of([base, burst], T0 - timedelta(minutes=10), 7200)
    # 11:50 base 20 A; 12:00 level 1 10 A; 12:30 16 A; 13:00 its duration ends: base again.
    assert got == [(0, 20.0), (600, 10.0), (2400, 16.0), (4200, 20.0)]


def test_a_higher_stack_level_wins_even_when_it_allows_more() -> None:
    low = profile(1, [(0, 10.0)])
    high = profile(2, [(0, 25.0)], level=3)
    assert schedule_of([low, high], T0, 600) == [(0, 25.0)]


def test_purposes_combine_as_the_smallest_and_a_tx_profile_overrides_the_default() -> None:
    station = profile(1, [(0, 24.0), (600, 12.0)], purpose=Purpose.STATION_MAX, evse=0)
    default = profile(2, [(0, 16.0)], evse=0)
    tx = profile(3, [(0, 32.0), (1200, 6.0)], purpose=Purpose.TX, transaction_id="t1", duration=1800)
    # With t1 running: min(24, tx 32) = 24, then 12 (station), then 6 (tx), then the tx profile ends: 12 vs 16.
    assert schedule_of([station, default, tx], T0, 3600, tx="t1") == [(0, 24.0), (600, 12.0), (1200, 6.0),
                                                                      (1800, 12.0)]
    # Another transaction: the TxProfile is not its; the default (on EVSE 0, for all) and the station maximum.
    assert schedule_of([station, default, tx], T0, 3600, tx="t2") == [(0, 16.0), (600, 12.0)]


def test_an_evse_s_own_default_wins_over_evse_0_s_at_the_same_level() -> None:
    everywhere = profile(1, [(0, 10.0)], evse=0)
    own = profile(2, [(0, 14.0)], evse=1)
    assert schedule_of([everywhere, own], T0, 60) == [(0, 14.0)]
    assert schedule_of([everywhere, own], T0, 60, evse=2) == [(0, 10.0)]


def test_the_station_view_holds_only_the_station_maximum() -> None:
    station = profile(1, [(0, 20.0)], purpose=Purpose.STATION_MAX, evse=0)
    default = profile(2, [(0, 8.0)], evse=0)
    assert schedule_of([station, default], T0, 60, evse=0) == [(0, 20.0)]


def test_a_relative_profile_counts_from_the_transaction_start() -> None:
    relative = profile(1, [(0, 16.0), (600, 8.0)], kind=Kind.RELATIVE, start=None)
    started = T0 - timedelta(minutes=5)
    assert schedule_of([relative], T0, 900, anchor=started, tx="t1") == [(0, 16.0), (300, 8.0)]


def test_an_absolute_profile_without_start_schedule_is_relative() -> None:
    loose = profile(1, [(0, 16.0), (60, 8.0)], start=None)
    assert schedule_of([loose], T0, 120, anchor=T0 - timedelta(seconds=30)) == [(0, 16.0), (30, 8.0)]


def test_valid_from_and_valid_to_bound_a_profile() -> None:
    base = profile(1, [(0, 20.0)])
    window = profile(2, [(0, 6.0)], level=1, valid_from=T0 + timedelta(seconds=100),
                     valid_to=T0 + timedelta(seconds=200))
    assert schedule_of([base, window], T0, 300) == [(0, 20.0), (100, 6.0), (200, 20.0)]


def test_no_profile_leaves_the_station_s_own_maximum() -> None:
    assert schedule_of([], T0, 3600) == [(0, 32.0)]


def test_a_daily_profile_repeats_across_midnight() -> None:
    # 22:00 UTC every day: 6 A for four hours (to 02:00), then 32 A until the next 22:00.
    night = profile(1, [(0, 6.0), (4 * 3600, 32.0)], kind=Kind.RECURRING, recurrency=Recurrency.DAILY,
                    start=datetime(2026, 6, 1, 22, 0, tzinfo=UTC))
    at = datetime(2026, 6, 3, 23, 0, tzinfo=UTC)
    assert schedule_of([night], at, 24 * 3600) == [(0, 6.0), (3 * 3600, 32.0), (23 * 3600, 6.0)]


def test_a_daily_profile_keeps_its_local_time_across_daylight_saving() -> None:
    # 17:00 in Berlin (16:00 UTC in winter), one hour of 10 A then one of 20 A. Summer time starts on 29 March:
    # that day 17:00 local is 15:00 UTC.
    evening = profile(1, [(0, 10.0), (3600, 20.0)], kind=Kind.RECURRING, recurrency=Recurrency.DAILY,
                      start=datetime(2026, 3, 20, 16, 0, tzinfo=UTC), duration=7200)
    at = datetime(2026, 3, 29, 14, 0, tzinfo=UTC)
    assert schedule_of([evening], at, 4 * 3600, zone=BERLIN) == [(0, 32.0), (3600, 10.0), (7200, 20.0),
                                                                (10800, 32.0)]
    # And back on 25 October: 17:00 local is 16:00 UTC again.
    autumn = datetime(2026, 10, 25, 14, 0, tzinfo=UTC)
    assert schedule_of([evening], autumn, 4 * 3600, zone=BERLIN) == [(0, 32.0), (7200, 10.0), (10800, 20.0)]


def test_the_day_of_a_change_is_an_hour_short_or_long() -> None:
    base = datetime(2026, 3, 20, 16, 0, tzinfo=UTC)
    start, following = recurrence(base, Recurrency.DAILY, datetime(2026, 3, 28, 20, 0, tzinfo=UTC), BERLIN)
    assert (start, following) == (datetime(2026, 3, 28, 16, 0, tzinfo=UTC), datetime(2026, 3, 29, 15, 0, tzinfo=UTC))
    assert following - start == timedelta(hours=23)
    start, following = recurrence(base, Recurrency.DAILY, datetime(2026, 10, 24, 20, 0, tzinfo=UTC), BERLIN)
    assert following - start == timedelta(hours=25)


def test_a_long_daily_schedule_is_cut_short_by_the_next_occurrence() -> None:
    # Periods up to 30 h: the 24 h one never comes, the next day starts over at 8 A.
    long = profile(1, [(0, 8.0), (20 * 3600, 12.0), (26 * 3600, 4.0)], kind=Kind.RECURRING,
                   recurrency=Recurrency.DAILY, start=T0)
    assert schedule_of([long], T0, 30 * 3600) == [(0, 8.0), (20 * 3600, 12.0), (24 * 3600, 8.0)]


def test_a_weekly_profile_repeats_on_its_weekday() -> None:
    monday = datetime(2026, 6, 1, 8, 0, tzinfo=UTC)  # a Monday
    weekly = profile(1, [(0, 6.0)], kind=Kind.RECURRING, recurrency=Recurrency.WEEKLY, start=monday, duration=3600)
    at = datetime(2026, 6, 14, 8, 0, tzinfo=UTC)  # the Sunday before the third Monday
    assert schedule_of([weekly], at, 2 * 86400) == [(0, 32.0), (86400, 6.0), (86400 + 3600, 32.0)]


def test_watts_and_amps_convert_with_volts_and_phases() -> None:
    watts = profile(1, [(0, 11040.0)], unit=Unit.WATTS)  # 16 A on three phases of 230 V
    assert schedule_of([watts], T0, 60) == [(0, 16.0)]
    assert schedule_of([profile(2, [(0, 10.0)])], T0, 60, unit=Unit.WATTS)[0] == (0, 6900.0)
    one_phase = ChargingProfile(3, 1, 0, Purpose.TX_DEFAULT, Kind.ABSOLUTE,
                                Schedule(Unit.WATTS, (Period(0, 3680.0, 1),), T0))
    periods = composite_schedule([one_phase], 1, T0, 60, Unit.AMPS, AC3, anchor=T0, transaction_id=None,
                                 zone=ZoneInfo("UTC"), ceiling=32.0)
    assert periods == [CompositePeriod(0, 16.0, 1)]


def test_limits_at_says_when_the_next_change_is() -> None:
    p = profile(1, [(0, 10.0), (900, 12.0)])
    limits = limits_at([p], 1, T0 + timedelta(seconds=10), anchor=T0, transaction_id=None, zone=ZoneInfo("UTC"))
    assert limits.transaction is not None and limits.transaction.value == 10.0
    assert limits.until == T0 + timedelta(seconds=900)
