"""Faults on the bench: each ends in contactor open, session ended and Faulted with the mapped code.

Order and bounds come from the bench's own timeline (when it injected the fault, when the coil dropped).
"""

from __future__ import annotations

from typing import Any

from controller.app import App
from hil.csms import CsmsSimulator
from tests.bench.test_ocpp16_core import TAG, calls, script
from tests.conftest import wait_until


def observed(app: App, kind: str, value: Any, since: float = 0.0) -> float:
    assert app.platform is not None
    found = app.platform.timeline.first(kind, 1, value, since)
    assert found is not None, f"no {kind} {value} on the timeline"
    return found.t


def faulted_status(csms: CsmsSimulator) -> dict[str, Any]:
    return [s for s in calls(csms, "StatusNotification") if s["status"] == "Faulted"][-1]


async def stop_reason(csms: CsmsSimulator) -> str:
    await wait_until(lambda: calls(csms, "StopTransaction"), what="StopTransaction")
    return str(calls(csms, "StopTransaction")[-1]["reason"])


async def test_cp_short_opens_within_100_ms_and_clears_by_itself(charger: App, csms: CsmsSimulator) -> None:
    await script(charger, f"plug; tap {TAG}; expect Charging; fault short; expect Faulted")
    injected = observed(charger, "fault", "short")
    opened = observed(charger, "contactor", "open", injected)
    assert opened - injected < 0.1
    await wait_until(lambda: any(s["status"] == "Faulted" for s in calls(csms, "StatusNotification")),
                     what="Faulted at the CSMS")
    status = faulted_status(csms)
    assert (status["errorCode"], status["vendorErrorCode"]) == ("OtherError", "PilotFault")
    assert await stop_reason(csms) == "EmergencyStop"
    await script(charger, "clear short; expect Preparing")  # not latching: gone with its cause


async def test_a_welded_contactor_is_caught_at_the_next_opening_and_latches(charger: App, csms: CsmsSimulator) -> None:
    await script(charger, f"plug; tap {TAG}; expect Charging; fault weld; ev B; expect Faulted")
    paused = observed(charger, "pilot", "B")
    assert observed(charger, "contactor", "open", paused) - paused < 0.1
    await wait_until(lambda: any(s["status"] == "Faulted" for s in calls(csms, "StatusNotification")),
                     what="Faulted at the CSMS")
    status = faulted_status(csms)
    assert (status["errorCode"], status["vendorErrorCode"]) == ("PowerSwitchFailure", "ContactorWelded")
    assert await stop_reason(csms) == "EmergencyStop"
    await script(charger, "clear weld; wait 0.3; expect Faulted")  # latched until the vehicle leaves
    await script(charger, "unplug; expect Available")


async def test_a_contactor_that_fails_to_close_faults_the_session(charger: App, csms: CsmsSimulator) -> None:
    await script(charger, f"fault stuck; plug; tap {TAG}; expect Faulted")
    closed = observed(charger, "contactor", "closed")
    assert observed(charger, "contactor", "open", closed) - closed < 0.5  # feedback delay 50 ms + watch
    await wait_until(lambda: any(s["status"] == "Faulted" for s in calls(csms, "StatusNotification")),
                     what="Faulted at the CSMS")
    assert faulted_status(csms)["vendorErrorCode"] == "ContactorFailedToClose"


async def test_a_lost_meter_stops_the_session_by_default(charger: App, csms: CsmsSimulator) -> None:
    await script(charger, f"plug; tap {TAG}; expect Charging; fault meter; expect Faulted within 3")
    assert charger.platform is not None and not charger.platform.contactors[1].closed
    await wait_until(lambda: any(s["status"] == "Faulted" for s in calls(csms, "StatusNotification")),
                     what="Faulted at the CSMS")
    assert faulted_status(csms)["errorCode"] == "PowerMeterFailure"
    assert await stop_reason(csms) == "Other"
    await script(charger, "clear meter; expect Preparing within 3")


