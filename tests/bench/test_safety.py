"""The socket build's safety chain on the bench: pilot and diode, PP, RCM, cable lock, overcurrent, temperature.

Every fault ends in: contactor open, session ended, Faulted with the catalogue's code at the CSMS. Order and
bounds come from the bench's own timeline (when it injected the fault, when the coil dropped).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
from ocpp.v16 import call

from controller.app import App
from controller.domain.faults import Fault
from hil.benchconfig import socket_config
from hil.csms import CsmsSimulator
from tests.bench.test_ocpp16_core import CP, TAG, calls, script
from tests.conftest import wait_until

# IEC 61851-1 asks for 100 ms at most from a fault to the contactor open.
IEC_BOUND = 0.1


def seen(app: App, kind: str, value: Any, since: float = 0.0, connector: int | None = 1) -> float:
    assert app.platform is not None
    found = app.platform.timeline.first(kind, connector, value, since)
    assert found is not None, f"no {kind} {value} on the timeline: {app.platform.timeline.as_json()}"
    return found.t


def offers(app: App, connector: int) -> list[float]:
    """Amps offered on a connector's PWM, in order."""
    return [round(v * 0.6, 1) for v in values(app, "pwm", connector) if 0 < v < 100]


def values(app: App, kind: str, connector: int = 1) -> list[Any]:
    assert app.platform is not None
    return [o.value for o in app.platform.timeline.items(kind, connector)]


async def faulted_with(csms: CsmsSimulator, error_code: str, vendor_code: str) -> None:
    def found() -> bool:
        return any(s["status"] == "Faulted" and s["errorCode"] == error_code and s.get("vendorErrorCode") == vendor_code
                   for s in calls(csms, "StatusNotification"))
    await wait_until(found, what=f"Faulted {error_code}/{vendor_code} at the CSMS")


async def stopped_with(csms: CsmsSimulator, reason: str) -> None:
    await wait_until(lambda: [s["reason"] for s in calls(csms, "StopTransaction")] == [reason],
                     what=f"StopTransaction {reason}")


async def fault_while_charging(app: App, csms: CsmsSimulator, kind: str, error_code: str, vendor_code: str) -> float:
    """Charge, inject ``kind``; assert open within the IEC bound, Faulted and EmergencyStop. Returns the delay."""
    await script(app, f"plug; tap {TAG}; expect Charging; wait 0.2; fault {kind}; expect Faulted within 2")
    injected = seen(app, "fault", kind)
    delay = seen(app, "contactor", "open", injected) - injected
    assert delay < IEC_BOUND
    await faulted_with(csms, error_code, vendor_code)
    await stopped_with(csms, "EmergencyStop")
    return delay


async def refused(app: App, csms: CsmsSimulator, before_tap: str, error_code: str, vendor_code: str) -> None:
    """``before_tap`` (which plugs in), then a card: Faulted with the code, the contactor never closed."""
    await script(app, f"{before_tap}; tap {TAG}; expect Faulted within 2")
    assert "closed" not in values(app, "contactor")
    await faulted_with(csms, error_code, vendor_code)


def inject_while_the_loop_is_blocked(app: App, kind: str, block: float = 0.4) -> None:
    """Inject ``kind`` from another thread while the event loop is stuck: only the thread that sees it can act."""
    assert app.platform is not None
    injector = threading.Timer(0.05, app.platform.inject, args=(kind, 1, True))
    injector.start()
    time.sleep(block)  # the loop thread: no state machine, no OCPP, no asyncio callback runs meanwhile
    injector.join()


# ------------------------------------------------------------------ pilot


