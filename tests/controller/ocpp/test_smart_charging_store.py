"""What a restart finds of the charging profiles: the kept ones, not a dead process's TxProfiles or garbage."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from controller.clock import Clock
from controller.ocpp.charging_profiles import ChargingProfile, Kind, Period, Purpose, Schedule, Unit
from controller.ocpp.smart_charging import SmartCharging
from controller.station import Station
from controller.storage import Store


def _profile(pid: int, purpose: Purpose) -> ChargingProfile:
    schedule = Schedule(Unit.AMPS, (Period(0, 10.0),), datetime(2026, 6, 1, tzinfo=UTC))
    return ChargingProfile(pid, 1, 0, purpose, Kind.ABSOLUTE, schedule, transaction_id="t1"
                           if purpose == Purpose.TX else None)


def test_a_restart_keeps_profiles_and_drops_tx_profiles_and_unreadable_ones(tmp_path: Path) -> None:
    store = Store(tmp_path)
    store.put_charging_profile(1, json.dumps(_profile(1, Purpose.TX_DEFAULT).to_json()))
    store.put_charging_profile(2, json.dumps(_profile(2, Purpose.TX).to_json()))
    store.put_charging_profile(3, '{"id": 3, "schedule": "garbled"}')
    smart = SmartCharging(Station(), store, Clock(), ZoneInfo("UTC"))
    assert list(smart.profiles) == [1] and smart.profiles[1] == _profile(1, Purpose.TX_DEFAULT)
    assert [pid for pid, _ in store.charging_profiles()] == [1]
    store.close()
