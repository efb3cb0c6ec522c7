"""OCPP 1.6 Smart Charging on the bench: profiles from the CSMS end as the PWM the EV sees.

Test names follow the OCTT 1.6 cases they mirror (TC_056-060, 066, 067, 072, 082).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ocpp.v16 import call

from controller.app import App
from controller.clock import iso_utc
from hil.csms import CsmsSimulator
from tests.bench.test_ocpp16_auth import go_offline, send_list
from tests.bench.test_ocpp16_core import CP, TAG, calls, script
from tests.bench.test_safety import offers
from tests.conftest import sim_config, wait_until


def profile(pid: int, purpose: str, periods: list[tuple[int, float]], *, level: int = 0, unit: str = "A",
            kind: str = "Absolute", start: datetime | None = None, duration: int | None = None,
            **extra: Any) -> dict[str, Any]:
    schedule: dict[str, Any] = {"chargingRateUnit": unit,
                                "chargingSchedulePeriod": [{"startPeriod": s, "limit": v} for s, v in periods]}
    if kind != "Relative":
        schedule["startSchedule"] = iso_utc(start or datetime.now(UTC) - timedelta(seconds=1))
    if duration is not None:
        schedule["duration"] = duration
    return {"chargingProfileId": pid, "stackLevel": level, "chargingProfilePurpose": purpose,
            "chargingProfileKind": kind, "chargingSchedule": schedule, **extra}


async def set_profile(csms: CsmsSimulator, connector: int, body: dict[str, Any]) -> str:
    result = await csms.call(CP, call.SetChargingProfile(connector_id=connector, cs_charging_profiles=body))
    return str(result.status)


async def composite(csms: CsmsSimulator, connector: int, duration: int = 3600, unit: str | None = None) -> Any:
    return await csms.call(CP, call.GetCompositeSchedule(connector_id=connector, duration=duration,
                                                         charging_rate_unit=unit))


def periods(result: Any) -> list[tuple[int, float]]:
    # The ocpp package hands nested answers over in snake_case.
    return [(p["start_period"], p["limit"]) for p in result.charging_schedule["charging_schedule_period"]]


def fast_raises(app: App) -> None:
    for protocol in app.protocols.values():
        protocol.pwm_raise_interval = 0.5  # 5 s in service


def last_transaction(csms: CsmsSimulator) -> int:
    return max(csms.transactions)


async def test_TC_056_CS_tx_default_profile_limits_the_next_transaction(charger: App, csms: CsmsSimulator) -> None:
    assert await set_profile(csms, 0, profile(1, "TxDefaultProfile", [(0, 10.0)])) == "Accepted"
    await script(charger, f"plug; tap {TAG}; expect Charging; wait 0.3")
    assert offers(charger, 1) == [10.0]


async def test_TC_057_CS_tx_profile_lowers_the_running_transaction_at_once(charger: App, csms: CsmsSimulator) -> None:
    await script(charger, f"plug; tap {TAG}; expect Charging")
    await wait_until(lambda: calls(csms, "StartTransaction"), what="StartTransaction")
    tx = last_transaction(csms)
    assert await set_profile(csms, 1, profile(2, "TxProfile", [(0, 8.0)], transactionId=tx)) == "Accepted"
    await wait_until(lambda: offers(charger, 1)[-1:] == [8.0], 1.0, what="the PWM at 8 A")
    # It ends with its transaction: the next one runs at the outlet's own 32 A.
    await script(charger, f"wait 0.7; tap {TAG}; expect Finishing; unplug; expect Available")
    assert periods(await composite(csms, 1))[0] == (0, 32.0)


async def test_TC_058_1_CS_a_tx_profile_without_a_transaction_is_rejected(charger: App, csms: CsmsSimulator) -> None:
    assert await set_profile(csms, 1, profile(3, "TxProfile", [(0, 8.0)])) == "Rejected"


async def test_TC_058_2_CS_a_tx_profile_for_another_transaction_is_rejected(charger: App,
                                                                            csms: CsmsSimulator) -> None:
    await script(charger, f"plug; tap {TAG}; expect Charging")
    await wait_until(lambda: calls(csms, "StartTransaction"), what="StartTransaction")
    wrong = last_transaction(csms) + 100
    assert await set_profile(csms, 1, profile(4, "TxProfile", [(0, 8.0)], transactionId=wrong)) == "Rejected"


async def test_TC_059_CS_remote_start_with_a_charging_profile(charger: App, csms: CsmsSimulator) -> None:
    body = profile(5, "TxProfile", [(0, 6.0)], kind="Relative")
    result = await csms.call(CP, call.RemoteStartTransaction(id_tag=TAG, connector_id=1, charging_profile=body))
    assert result.status == "Accepted"
    await script(charger, "plug; expect Charging; wait 0.3")
    assert offers(charger, 1)[-1] == 6.0
    assert [p[1] for p in periods(await composite(csms, 1, 60))] == [6.0]


async def test_TC_060_CS_remote_start_with_a_non_tx_profile_is_rejected(charger: App, csms: CsmsSimulator) -> None:
    body = profile(6, "TxDefaultProfile", [(0, 6.0)])
    result = await csms.call(CP, call.RemoteStartTransaction(id_tag=TAG, connector_id=1, charging_profile=body))
    assert result.status == "Rejected"
    await script(charger, "plug; wait 0.5; expect Preparing")


async def test_TC_066_CS_get_composite_schedule(charger: App, csms: CsmsSimulator) -> None:
    start = datetime.now(UTC).replace(microsecond=0)
    assert await set_profile(csms, 0, profile(7, "ChargePointMaxProfile", [(0, 20.0)], start=start)) == "Accepted"
    assert await set_profile(csms, 1, profile(8, "TxDefaultProfile", [(0, 24.0), (600, 10.0)],
                                              start=start)) == "Accepted"
    result = await composite(csms, 1, 1200)
    assert result.status == "Accepted" and result.connector_id == 1
    assert result.charging_schedule["charging_rate_unit"] == "A" and result.charging_schedule["duration"] == 1200
    got = periods(result)
    # min(20, 24) now, min(20, 10) from 600 s after the start (the answer starts now, a second or so later).
    assert [v for _, v in got] == [20.0, 10.0] and 597 <= got[1][0] <= 600
    watts = periods(await composite(csms, 1, 60, "W"))
    assert watts == [(0, 13800.0)]  # 20 A x 3 x 230 V
    assert periods(await composite(csms, 0, 60)) == [(0, 20.0)]  # the station as a whole: its maximum
    assert (await composite(csms, 7, 60)).status == "Rejected"


async def test_TC_067_CS_clear_charging_profile(charger: App, csms: CsmsSimulator) -> None:
    assert await set_profile(csms, 1, profile(9, "TxDefaultProfile", [(0, 10.0)])) == "Accepted"
    assert await set_profile(csms, 1, profile(10, "TxDefaultProfile", [(0, 12.0)], level=1)) == "Accepted"
    assert (await csms.call(CP, call.ClearChargingProfile(id=9))).status == "Accepted"
    assert (await csms.call(CP, call.ClearChargingProfile(id=9))).status == "Unknown"
    assert periods(await composite(csms, 1, 60)) == [(0, 12.0)]
    clear = call.ClearChargingProfile(connector_id=1, charging_profile_purpose="TxDefaultProfile", stack_level=1)
    assert (await csms.call(CP, clear)).status == "Accepted"
    assert periods(await composite(csms, 1, 60)) == [(0, 32.0)]


async def test_TC_072_CS_stacking_profiles_change_within_a_second_of_the_boundary(charger: App,
                                                                                   csms: CsmsSimulator) -> None:
    fast_raises(charger)
    assert await set_profile(csms, 0, profile(11, "TxDefaultProfile", [(0, 16.0)])) == "Accepted"
    await script(charger, f"plug; tap {TAG}; expect Charging; wait 0.3")
    boundary = datetime.now(UTC) + timedelta(seconds=2)
    assert await set_profile(csms, 0, profile(12, "TxDefaultProfile", [(0, 8.0)], level=1, start=boundary,
                                              duration=2)) == "Accepted"
    await wait_until(lambda: offers(charger, 1)[-1:] == [8.0], 4.0, what="the PWM at 8 A")
    late = (datetime.now(UTC) - boundary).total_seconds()
    assert -0.05 <= late < 1.0
    await wait_until(lambda: offers(charger, 1)[-1:] == [16.0], 4.0, what="the PWM back at 16 A")
    late = (datetime.now(UTC) - boundary - timedelta(seconds=2)).total_seconds()
    assert -0.05 <= late < 1.0
    assert offers(charger, 1) == [16.0, 8.0, 16.0]


async def test_TC_082_CS_tx_default_profile_applies_to_the_running_transaction(charger: App,
                                                                              csms: CsmsSimulator) -> None:
    await script(charger, f"plug; tap {TAG}; expect Charging; wait 0.3")
    assert await set_profile(csms, 0, profile(13, "TxDefaultProfile", [(0, 12.0)])) == "Accepted"
    await wait_until(lambda: offers(charger, 1)[-1:] == [12.0], 1.0, what="the PWM at 12 A")


async def test_a_limit_below_6_a_suspends_and_never_stops(charger: App, csms: CsmsSimulator) -> None:
    fast_raises(charger)
    await script(charger, f"plug; tap {TAG}; expect Charging")
    await wait_until(lambda: calls(csms, "StartTransaction"), what="StartTransaction")
    tx = last_transaction(csms)
    assert await set_profile(csms, 1, profile(14, "TxProfile", [(0, 0.0)], transactionId=tx)) == "Accepted"
    await script(charger, "expect SuspendedEVSE within 2")
    assert "StopTransaction" not in csms.actions()
    assert (await csms.call(CP, call.ClearChargingProfile(id=14))).status == "Accepted"
    await script(charger, "expect Charging within 3")


async def test_station_maximum_in_watts_and_the_site_limit_combine(tmp_path: Path, csms: CsmsSimulator) -> None:
    config = sim_config()
    config.station.site_current_limit = 14.0
    app = App(config, state_dir=tmp_path, csms_url=csms.url)
    await app.start()
    try:
        assert app.ocpp is not None
        await wait_until(lambda: app.ocpp is not None and app.ocpp.connected.is_set(), 10, what="the CSMS")
        fast_raises(app)
        # 6900 W is 10 A on three phases of 230 V: below the 14 A site limit, so it decides.
        assert await set_profile(csms, 0, profile(15, "ChargePointMaxProfile", [(0, 6900.0)], unit="W")) == "Accepted"
        await script(app, f"plug; tap {TAG}; expect Charging; wait 0.3")
        assert offers(app, 1) == [10.0]
        assert (await csms.call(CP, call.ClearChargingProfile(id=15))).status == "Accepted"
        await wait_until(lambda: offers(app, 1)[-1:] == [14.0], 2.0, what="the site limit alone")
    finally:
        await app.stop()


async def test_profiles_survive_a_restart_and_apply_offline(tmp_path: Path, csms: CsmsSimulator) -> None:
    app = App(sim_config(), state_dir=tmp_path, csms_url=csms.url)
    await app.start()
    try:
        assert app.ocpp is not None
        await wait_until(app.ocpp.connected.is_set, 10, what="the CSMS")
        assert await set_profile(csms, 0, profile(16, "TxDefaultProfile", [(0, 9.0)])) == "Accepted"
        entry = {"idTag": TAG, "idTagInfo": {"status": "Accepted"}}
        assert await send_list(csms, 1, "Full", [entry]) == "Accepted"
    finally:
        await app.stop()
    app = App(sim_config(), state_dir=tmp_path, csms_url=csms.url)
    await app.start()
    try:
        assert app.ocpp is not None and list(app.ocpp.smart.profiles) == [16]
        await wait_until(app.ocpp.connected.is_set, 10, what="the CSMS")
        await go_offline(app, csms)
        await script(app, f"plug; tap {TAG}; expect Charging; wait 0.3")  # LocalAuthorizeOffline, the list
        assert offers(app, 1) == [9.0]
    finally:
        await app.stop()


async def test_smart_charging_configuration_keys(charger: App, csms: CsmsSimulator) -> None:
    keys = ["ChargeProfileMaxStackLevel", "ChargingScheduleAllowedChargingRateUnit", "ChargingScheduleMaxPeriods",
            "MaxChargingProfilesInstalled", "SupportedFeatureProfiles"]
    result = await csms.call(CP, call.GetConfiguration(key=keys))
    got = {k["key"]: (k["value"], k["readonly"]) for k in result.configuration_key}
    assert got["ChargeProfileMaxStackLevel"] == ("8", True)
    assert got["ChargingScheduleAllowedChargingRateUnit"] == ("Current,Power", True)
    assert got["ChargingScheduleMaxPeriods"] == ("48", True)
    assert got["MaxChargingProfilesInstalled"] == ("32", True)
    assert "SmartCharging" in got["SupportedFeatureProfiles"][0].split(",")


async def test_bad_profiles_are_rejected(charger: App, csms: CsmsSimulator) -> None:
    assert await set_profile(csms, 1, profile(17, "ChargePointMaxProfile", [(0, 10.0)])) == "Rejected"  # not on 0
    assert await set_profile(csms, 0, profile(18, "TxDefaultProfile", [(0, 10.0)], level=9)) == "Rejected"
    assert await set_profile(csms, 0, profile(19, "TxDefaultProfile", [(5, 10.0)])) == "Rejected"  # not from 0
    assert await set_profile(csms, 0, profile(20, "TxDefaultProfile", [(0, 10.0)],
                                              kind="Recurring")) == "Rejected"  # no recurrencyKind
    assert await set_profile(csms, 3, profile(21, "TxDefaultProfile", [(0, 10.0)])) == "Rejected"  # no connector 3
    assert periods(await composite(csms, 1, 60)) == [(0, 32.0)]


async def test_the_boundary_benchmark_measures_profile_periods_reaching_the_pwm(tmp_path: Path) -> None:
    from hil.perf import measure_profile_boundary

    config = sim_config()
    config.ocpp.csms_url = ""  # the built-in CSMS
    result = await measure_profile_boundary(config, tmp_path, 2)
    assert result["n"] == 2 and 0 <= result["p50_ms"] <= result["max_ms"] < 1000  # the one second
