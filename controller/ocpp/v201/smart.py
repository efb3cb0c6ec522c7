"""OCPP 2.0.1 Smart Charging (K01, K05, K08, K09, K10): the handlers and the spelling of profiles.

:class:`SmartChargingHandlers` is mixed into the 2.0.1 charge point; the rules are
:mod:`controller.ocpp.smart_charging`'s. The ``ocpp`` package hands payloads over in snake_case.
"""

from __future__ import annotations

import logging
from typing import Any

from ocpp.routing import after, on
from ocpp.v201 import call_result
from ocpp.v201.enums import Action

from controller.clock import iso_utc, parse_time
from controller.ocpp.charging_profiles import (
    ChargingProfile,
    Kind,
    Period,
    Purpose,
    Recurrency,
    Schedule,
    Source,
    Unit,
)
from controller.ocpp.commands import Commands
from controller.ocpp.smart_charging import Composite, Rules

log = logging.getLogger(__name__)

PURPOSES = {"ChargingStationMaxProfile": Purpose.STATION_MAX, "TxDefaultProfile": Purpose.TX_DEFAULT,
            "TxProfile": Purpose.TX, "ChargingStationExternalConstraints": Purpose.EXTERNAL}
_NAMES = {v: k for k, v in PURPOSES.items()}
#: K01.FR.06: two profiles of one stack level and purpose on an EVSE may not overlap in validity (no replacing
#: but by id); K01.FR.03: a TxProfile names its transaction.
PROFILE_RULES = Rules(replace_same_level=False, tx_needs_id=True)
_CHECKED = {"skip_schema_validation": True}  # framing.py checked it, with exact decimals
#: Profiles per ReportChargingProfiles message.
REPORT_PART = 10


class Unreadable(ValueError):
    """A profile the station cannot use as written (a bad date, more than one schedule)."""


def profile_from(data: dict[str, Any], evse_id: int) -> ChargingProfile:
    """A ``chargingProfile`` for ``evse_id`` (its transactionId is the station's own id in 2.0.1)."""
    try:
        schedules = data["charging_schedule"]
        if len(schedules) != 1:
            raise Unreadable(f"{len(schedules)} charging schedules: more than one is for ISO 15118, not here")
        s = schedules[0]
        periods = tuple(Period(int(p["start_period"]), float(p["limit"]), p.get("number_phases"))
                        for p in s["charging_schedule_period"])
        schedule = Schedule(Unit(s["charging_rate_unit"]), periods, _time(s.get("start_schedule")), s.get("duration"),
                            s.get("min_charging_rate"), int(s["id"]))
        recurrency = data.get("recurrency_kind")
        tx = data.get("transaction_id")
        return ChargingProfile(int(data["id"]), evse_id, int(data["stack_level"]),
                               PURPOSES[data["charging_profile_purpose"]], Kind(data["charging_profile_kind"]),
                               schedule, Recurrency(recurrency) if recurrency else None, _time(data.get("valid_from")),
                               _time(data.get("valid_to")), tx, wire_transaction_id=tx)
    except (KeyError, ValueError, TypeError) as exc:
        if isinstance(exc, Unreadable):
            raise
        raise Unreadable(f"unreadable charging profile ({exc!r})") from exc


def profile_payload(profile: ChargingProfile) -> dict[str, Any]:
    """A profile as ReportChargingProfiles spells it."""
    s = profile.schedule
    schedule: dict[str, Any] = {
        "id": s.id, "chargingRateUnit": s.unit.value,
        "chargingSchedulePeriod": [{"startPeriod": p.start, "limit": p.limit,
                                    **({"numberPhases": p.phases} if p.phases else {})} for p in s.periods]}
    for key, value in (("startSchedule", _iso(s.start)), ("duration", s.duration), ("minChargingRate", s.min_rate)):
        if value is not None:
            schedule[key] = value
    body: dict[str, Any] = {"id": profile.id, "stackLevel": profile.stack_level,
                            "chargingProfilePurpose": _NAMES[profile.purpose],
                            "chargingProfileKind": profile.kind.value, "chargingSchedule": [schedule]}
    for key, value in (("recurrencyKind", profile.recurrency.value if profile.recurrency else None),
                       ("validFrom", _iso(profile.valid_from)), ("validTo", _iso(profile.valid_to)),
                       ("transactionId", profile.wire_transaction_id or profile.transaction_id)):
        if value is not None:
            body[key] = value
    return body