@pytest.mark.parametrize("kind", ["short", "adc", "diode", "rcm", "lock"])
async def test_a_fault_opens_from_the_thread_that_saw_it_whatever_the_car_and_the_loop_do(
        socket: App, csms: CsmsSimulator, kind: str) -> None:
    # ev C: a car that keeps asking for power whatever the PWM says, so nothing but the supervisor opens.
    await script(socket, f"plug; tap {TAG}; expect Charging; ev C; wait 0.2")
    inject_while_the_loop_is_blocked(socket, kind)
    injected = seen(socket, "fault", kind)
    assert seen(socket, "contactor", "open", injected) - injected < IEC_BOUND
    await script(socket, "expect Faulted within 2")


async def test_the_session_runs_in_the_iec_order(socket: App, csms: CsmsSimulator) -> None:
    await script(socket, f"plug; tap {TAG}; expect Charging")
    # RCM tested at plug-in, cable locked, then the PWM, then the EV's request, then the contactor.
    tested = seen(socket, "rcm", "ok")
    locked = seen(socket, "lock", "locked")
    pwm = next(o.t for o in socket.platform.timeline.items("pwm", 1) if 0 < o.value < 100)  # type: ignore[union-attr]
    closed = seen(socket, "contactor", "closed")
    assert max(tested, locked) < pwm < closed
    assert closed - seen(socket, "pilot", "C") < 3.0  # IEC: close within 3 s of B2 -> C2
    await script(socket, f"wait 0.7; tap {TAG}; expect Finishing")
    await wait_until(lambda: values(socket, "lock")[-1:] == ["unlocked"], what="the cable to be unlocked")
    opened = seen(socket, "contactor", "open", closed)
    assert seen(socket, "pwm", 100.0, closed) < opened < seen(socket, "lock", "unlocked", closed)
    await stopped_with(csms, "Local")


async def test_a_missing_diode_while_charging_opens_at_once(socket: App, csms: CsmsSimulator) -> None:
    await fault_while_charging(socket, csms, "diode", "OtherError", "DiodeFault")
    await script(socket, "clear diode; wait 0.3; expect Faulted; unplug; expect Available")


async def test_a_missing_diode_before_charging_means_the_contactor_never_closes(socket: App,
                                                                               csms: CsmsSimulator) -> None:
    await refused(socket, csms, "fault diode; plug", "OtherError", "DiodeFault")


async def test_cp_short_to_pe_on_the_socket_build(socket: App, csms: CsmsSimulator) -> None:
    await fault_while_charging(socket, csms, "short", "OtherError", "PilotFault")


async def test_a_dead_pilot_adc_opens_like_a_short_and_recovers_when_it_reads_again(socket: App,
                                                                                   csms: CsmsSimulator) -> None:
    # An MCP3008 stuck at 0 reads -15 V: in no state's band. The last good state (C) must not stand.
    await fault_while_charging(socket, csms, "adc", "OtherError", "PilotUnreadable")
    await script(socket, "clear adc; expect Preparing within 2")


async def test_state_d_without_ventilation_is_refused(socket: App, csms: CsmsSimulator) -> None:
    await refused(socket, csms, "plug; ev D", "OtherError", "VentilationNotAvailable")
    await script(socket, "ev B; expect Preparing within 2")


async def test_state_d_charges_where_the_site_ventilates(tmp_path: Path, csms: CsmsSimulator) -> None:
    app = App(socket_config(connector={"pilot": {"ventilation": True}}), state_dir=tmp_path, csms_url=csms.url)
    await app.start()
    try:
        await script(app, f"plug; ev D; tap {TAG}; expect Charging")
    finally:
        await app.stop()


async def test_an_ev_that_ignores_the_stop_is_cut_off_after_the_iec_delay(socket: App, csms: CsmsSimulator) -> None:
    # ev C: S2 stays closed whatever the PWM does. ev_stop_timeout is 0.5 s on the bench (6 s by default).
    await script(socket, f"plug; tap {TAG}; expect Charging; ev C; wait 0.7; tap {TAG}; expect Finishing; wait 0.7")
    withdrawn = seen(socket, "pwm", 100.0)
    held = seen(socket, "contactor", "open", withdrawn) - withdrawn
    assert 0.5 <= held < 0.5 + IEC_BOUND
    await stopped_with(csms, "Local")


