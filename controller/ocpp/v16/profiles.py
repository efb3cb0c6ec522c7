"""OCPP 1.6 charging profiles and composite schedules, spelt to and from the station's own words.

The ``ocpp`` package hands a request's payload over with snake_case keys, nested dicts included.
"""

from __future__ import annotations

from typing import Any

from controller.clock import iso_utc, parse_time
from controller.ocpp.charging_profiles import ChargingProfile, Kind, Period, Purpose, Recurrency, Schedule, Unit
from controller.ocpp.smart_charging import Composite

PURPOSES = {"ChargePointMaxProfile": Purpose.STATION_MAX, "TxDefaultProfile": Purpose.TX_DEFAULT,
            "TxProfile": Purpose.TX}


class Unreadable(ValueError):
    """A profile the station cannot read (a bad date, an unknown enumeration value)."""


def profile_from(data: dict[str, Any], connector_id: int, transaction_id: str | None) -> ChargingProfile:
    """A ``csChargingProfiles`` for ``connector_id``; ``transaction_id`` is its transaction's local id."""
    try:
        s = data["charging_schedule"]
        periods = tuple(Period(int(p["start_period"]), float(p["limit"]), p.get("number_phases"))
                        for p in s["charging_schedule_period"])
        schedule = Schedule(Unit(s["charging_rate_unit"]), periods, _time(s.get("start_schedule")), s.get("duration"),
                            s.get("min_charging_rate"))
        recurrency = data.get("recurrency_kind")
        wire_tx = data.get("transaction_id")
        return ChargingProfile(int(data["charging_profile_id"]), connector_id, int(data["stack_level"]),
                               PURPOSES[data["charging_profile_purpose"]], Kind(data["charging_profile_kind"]),
                               schedule, Recurrency(recurrency) if recurrency else None, _time(data.get("valid_from")),
                               _time(data.get("valid_to")), transaction_id,
                               wire_transaction_id=None if wire_tx is None else str(wire_tx))
    except (KeyError, ValueError, TypeError) as exc:
        raise Unreadable(f"unreadable charging profile ({exc!r})") from exc


def purpose_from(name: str | None) -> Purpose | None:
    """A ClearChargingProfile purpose (None: any)."""
    return None if name is None else PURPOSES[name]


def composite_payload(composite: Composite) -> dict[str, Any]:
    """GetCompositeSchedule.conf's fields for an Accepted answer."""
    periods = [{"start_period": p.start, "limit": p.limit, **({"number_phases": p.phases} if p.phases else {})}
               for p in composite.periods]
    start = iso_utc(composite.start)
    return {"connector_id": composite.evse_id, "schedule_start": start,
            "charging_schedule": {"duration": composite.duration, "start_schedule": start,
                                  "charging_rate_unit": composite.unit.value, "charging_schedule_period": periods}}


def _time(text: str | None) -> Any:
    return None if text is None else parse_time(text)