def composite_payload(composite: Composite) -> dict[str, Any]:
    """GetCompositeScheduleResponse's ``schedule``."""
    return {"evseId": composite.evse_id, "duration": composite.duration, "scheduleStart": iso_utc(composite.start),
            "chargingRateUnit": composite.unit.value,
            "chargingSchedulePeriod": [{"startPeriod": p.start, "limit": p.limit,
                                        **({"numberPhases": p.phases} if p.phases else {})}
                                       for p in composite.periods]}


def _info(reason: str, detail: str) -> dict[str, str]:
    return {"reason_code": reason, "additional_info": detail[:512]}


class SmartChargingHandlers:
    """The K requests of one 2.0.1 connection (mixed into its charge point)."""

    commands: Commands

    @on(Action.set_charging_profile, **_CHECKED)
    def on_set_charging_profile(self, evse_id: int, charging_profile: dict[str, Any], **_: Any) -> Any:
        try:
            profile = profile_from(charging_profile, evse_id)
        except Unreadable as exc:
            log.info("SetChargingProfile refused: %s", exc)
            return call_result.SetChargingProfile(status="Rejected", status_info=_info("InvalidProfile", str(exc)))
        refused = self.commands.smart.install(profile, PROFILE_RULES)
        if refused is not None:
            return call_result.SetChargingProfile(status="Rejected", status_info=_info("InvalidProfile", refused))
        return call_result.SetChargingProfile(status="Accepted")

    @on(Action.clear_charging_profile, **_CHECKED)
    def on_clear_charging_profile(self, charging_profile_id: int | None = None,
                                  charging_profile_criteria: dict[str, Any] | None = None, **_: Any) -> Any:
        criteria = charging_profile_criteria or {}
        purpose = criteria.get("charging_profile_purpose")
        cleared = self.commands.smart.clear(charging_profile_id, criteria.get("evse_id"),
                                            PURPOSES[purpose] if purpose else None, criteria.get("stack_level"))
        return call_result.ClearChargingProfile(status="Accepted" if cleared else "Unknown")

    @on(Action.get_charging_profiles, **_CHECKED)
    def on_get_charging_profiles(self, request_id: int, charging_profile: dict[str, Any], evse_id: int | None = None,
                                 **_: Any) -> Any:
        found = self._wanted(evse_id, charging_profile)
        return call_result.GetChargingProfiles(status="Accepted" if found else "NoProfiles")

    def _wanted(self, evse_id: int | None, criteria: dict[str, Any]) -> list[ChargingProfile]:
        purpose = criteria.get("charging_profile_purpose")
        sources = criteria.get("charging_limit_source")
        found = self.commands.smart.matching(evse_id, PURPOSES[purpose] if purpose else None,
                                             criteria.get("stack_level"), criteria.get("charging_profile_id"))
        return [p for p in found if not sources or p.source.value in sources]

    @after(Action.get_charging_profiles)
    def after_get_charging_profiles(self, request_id: int, charging_profile: dict[str, Any],
                                    evse_id: int | None = None, **_: Any) -> None:
        """K09.FR.03: the profiles follow the answer, grouped by EVSE and source, ``tbc`` on all but the last."""
        groups: dict[tuple[int, Source], list[ChargingProfile]] = {}
        for profile in self._wanted(evse_id, charging_profile):
            groups.setdefault((profile.evse_id, profile.source), []).append(profile)
        parts = [(evse, source, found[i:i + REPORT_PART]) for (evse, source), found in groups.items()
                 for i in range(0, len(found), REPORT_PART)]
        self.commands.send_later([
            ("ReportChargingProfiles", {"requestId": request_id, "chargingLimitSource": source.value, "evseId": evse,
                                        "tbc": n < len(parts) - 1,
                                        "chargingProfile": [profile_payload(p) for p in part]})
            for n, (evse, source, part) in enumerate(parts)])

    @on(Action.get_composite_schedule, **_CHECKED)
    def on_get_composite_schedule(self, duration: int, evse_id: int, charging_rate_unit: str | None = None,
                                  **_: Any) -> Any:
        composite = self.commands.smart.composite(evse_id, duration,
                                                  Unit(charging_rate_unit) if charging_rate_unit else None)
        if composite is None:
            return call_result.GetCompositeSchedule(status="Rejected",
                                                    status_info=_info("UnknownEvse", f"no EVSE {evse_id}"))
        return call_result.GetCompositeSchedule(status="Accepted", schedule=composite_payload(composite))


def _time(text: str | None) -> Any:
    return None if text is None else parse_time(text)


def _iso(moment: Any) -> str | None:
    return None if moment is None else iso_utc(moment)
