"""Charging profiles on a DC outlet: the power stage's current limit and what CHAdeMO tells the car follow them."""

from __future__ import annotations

from typing import Any

from ocpp.v16 import call

from controller.app import App
from hil.csms import CsmsSimulator
from tests.bench.test_dc import chademo, sim  # noqa: F401  (the fixture)
from tests.bench.test_ocpp16_core import TAG, script
from tests.bench.test_ocpp16_smart_charging import profile
from tests.conftest import wait_until


async def set_profile(csms: CsmsSimulator, connector: int, body: dict[str, Any]) -> str:
    result = await csms.call("TEST-DC", call.SetChargingProfile(connector_id=connector, cs_charging_profiles=body))
    return str(result.status)


async def test_a_watts_profile_caps_a_chademo_session_and_a_lower_one_brings_it_down(chademo: App,  # noqa: F811
                                                                                  csms: CsmsSimulator) -> None:
    outlet = sim(chademo).dc[1]
    assert await set_profile(csms, 1, profile(1, "TxDefaultProfile", [(0, 10000.0)], unit="W")) == "Accepted"
    await script(chademo, f"plug; expect Preparing; tap {TAG}; expect Charging within 15")
    await wait_until(lambda: outlet.circuit.current > 5, 15, "current flowing")
    volts = chademo.protocols[1].volts()
    cap = 10000.0 / volts
    await wait_until(lambda: outlet.circuit.current > cap * 0.8, 15, "the current near the cap")
    assert max(o.value["A"] for o in sim(chademo).timeline.items("dc", 1)) <= cap + 0.5
    assert await set_profile(csms, 1, profile(2, "TxDefaultProfile", [(0, 5000.0)], unit="W", level=1)) == "Accepted"
    await wait_until(lambda: outlet.circuit.current <= 5000.0 / volts + 0.5, 3, "the current halved")
    # CHAdeMO 0x108 byte 3 is the charger's available current, told at the start (10 kW at the stage's own
    # 500 V before the car's maximum is known); a car without dynamic control is held by the stage's limit.
    frames = [o.value for o in sim(chademo).timeline.items("can", 1) if o.value.startswith("tx 108 ")]
    assert {int(f.split()[2][6:8], 16) for f in frames} == {20}