async def test_a_slow_ev_keeps_its_contactor_until_it_leaves_c(socket: App, csms: CsmsSimulator) -> None:
    await script(socket, f"plug; tap {TAG}; expect Charging; lag 0.2; wait 0.7; tap {TAG}; expect Finishing; wait 0.4")
    withdrawn = seen(socket, "pwm", 100.0)
    left_c = seen(socket, "pilot", "B", withdrawn)
    assert left_c - withdrawn >= 0.2  # the car took its time (its lag), and kept its contactor meanwhile
    assert 0 <= seen(socket, "contactor", "open", withdrawn) - left_c < IEC_BOUND


async def test_an_ev_asleep_in_b2_is_woken_by_a_state_f_pulse(tmp_path: Path, csms: CsmsSimulator) -> None:
    app = App(socket_config(connector={"pilot": {"wakeup_after": 0.3}}), state_dir=tmp_path, csms_url=csms.url)
    await app.start()
    try:
        app.protocols[1].wakeup_pulse = 0.2
        await script(app, f"plug; ev sleep; tap {TAG}; expect Charging within 3")
        offered = next(o.t for o in app.platform.timeline.items("pwm", 1) if 0 < o.value < 100)  # type: ignore[union-attr]
        pulse = seen(app, "pwm", 0.0, offered)
        assert 0.3 <= pulse - offered < 0.5
        assert seen(app, "pilot", "C", pulse) - pulse >= 0.2
        assert [s["reason"] for s in calls(csms, "StopTransaction")] == []  # the pulse is not an unplug
    finally:
        await app.stop()


# -------------------------------------------------------------- proximity


async def test_the_cable_rating_caps_the_offer(socket: App, csms: CsmsSimulator) -> None:
    assert socket.platform is not None
    socket.platform.evs[1].set_behaviour(cable_ohms=680.0)  # a 20 A cable on a 32 A socket
    await script(socket, f"plug; tap {TAG}; expect Charging")
    assert [v for v in values(socket, "pwm") if 0 < v < 100] == [pytest.approx(20 / 0.6, abs=0.01)]


async def test_a_shorted_pp_resistor_is_a_proximity_fault(socket: App, csms: CsmsSimulator) -> None:
    await refused(socket, csms, "fault pp; plug", "OtherError", "ProximityFault")
    await script(socket, "unplug; clear pp; expect Available")


# -------------------------------------------------------------------- RCM


async def test_an_rcm_trip_opens_at_once_and_latches_until_unplugged(socket: App, csms: CsmsSimulator) -> None:
    await fault_while_charging(socket, csms, "rcm", "GroundFailure", "RcmTripped")
    await script(socket, "clear rcm; wait 0.5; expect Faulted; unplug; expect Available")


async def test_an_rcm_that_fails_its_self_test_blocks_charging(socket: App, csms: CsmsSimulator) -> None:
    await refused(socket, csms, "fault rcmdead; plug", "GroundFailure", "RcmSelfTestFailed")
    assert not offers(socket, 1)  # no PWM before the RCM is proven


async def test_each_vehicle_gets_its_own_rcm_test(socket: App, csms: CsmsSimulator) -> None:
    await script(socket, f"plug; tap {TAG}; expect Charging; wait 0.7; tap {TAG}; expect Finishing; unplug")
    await script(socket, "expect Available")
    assert not socket.supervisor.holds(1, "rcm")  # the passed test left with the vehicle
    assert socket.platform is not None
    second = socket.platform.timeline.record("bench", None, "second vehicle").t
    # The RCM died while the outlet was idle: the next car's own test finds it before any PWM.
    await script(socket, f"fault rcmdead; plug; tap {TAG2}; expect Faulted within 3")
    assert not [o for o in socket.platform.timeline.items("pwm", 1, second) if 0 < o.value < 100]
    assert seen_after(socket, "contactor", "closed", second) is None
    await faulted_with(csms, "GroundFailure", "RcmSelfTestFailed")


