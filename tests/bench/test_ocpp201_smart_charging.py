"""OCPP 2.0.1 Smart Charging (K01, K05, K08, K09, K10) on the bench. Named after the OCTT K cases they mirror."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ocpp.v201 import call

from controller.app import App
from controller.clock import iso_utc
from hil.csms import CsmsSimulator
from tests.bench.test_ocpp16_core import TAG, script
from tests.bench.test_ocpp201_core import CP, events
from tests.bench.test_safety import offers
from tests.conftest import sim_config, wait_until


def profile(pid: int, purpose: str, periods: list[tuple[int, float]], *, level: int = 0, unit: str = "A",
            kind: str = "Absolute", start: datetime | None = None, duration: int | None = None,
            **extra: Any) -> dict[str, Any]:
    schedule: dict[str, Any] = {"id": pid, "chargingRateUnit": unit,
                                "chargingSchedulePeriod": [{"startPeriod": s, "limit": v} for s, v in periods]}
    if kind != "Relative":
        schedule["startSchedule"] = iso_utc(start or datetime.now(UTC) - timedelta(seconds=1))
    if duration is not None:
        schedule["duration"] = duration
    return {"id": pid, "stackLevel": level, "chargingProfilePurpose": purpose, "chargingProfileKind": kind,
            "chargingSchedule": [schedule], **extra}


async def set_profile(csms: CsmsSimulator, evse: int, body: dict[str, Any]) -> str:
    result = await csms.call(CP, call.SetChargingProfile(evse_id=evse, charging_profile=body))
    return str(result.status)


async def composite(csms: CsmsSimulator, evse: int, duration: int = 3600, unit: str | None = None) -> Any:
    return await csms.call(CP, call.GetCompositeSchedule(duration=duration, evse_id=evse, charging_rate_unit=unit))


def periods(result: Any) -> list[tuple[int, float]]:
    return [(p["start_period"], p["limit"]) for p in result.schedule["charging_schedule_period"]]


async def clear(csms: CsmsSimulator, pid: int | None = None, **criteria: Any) -> str:
    request = call.ClearChargingProfile(charging_profile_id=pid, charging_profile_criteria=criteria or None)
    return str((await csms.call(CP, request)).status)


async def get_profiles(csms: CsmsSimulator, rid: int, evse: int | None = None,
                       **criteria: Any) -> tuple[str, list[dict[str, Any]]]:
    result = await csms.call(CP, call.GetChargingProfiles(request_id=rid, evse_id=evse, charging_profile=criteria))
    if result.status == "Accepted":
        await wait_until(lambda: csms.profile_reports.get(rid) and not csms.profile_reports[rid][-1].get("tbc"),
                         what="the last ReportChargingProfiles")
    return str(result.status), csms.profile_reports.get(rid, [])


def reported_ids(parts: list[dict[str, Any]]) -> list[tuple[int, int]]:
    return sorted((part["evse_id"], p["id"]) for part in parts for p in part["profiles"])


async def transaction(app: App, csms: CsmsSimulator) -> str:
    await script(app, f"plug; tap {TAG}; expect Charging")
    await wait_until(lambda: events(csms), what="TransactionEvent")
    return str(events(csms)[0]["transactionInfo"]["transactionId"])


async def test_TC_K_01_10_CS_tx_default_profile_on_one_evse_and_on_all(station201: App, csms: CsmsSimulator) -> None:
    assert await set_profile(csms, 1, profile(1, "TxDefaultProfile", [(0, 12.0)])) == "Accepted"
    assert await set_profile(csms, 0, profile(2, "TxDefaultProfile", [(0, 10.0)])) == "Accepted"
    assert periods(await composite(csms, 1, 60)) == [(0, 12.0)]  # the EVSE's own wins at the same stack level
    await script(station201, f"plug; tap {TAG}; expect Charging; wait 0.3")
    assert offers(station201, 1) == [12.0]


async def test_TC_K_02_11_14_CS_refused_profiles_say_why(station201: App, csms: CsmsSimulator) -> None:
    result = await csms.call(CP, call.SetChargingProfile(evse_id=1, charging_profile=profile(
        3, "TxProfile", [(0, 8.0)], transactionId="no-such")))
    assert result.status == "Rejected" and "no transaction runs" in result.status_info["additional_info"]
    assert await set_profile(csms, 0, profile(4, "TxProfile", [(0, 8.0)], transactionId="x")) == "Rejected"
    assert await set_profile(csms, 7, profile(5, "TxDefaultProfile", [(0, 8.0)])) == "Rejected"
    # K01.FR.22: external constraints come from the station's own sources.
    assert await set_profile(csms, 0, profile(6, "ChargingStationExternalConstraints", [(0, 8.0)])) == "Rejected"


async def test_TC_K_03_CS_charging_station_max_profile(station201: App, csms: CsmsSimulator) -> None:
    assert await set_profile(csms, 0, profile(7, "ChargingStationMaxProfile", [(0, 16.0)])) == "Accepted"
    assert await set_profile(csms, 1, profile(8, "ChargingStationMaxProfile", [(0, 16.0)])) == "Rejected"
    await script(station201, f"plug; tap {TAG}; expect Charging; wait 0.3")
    assert offers(station201, 1) == [16.0]


async def test_TC_K_04_CS_a_profile_with_the_same_id_replaces_the_old(station201: App, csms: CsmsSimulator) -> None:
    assert await set_profile(csms, 1, profile(9, "TxDefaultProfile", [(0, 10.0)])) == "Accepted"
    assert await set_profile(csms, 1, profile(9, "TxDefaultProfile", [(0, 14.0)])) == "Accepted"
    assert periods(await composite(csms, 1, 60)) == [(0, 14.0)]
    # K01.FR.06: another id at the same stack level and purpose with an overlapping validity is refused.
    assert await set_profile(csms, 1, profile(10, "TxDefaultProfile", [(0, 6.0)])) == "Rejected"


async def test_TC_K_05_06_07_08_24_CS_clearing_profiles(station201: App, csms: CsmsSimulator) -> None:
    assert await clear(csms, 11) == "Unknown"  # K_08: nothing installed
    assert await set_profile(csms, 1, profile(11, "TxDefaultProfile", [(0, 10.0)])) == "Accepted"
    assert await set_profile(csms, 1, profile(12, "TxDefaultProfile", [(0, 9.0)], level=1)) == "Accepted"
    assert await set_profile(csms, 0, profile(13, "TxDefaultProfile", [(0, 8.0)], level=1)) == "Accepted"
    assert await clear(csms, 11) == "Accepted"  # K_05
    assert await clear(csms, charging_profile_purpose="TxDefaultProfile", stack_level=5) == "Unknown"  # K_07
    assert await clear(csms, evse_id=1, charging_profile_purpose="TxDefaultProfile", stack_level=1) == "Accepted"
    assert periods(await composite(csms, 1, 60)) == [(0, 8.0)]  # K_06: only EVSE 1's went
    assert await set_profile(csms, 1, profile(14, "TxDefaultProfile", [(0, 9.0)], level=1)) == "Accepted"
    assert await clear(csms, charging_profile_purpose="TxDefaultProfile", stack_level=1) == "Accepted"  # K_24
    assert periods(await composite(csms, 1, 60)) == [(0, 32.0)]


async def test_TC_K_09_28_CS_a_tx_default_during_a_transaction_applies_and_clears(station201: App,
                                                                                 csms: CsmsSimulator) -> None:
    for protocol in station201.protocols.values():
        protocol.pwm_raise_interval = 0.5
    await transaction(station201, csms)
    assert await set_profile(csms, 0, profile(15, "TxDefaultProfile", [(0, 11.0)])) == "Accepted"
    await wait_until(lambda: offers(station201, 1)[-1:] == [11.0], 1.0, what="the PWM at 11 A")
    assert await clear(csms, 15) == "Accepted"
    await wait_until(lambda: offers(station201, 1)[-1:] == [32.0], 2.0, what="the PWM back at 32 A")


async def test_TC_K_60_CS_tx_profile_on_the_running_transaction(station201: App, csms: CsmsSimulator) -> None:
    tx = await transaction(station201, csms)
    assert await set_profile(csms, 1, profile(16, "TxProfile", [(0, 7.0)])) == "Rejected"  # K01.FR.03: no id
    assert await set_profile(csms, 1, profile(16, "TxProfile", [(0, 7.0)], transactionId=tx)) == "Accepted"
    await wait_until(lambda: offers(station201, 1)[-1:] == [7.0], 1.0, what="the PWM at 7 A")
    assert await set_profile(csms, 1, profile(17, "TxProfile", [(0, 7.0)], transactionId="other")) == "Rejected"


async def test_TC_K_13_CS_profiles_persist_over_a_reboot(tmp_path: Path, csms: CsmsSimulator) -> None:
    for _ in range(2):
        app = App(sim_config(version="2.0.1"), state_dir=tmp_path, csms_url=csms.url)
        await app.start()
        try:
            assert app.ocpp is not None
            await wait_until(app.ocpp.connected.is_set, 10, what="the CSMS")
            if not app.ocpp.smart.profiles:
                assert await set_profile(csms, 0, profile(18, "TxDefaultProfile", [(0, 13.0)])) == "Accepted"
                continue
            status, parts = await get_profiles(csms, 1)
            assert status == "Accepted" and reported_ids(parts) == [(0, 18)]
        finally:
            await app.stop()


async def test_TC_K_19_21_22_23_CS_recurring_valid_from_valid_to_and_start_schedule(station201: App,
                                                                                 csms: CsmsSimulator) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    # Daily from yesterday, 600 s after this moment: 6 A for 300 s.
    daily = profile(19, "TxDefaultProfile", [(0, 6.0)], kind="Recurring", recurrencyKind="Daily",
                    start=now - timedelta(days=1) + timedelta(seconds=600), duration=300)
    assert await set_profile(csms, 1, daily) == "Accepted"
    got = periods(await composite(csms, 1, 1200))
    assert [v for _, v in got] == [32.0, 6.0, 32.0] and 597 <= got[1][0] <= 600 and 897 <= got[2][0] <= 900
    assert await clear(csms, 19) == "Accepted"
    window = profile(20, "TxDefaultProfile", [(0, 8.0)], validFrom=iso_utc(now + timedelta(seconds=100)),
                     validTo=iso_utc(now + timedelta(seconds=200)))
    assert await set_profile(csms, 1, window) == "Accepted"
    assert [v for _, v in periods(await composite(csms, 1, 300))] == [32.0, 8.0, 32.0]
    assert await clear(csms, 20) == "Accepted"
    later = profile(21, "TxDefaultProfile", [(0, 9.0)], start=now + timedelta(seconds=400))
    assert await set_profile(csms, 1, later) == "Accepted"
    assert [v for _, v in periods(await composite(csms, 1, 600))] == [32.0, 9.0]


async def test_TC_K_29_to_36_CS_get_charging_profiles(station201: App, csms: CsmsSimulator) -> None:
    assert await set_profile(csms, 0, profile(22, "ChargingStationMaxProfile", [(0, 30.0)])) == "Accepted"
    assert await set_profile(csms, 0, profile(23, "TxDefaultProfile", [(0, 20.0)])) == "Accepted"
    assert await set_profile(csms, 1, profile(24, "TxDefaultProfile", [(0, 16.0)], level=2)) == "Accepted"
    status, parts = await get_profiles(csms, 1, 0)  # K_29: only EVSE 0's
    assert status == "Accepted" and reported_ids(parts) == [(0, 22), (0, 23)]
    assert all(p["source"] == "CSO" for p in parts)
    assert reported_ids((await get_profiles(csms, 2, 1))[1]) == [(1, 24)]  # K_30
    assert reported_ids((await get_profiles(csms, 3))[1]) == [(0, 22), (0, 23), (1, 24)]  # K_31
    assert reported_ids((await get_profiles(csms, 4, charging_profile_id=[23]))[1]) == [(0, 23)]  # K_32
    assert reported_ids((await get_profiles(csms, 5, 1, stack_level=2))[1]) == [(1, 24)]  # K_33
    assert (await get_profiles(csms, 6, 1, charging_limit_source=["EMS"]))[0] == "NoProfiles"  # K_34
    assert reported_ids((await get_profiles(csms, 7, 0, charging_profile_purpose="TxDefaultProfile"))[1]) == \
        [(0, 23)]  # K_35
    assert (await get_profiles(csms, 8, 1, charging_profile_purpose="TxDefaultProfile",
                               stack_level=0))[0] == "NoProfiles"  # K_36
    report = csms.profile_reports[1][0]["profiles"][0]
    assert report["charging_schedule"][0]["charging_schedule_period"] == [{"start_period": 0, "limit": 30.0}]


async def test_TC_K_37_CS_request_start_with_a_charging_profile(station201: App, csms: CsmsSimulator) -> None:
    body = profile(25, "TxProfile", [(0, 6.0)], kind="Relative")
    request = call.RequestStartTransaction(id_token={"idToken": TAG, "type": "ISO14443"}, remote_start_id=77,
                                           evse_id=1, charging_profile=body)
    assert (await csms.call(CP, request)).status == "Accepted"
    await script(station201, "plug; expect Charging; wait 0.3")
    assert offers(station201, 1)[-1] == 6.0
    status, parts = await get_profiles(csms, 9, 1)
    tx = events(csms)[0]["transactionInfo"]["transactionId"]
    assert status == "Accepted" and parts[0]["profiles"][0]["transaction_id"] == tx
    named = profile(26, "TxProfile", [(0, 6.0)], kind="Relative", transactionId="mine")
    request = call.RequestStartTransaction(id_token={"idToken": TAG, "type": "ISO14443"}, remote_start_id=78,
                                           evse_id=1, charging_profile=named)
    assert (await csms.call(CP, request)).status == "Rejected"  # K05.FR.02


async def test_TC_K_39_40_41_47_CS_get_composite_schedule(station201: App, csms: CsmsSimulator) -> None:
    only = await composite(csms, 1, 300)
    assert only.status == "Accepted" and periods(only) == [(0, 32.0)]  # K_39: the EVSE's own maximum
    assert only.schedule["evse_id"] == 1 and only.schedule["duration"] == 300
    start = datetime.now(UTC).replace(microsecond=0)
    assert await set_profile(csms, 1, profile(27, "TxDefaultProfile", [(0, 20.0)], start=start)) == "Accepted"
    assert await set_profile(csms, 1, profile(28, "TxDefaultProfile", [(0, 10.0)], level=1, start=start,
                                              duration=100)) == "Accepted"
    got = periods(await composite(csms, 1, 300))
    assert [v for _, v in got] == [10.0, 20.0] and 97 <= got[1][0] <= 100  # K_40: stacking
    assert await set_profile(csms, 0, profile(29, "ChargingStationMaxProfile", [(0, 15.0)], start=start)) == \
        "Accepted"
    assert [v for _, v in periods(await composite(csms, 1, 300))] == [10.0, 15.0]  # K_41: purposes combined
    assert [v for _, v in periods(await composite(csms, 1, 300, "W"))] == [6900.0, 10350.0]
    unknown = await composite(csms, 5, 300)
    assert unknown.status == "Rejected" and unknown.status_info["reason_code"] == "UnknownEvse"  # K_47


async def test_smart_charging_ctrlr_variables(station201: App, csms: CsmsSimulator) -> None:
    names = ["Enabled", "Available", "Entries", "LimitChangeSignificance", "PeriodsPerSchedule",
             "ProfileStackLevel", "RateUnit"]
    data = [{"component": {"name": "SmartChargingCtrlr"},
             "variable": {"name": n, **({"instance": "ChargingProfiles"} if n == "Entries" else {})}} for n in names]
    assert await set_profile(csms, 0, profile(30, "TxDefaultProfile", [(0, 20.0)])) == "Accepted"
    result = await csms.call(CP, call.GetVariables(get_variable_data=data))
    got = {r["variable"]["name"]: r.get("attribute_value") for r in result.get_variable_result}
    assert got == {"Enabled": "true", "Available": "true", "Entries": "1", "LimitChangeSignificance": "0.1",
                   "PeriodsPerSchedule": "48", "ProfileStackLevel": "8", "RateUnit": "A,W"}


async def test_a_significant_limit_change_is_told_as_charging_rate_changed(station201: App,
                                                                          csms: CsmsSimulator) -> None:
    tx = await transaction(station201, csms)

    def rate_events() -> list[dict[str, Any]]:
        return [e for e in events(csms) if e["triggerReason"] == "ChargingRateChanged"]

    # 32 A to 30 A is 6 %: below LimitChangeSignificance (10 %), nothing is told.
    assert await set_profile(csms, 1, profile(31, "TxProfile", [(0, 30.0)], transactionId=tx)) == "Accepted"
    await wait_until(lambda: offers(station201, 1)[-1:] == [30.0], 1.0, what="the PWM at 30 A")
    await asyncio.sleep(0.3)
    assert rate_events() == []
    assert await set_profile(csms, 1, profile(31, "TxProfile", [(0, 10.0)], transactionId=tx)) == "Accepted"
    await wait_until(rate_events, 2.0, what="TransactionEvent ChargingRateChanged")
    assert rate_events()[0]["eventType"] == "Updated" and rate_events()[0]["transactionInfo"]["transactionId"] == tx