async def test_a_lost_meter_with_policy_continue_is_flagged_not_silent(tmp_path: Any, csms: CsmsSimulator) -> None:
    from tests.conftest import sim_config

    config = sim_config()
    config.connector[0].meter.loss_policy = "continue"
    app = App(config, state_dir=tmp_path, csms_url=csms.url)
    await app.start()
    try:
        await script(app, f"plug; tap {TAG}; expect Charging; fault meter; wait 1.6; expect Charging")
        await wait_until(lambda: any(s["errorCode"] == "PowerMeterFailure" and s["status"] == "Charging"
                                     for s in calls(csms, "StatusNotification")), what="the flagged status")
        assert app.platform is not None and app.platform.contactors[1].closed
    finally:
        await app.stop()


async def test_a_silent_card_reader_is_reported_on_every_connector_without_stopping(charger: App,
                                                                                  csms: CsmsSimulator) -> None:
    await script(charger, f"plug; tap {TAG}; expect Charging; fault reader")
    await wait_until(lambda: any(s["errorCode"] == "ReaderFailure" and s["status"] == "Charging"
                                 for s in calls(csms, "StatusNotification")), timeout=10, what="ReaderFailure")
    assert charger.platform is not None and charger.platform.contactors[1].closed
    await script(charger, "clear reader")
    await wait_until(lambda: calls(csms, "StatusNotification")[-1]["errorCode"] == "NoError", timeout=10,
                     what="the reader back")
    assert calls(csms, "StatusNotification")[-1]["status"] == "Charging"


async def test_leaving_a_latched_fault_with_no_car_reports_available_only(charger: App, csms: CsmsSimulator) -> None:
    await script(charger, f"plug; tap {TAG}; expect Charging; fault weld; ev B; expect Faulted; clear weld")
    await script(charger, "wait 0.3; expect Faulted; unplug; expect Available; wait 0.3")
    await wait_until(lambda: calls(csms, "StatusNotification")[-1]["status"] == "Available", what="Available")
    reported = [s["status"] for s in calls(csms, "StatusNotification") if s["connectorId"] == 1]
    assert reported[reported.index("Faulted"):] == ["Faulted", "Available"]  # no Preparing without a car


async def test_a_charger_without_the_boot_self_test_starts_clean(tmp_path: Any, csms: CsmsSimulator) -> None:
    from tests.conftest import sim_config

    config = sim_config()
    config.connector[0].contactor.self_test = False
    app = App(config, state_dir=tmp_path, csms_url=csms.url)
    await app.start()
    try:
        await script(app, "wait 0.5; expect Available")
        assert app.supervisor.faults(1) == {}
        await script(app, f"plug; tap {TAG}; expect Charging")
    finally:
        await app.stop()


async def test_the_overdrawing_bench_car_takes_more_than_it_is_offered(charger: App, csms: CsmsSimulator) -> None:
    await script(charger, f"plug; tap {TAG}; expect Charging; draw 16; wait 0.3; fault overcurrent; wait 0.5")
    assert charger.platform is not None
    assert charger.platform.evs[1].drawn_amps == 32 + 8  # 8 A above the 32 A offer, whatever the car asked for
    reading = charger.station.evses[1].reading
    assert reading is not None and max(a for a in reading.current if a is not None) > 32


async def test_closing_and_safe_outputs_are_logged(tmp_path: Any, csms: CsmsSimulator,
                                                   caplog: Any) -> None:
    import logging

    from tests.conftest import sim_config

    caplog.set_level(logging.INFO)
    app = App(sim_config(), state_dir=tmp_path, csms_url=csms.url)
    await app.start()
    await script(app, f"plug; tap {TAG}; expect Charging")
    assert "connector 1: contactor closed (permit, demand, offer, diode hold)" in caplog.text
    await app.stop()
    assert "outputs safe: every contactor open, every pilot in state F" in caplog.text