def seen_after(app: App, kind: str, value: Any, since: float) -> float | None:
    assert app.platform is not None
    found = app.platform.timeline.first(kind, 1, value, since)
    return None if found is None else found.t


async def test_the_rcm_is_tested_again_while_idle(tmp_path: Path, csms: CsmsSimulator) -> None:
    app = App(socket_config(connector={"rcm": {"selftest_interval": 1.0}}), state_dir=tmp_path, csms_url=csms.url)
    await app.start()
    try:
        assert app.platform is not None
        app.platform.timeline.clear()
        await script(app, "wait 2.3")
        tests = values(app, "rcm")
        # One a second: the start-up test (if it ran after the clear) and two more, each a trip and a release.
        assert tests in (["tripped", "ok"] * 2, ["tripped", "ok"] * 3)
        await script(app, "fault rcmdead; wait 1.2; expect Faulted")
        assert app.supervisor.faults(1).keys() == {Fault.RCM_SELFTEST_FAILED}
    finally:
        await app.stop()


async def test_rcm_auto_reclose_is_a_policy(tmp_path: Path, csms: CsmsSimulator) -> None:
    app = App(socket_config(connector={"rcm": {"auto_reclose": True, "reclose_attempts": 1}}), state_dir=tmp_path,
              csms_url=csms.url)
    await app.start()
    try:
        await script(app, f"plug; tap {TAG}; expect Charging; fault rcm; expect Faulted; clear rcm")
        # Released after reclose_delay (0.3 s) and a passed self-test, with the vehicle still connected.
        await script(app, "expect Preparing within 2")
        await wait_until(lambda: app.supervisor.holds(1, "rcm"), what="the self-test after the re-close")
        await script(app, "fault rcm; expect Faulted; clear rcm; wait 0.8; expect Faulted")  # one attempt only
    finally:
        await app.stop()


# ------------------------------------------------------------------- lock


async def test_a_lock_that_gives_way_while_charging_opens_at_once(socket: App, csms: CsmsSimulator) -> None:
    await fault_while_charging(socket, csms, "lock", "ConnectorLockFailure", "LockFailure")
    # Repaired and unplugged: one test move (lock, unlock) clears the latch.
    await script(socket, "clear lock; wait 0.3; expect Faulted; unplug; expect Available within 2")
    assert values(socket, "lock")[-2:] == ["locked", "unlocked"]


async def test_a_lock_that_will_not_lock_means_no_pwm(socket: App, csms: CsmsSimulator) -> None:
    await refused(socket, csms, "fault lock; plug", "ConnectorLockFailure", "LockFailure")
    assert not offers(socket, 1)


async def test_TC_024_CS_unlock_connector_ends_the_transaction_and_frees_the_cable(socket: App,
                                                                                csms: CsmsSimulator) -> None:
    await script(socket, f"plug; tap {TAG}; expect Charging; ev B; wait 0.2")
    result = await csms.call(CP, call.UnlockConnector(connector_id=1))
    assert result.status == "Unlocked"
    assert socket.platform is not None and not socket.platform.locks[1].locked
    await stopped_with(csms, "UnlockCommand")


async def test_TC_030_CS_unlock_failure_is_reported(socket: App, csms: CsmsSimulator) -> None:
    await script(socket, f"plug; tap {TAG}; expect Charging; ev B; wait 0.2")
    assert socket.platform is not None
    socket.platform.locks[1].jammed = True  # stuck in place: it neither moves nor gives way
    result = await csms.call(CP, call.UnlockConnector(connector_id=1))
    assert result.status == "UnlockFailed"
    await faulted_with(csms, "ConnectorLockFailure", "LockFailure")


