"""DC connectors on the bench: the whole charger (`evse run`'s App) with CHAdeMO and GB/T outlets on simulated buses.

Sessions are ordinary OCPP transactions with DC meter values; the DC fault kinds of the script language end
them with their codes; the timeline carries the car bus's frames and the outlet's voltage and current.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from ocpp.v16 import call

from controller.app import App
from hil.benchconfig import dc_config
from hil.csms import CsmsSimulator
from hil.script import parse_script
from hil.simhw import SimHardware
from hil.steps import run_steps
from tests.bench.test_ocpp16_core import TAG, calls, script
from tests.conftest import wait_until


async def _dc_charger(tmp_path: Path, csms: CsmsSimulator, kinds: tuple[str, ...]) -> AsyncIterator[App]:
    app = App(dc_config(kinds), state_dir=tmp_path, csms_url=csms.url)
    await app.start()
    try:
        sim = app.platform
        assert isinstance(sim, SimHardware) and app.ocpp is not None
        await asyncio.wait_for(app.ocpp.connected.wait(), 10)
        for cid, outlet in sim.dc.items():
            outlet.quicken()
            await wait_until(lambda cid=cid: app.supervisor.holds(cid, "insulation"), 5, "the IMD's boot self-test")
        sim.timeline.clear()
        yield app
    finally:
        await app.stop()


@pytest.fixture
async def chademo(tmp_path: Path, csms: CsmsSimulator) -> AsyncIterator[App]:
    async for app in _dc_charger(tmp_path, csms, ("chademo",)):
        yield app


@pytest.fixture
async def station(tmp_path: Path, csms: CsmsSimulator) -> AsyncIterator[App]:
    async for app in _dc_charger(tmp_path, csms, ("chademo", "gbt")):
        yield app


def sim(app: App) -> SimHardware:
    assert isinstance(app.platform, SimHardware)
    return app.platform


def samples(csms: CsmsSimulator, connector: int) -> list[dict[str, Any]]:
    return [s for m in calls(csms, "MeterValues") if m["connectorId"] == connector
            for v in m["meterValue"] for s in v["sampledValue"]]


async def test_a_chademo_session_is_an_ocpp_transaction_with_dc_meter_values(chademo: App,
                                                                            csms: CsmsSimulator) -> None:
    await script(chademo, f"plug; expect Preparing; tap {TAG}; expect Charging within 15")
    outlet = sim(chademo).dc[1]
    await wait_until(lambda: outlet.circuit.current > 50, 15, "current flowing")
    await wait_until(lambda: {s["measurand"] for s in samples(csms, 1)} >= {"SoC", "Power.Offered"}, 5,
                     "a MeterValues with SoC and Power.Offered")
    latest = {s["measurand"]: s for s in samples(csms, 1)[-7:]}
    assert set(latest) == {"Energy.Active.Import.Register", "Power.Active.Import", "Current.Import", "Voltage",
                           "SoC", "Power.Offered"}
    assert "phase" not in latest["Voltage"] and "phase" not in latest["Current.Import"]  # DC: no phases
    assert 300 < float(latest["Voltage"]["value"]) < 500 and float(latest["Current.Import"]["value"]) > 20
    assert latest["SoC"]["unit"] == "Percent" and latest["SoC"]["location"] == "EV"
    assert float(latest["Power.Offered"]["value"]) >= float(latest["Power.Active.Import"]["value"])
    timeline = sim(chademo).timeline
    frames = [o.value for o in timeline.items("can", 1)]
    assert any(f.startswith("tx 108 ") for f in frames) and any(f.startswith("rx 102 ") for f in frames)
    assert max(o.value["A"] for o in timeline.items("dc", 1)) > 20
    # The card stops it: current down, contactors open, the outlet dead before the lock lets go.
    await script(chademo, f"tap {TAG}; expect Finishing within 10")
    await wait_until(lambda: calls(csms, "StopTransaction"), 5, "StopTransaction")
    stop = calls(csms, "StopTransaction")[-1]
    assert stop["reason"] == "Local" and stop["meterStop"] > calls(csms, "StartTransaction")[-1]["meterStart"]
    refused = await run_steps(parse_script("unplug"), sim(chademo))  # the lock holds a live connector
    assert not refused[0].ok and "locked" in refused[0].detail
    await wait_until(lambda: not sim(chademo).locks[1].locked, 10, "the lock released")
    assert outlet.circuit.outlet_voltage < 10
    await script(chademo, "unplug; expect Available within 3")


async def test_both_protocols_charge_at_once_and_a_gbt_connector_pulled_ends_only_its_session(
        station: App, csms: CsmsSimulator) -> None:
    # One at a time: the shared reader gives a card to the connector that has waited longest.
    await script(station, f"plug 1; expect Preparing 1; tap {TAG}; expect Charging 1 within 15; "
                          f"plug 2; expect Preparing 2; tap 04C0FFEE; expect Charging 2 within 15")
    gbt = sim(station).dc[2]
    await wait_until(lambda: gbt.circuit.current > 50 and sim(station).dc[1].circuit.current > 50, 15,
                     "current on both")
    await wait_until(lambda: any(s["measurand"] == "SoC" for s in samples(csms, 2)), 5, "GB/T SoC sampled")
    tx = next(t for t in calls(csms, "StartTransaction") if t["connectorId"] == 2)
    await script(station, "unplug 2; expect Available 2 within 5")  # the connector pulled: CC1 lost
    await wait_until(lambda: len(calls(csms, "StopTransaction")) == 1, 5, "StopTransaction")
    assert calls(csms, "StopTransaction")[0]["reason"] == "EVDisconnected" and tx["idTag"] == "04C0FFEE"
    # The stage is told off at once (its module answers over CAN, so the fall is not tied to when the CSMS hears of
    # the stop: a busy bench had StopTransaction first); the contactors open once its reading (polled every 0.1 s)
    # shows the current down.
    await wait_until(lambda: gbt.circuit.current < 1, 0.5, "the GB/T current down")
    await wait_until(lambda: not sim(station).contactors[2].closed, 0.3, "the GB/T contactors open")
    assert station.status(1) == "Charging"  # the other outlet charges on


@pytest.mark.parametrize(("kind", "code", "vendor"), [
    ("insulation", "GroundFailure", "InsulationFault"),
    ("estop", "OtherError", "EmergencyStop"),
    ("overvoltage", "OverVoltage", "OverVoltage"),
    ("evsilent", "EVCommunicationError", "EvCommunicationLost"),
    ("psu", "InternalError", "PowerStageFault"),
])
async def test_each_dc_fault_opens_the_outlet_and_reaches_the_csms(chademo: App, csms: CsmsSimulator, kind: str,
                                                                  code: str, vendor: str) -> None:
    await script(chademo, f"plug; tap {TAG}; expect Charging within 15")
    outlet = sim(chademo).dc[1]
    await wait_until(lambda: outlet.circuit.current > 50, 15, "current flowing")
    await script(chademo, f"fault {kind}; expect Faulted within 5")
    injected = sim(chademo).timeline.first("fault", 1, kind, 0.0)
    opened = sim(chademo).timeline.first("contactor", 1, "open", injected.t if injected else 0.0)
    assert injected is not None and opened is not None
    assert not outlet.modules.modules[0].on or kind == "evsilent"  # the stage is off (or ramped to 5 A first)
    await wait_until(lambda: any(s["status"] == "Faulted" for s in calls(csms, "StatusNotification")), 5,
                     "Faulted at the CSMS")
    status = [s for s in calls(csms, "StatusNotification") if s["status"] == "Faulted"][-1]
    assert (status["errorCode"], status["vendorErrorCode"]) == (code, vendor)
    await wait_until(lambda: outlet.circuit.outlet_voltage < 60, 1.5, "the outlet below 60 V")
    await script(chademo, f"clear {kind}")
    await wait_until(lambda: not sim(chademo).locks[1].locked, 15, "the connector unlocked")  # the ending's order
    await script(chademo, "unplug; expect Available within 3")


async def test_a_shutdown_while_charging_brings_the_current_down_before_the_contactors_open(chademo: App) -> None:
    await script(chademo, f"plug; tap {TAG}; expect Charging within 15")
    outlet = sim(chademo).dc[1]
    await wait_until(lambda: outlet.circuit.current > 50, 15, "current flowing")
    timeline = sim(chademo).timeline
    asked = timeline.record("mark", 1, "SIGTERM").t
    await chademo.stop()  # what SIGTERM does; the fixture's own stop is then a no-op
    opened = timeline.first("contactor", 1, "open", asked)
    assert opened is not None
    before = [o.value["A"] for o in timeline.items("dc", 1, asked) if o.t <= opened.t]
    assert before and before[-1] <= 5  # a shutdown is no emergency: 5 A first, then open
    assert opened.t - asked < 1.5  # within the stop grace (1 s) and a poll


async def test_unlock_connector_ends_a_dc_session_and_unlocks_only_a_dead_outlet(chademo: App,
                                                                               csms: CsmsSimulator) -> None:
    await script(chademo, f"plug; tap {TAG}; expect Charging within 15")
    outlet = sim(chademo).dc[1]
    await wait_until(lambda: outlet.circuit.current > 50, 15, "current flowing")
    answer = await csms.call(chademo.config.station.id, call.UnlockConnector(connector_id=1))
    assert answer.status == "Unlocked"
    unlocked = sim(chademo).timeline.first("lock", 1, "unlocked", 0.0)
    assert unlocked is not None
    volts = [o.value["V"] for o in sim(chademo).timeline.items("dc", 1) if o.t <= unlocked.t]
    assert volts[-1] < 10  # the CHAdeMO ending ran first: the connector was dead when it let go
    await wait_until(lambda: calls(csms, "StopTransaction"), 5, "StopTransaction")
    assert calls(csms, "StopTransaction")[0]["reason"] == "UnlockCommand"


async def test_a_car_whose_contactors_weld_keeps_a_live_connector_locked(chademo: App) -> None:
    await script(chademo, f"plug; tap {TAG}; expect Charging within 15")
    outlet = sim(chademo).dc[1]
    await wait_until(lambda: outlet.circuit.current > 50, 15, "current flowing")
    car = outlet.car
    assert car is not None
    car.ev.spec.misbehaviours.add("welded")  # type: ignore[attr-defined]  # the bench's ChademoEv
    await script(chademo, f"tap {TAG}; expect Finishing within 10")
    protocol: Any = chademo.protocols[1]
    await wait_until(lambda: not protocol.sequence.active, 20, "the CHAdeMO ending to give up on the car")
    await asyncio.sleep(0.5)
    assert outlet.circuit.outlet_voltage > 300  # the battery is still on the cable
    assert sim(chademo).locks[1].locked and not sim(chademo).contactors[1].closed
    refused = await run_steps(parse_script("unplug"), sim(chademo))
    assert not refused[0].ok