async def test_unlock_on_ev_side_disconnect_false_keeps_the_cable_locked(socket: App, csms: CsmsSimulator) -> None:
    result = await csms.call(CP, call.ChangeConfiguration(key="UnlockConnectorOnEVSideDisconnect", value="false"))
    assert result.status == "Accepted"
    await script(socket, f"plug; tap {TAG}; expect Charging; unplug; expect Available; wait 0.3")
    assert socket.platform is not None and socket.platform.locks[1].locked  # the cable stays with the station
    assert (await csms.call(CP, call.UnlockConnector(connector_id=1))).status == "Unlocked"
    assert not socket.platform.locks[1].locked


# ---------------------------------------------------- overcurrent, temperature


async def test_overcurrent_lowers_the_offer_then_stops(socket: App, csms: CsmsSimulator) -> None:
    await script(socket, f"plug; tap {TAG}; expect Charging; wait 0.2; fault overcurrent; expect Faulted within 3")
    injected = seen(socket, "fault", "overcurrent")
    duties = [o for o in socket.platform.timeline.items("pwm", 1, injected) if 0 < o.value < 100]  # type: ignore[union-attr]
    # 32 A offered, 40 A drawn: after the grace (0.3 s) the offer drops to 24 A; the EV still overdraws.
    assert [o.value for o in duties] == [pytest.approx(24 / 0.6, abs=0.01)]
    assert duties[0].t - injected >= 0.3
    assert seen(socket, "contactor", "open", injected) - duties[0].t >= 0.3
    await faulted_with(csms, "OverCurrentFailure", "OverCurrent")
    await stopped_with(csms, "EmergencyStop")


async def test_a_slow_ev_within_the_grace_is_no_overcurrent(tmp_path: Path, csms: CsmsSimulator) -> None:
    app = App(socket_config(), state_dir=tmp_path, csms_url=csms.url)
    await app.start()
    try:
        assert app.platform is not None
        app.platform.hot = 65.0  # above derate_at (60), below stop_at (75)
        await script(app, f"plug; tap {TAG}; expect Charging; lag 0.2; fault temp; wait 1; expect Charging")
        assert [v for v in values(app, "pwm") if 0 < v < 100][-1] == pytest.approx(10 / 0.6, abs=0.01)
        assert not calls(csms, "StopTransaction")
    finally:
        await app.stop()


async def test_over_temperature_stops_and_recovers_with_hysteresis(socket: App, csms: CsmsSimulator) -> None:
    await script(socket, f"plug; tap {TAG}; expect Charging; wait 0.2; fault temp; expect Faulted within 2")
    await faulted_with(csms, "HighTemperature", "OverTemperature")
    await stopped_with(csms, "EmergencyStop")
    await script(socket, "clear temp; expect Preparing within 2")


async def test_a_temperature_sensor_that_fails_derates_rather_than_stops(socket: App, csms: CsmsSimulator,
                                                                         caplog: pytest.LogCaptureFixture) -> None:
    await script(socket, f"plug; tap {TAG}; expect Charging")
    assert socket.platform is not None
    socket.platform.temperature_path(1).write_text("garbage\n")
    await wait_until(lambda: offers(socket, 1)[-1:] == [10.0], what="the derated offer")
    await script(socket, "expect Charging")
    assert "temperature sensor failed (no temperature in 'garbage'); derating" in caplog.text


async def test_raising_the_offer_waits_for_the_iec_interval(socket: App, csms: CsmsSimulator) -> None:
    assert socket.platform is not None
    socket.protocols[1].pwm_raise_interval = 1.0  # 5 s in service
    socket.platform.hot = 65.0
    await script(socket, f"plug; tap {TAG}; expect Charging; fault temp; wait 0.3; clear temp; wait 1.5")
    duties = [o for o in socket.platform.timeline.items("pwm", 1) if 0 < o.value < 100]
    assert [round(o.value, 2) for o in duties] == [53.33, 16.67, 53.33]
    assert duties[1].t - seen(socket, "fault", "temp") < 0.2  # lowering: at once
    assert duties[2].t - duties[1].t >= 1.0  # raising: not before the interval


# ---------------------------------------------------------------------- LED


async def test_the_status_led_follows_the_connector_and_flashes_for_cards(socket: App, csms: CsmsSimulator) -> None:
    assert socket.platform is not None
    await script(socket, "plug; expect Preparing; tap DEADBEEF; wait 1")
    assert values(socket, "led").count("R") == 3  # rejected: three red flashes
    await script(socket, f"tap {TAG}; expect Charging; wait 1")
    assert socket.platform.leds[1].colour == (0, 0, 1)  # charging: steady blue
    await script(socket, "fault short; expect Faulted; wait 0.5")
    assert "R" in values(socket, "led")[-3:]


# ------------------------------------------------------------ two connectors

TAG2 = "04A1B2C4"


async def test_two_connectors_share_the_reader_and_the_site_limit(tmp_path: Path, csms: CsmsSimulator) -> None:
    app = App(socket_config(2), state_dir=tmp_path, csms_url=csms.url)  # 40 A site, 32 A sockets
    await app.start()
    try:
        for protocol in app.protocols.values():
            protocol.pwm_raise_interval = 0.5  # 5 s in service
        # The card goes to the connector plugged in first, whichever it is.
        await script(app, f"plug 2; wait 0.1; plug 1; tap {TAG}; expect Charging 2")
        assert app.status(1) == "Preparing" and offers(app, 2) == [32.0]
        await script(app, f"wait 0.7; tap {TAG2}; expect Charging 1; wait 0.2")
        # Both charging: 20 A each; connector 1 starts at its share, connector 2 comes down at once.
        assert offers(app, 1) == [20.0] and offers(app, 2) == [32.0, 20.0]
        await script(app, f"wait 0.5; tap {TAG}; expect Finishing 2; wait 0.8")
        assert offers(app, 1) == [20.0, 32.0]  # back up, after the raise interval
        starts = calls(csms, "StartTransaction")
        assert [(s["connectorId"], s["idTag"]) for s in starts] == [(2, TAG), (1, TAG2)]
    finally:
        await app.stop()


async def test_a_site_limit_too_small_for_two_queues_the_second(tmp_path: Path, csms: CsmsSimulator) -> None:
    app = App(socket_config(2, station={"site_current_limit": 10.0}), state_dir=tmp_path, csms_url=csms.url)
    await app.start()
    try:
        await script(app, f"plug 1; tap {TAG}; expect Charging 1; plug 2; wait 0.7; tap {TAG2}; "
                          "expect SuspendedEVSE 2; wait 0.3")
        assert offers(app, 1) == [10.0] and offers(app, 2) == []
        assert app.platform is not None and not app.platform.contactors[2].closed
        await script(app, f"tap {TAG}; expect Charging 2 within 3")
        assert offers(app, 2) == [10.0]
    finally:
        await app.stop()


async def test_the_fault_benchmark_measures_each_kind_on_a_busy_two_connector_charger() -> None:
    from hil.faultperf import measure_faults

    results = await measure_faults(2, ("short", "adc", "weld", "meter"))
    assert {k: v["reaction"]["n"] for k, v in results.items() if k != "load"} == {"short": 2, "adc": 2, "weld": 2,
                                                                                  "meter": 2}
    assert results["short"]["reaction"]["max_ms"] < IEC_BOUND * 1000
    assert results["meter"]["detection"]["n"] == 2 and results["meter"]["configured_wait_s"] == 0.2
    assert results["load"]["connector_2_status"] == "Charging"  # the other connector charged throughout


def test_the_fault_benchmark_refuses_unknown_kinds(capsys: pytest.CaptureFixture[str]) -> None:
    from hil.cli import main

    assert main(["perf", "--faults", "--kinds", "short,smoke"]) == 2
    assert "unknown fault kind(s) smoke" in capsys.readouterr().err
