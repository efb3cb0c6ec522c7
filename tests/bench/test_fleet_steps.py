"""The bench CSMS's fleet steps in scripts (``csms limit`` / ``csms unlimit``), on both OCPP versions."""

from __future__ import annotations

from pathlib import Path

import pytest

from hil.runner import run_script
from hil.script import ScriptError, parse_script, run_steps
from tests.conftest import sim_config


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
async def test_csms_steps_limit_and_release_a_session(tmp_path: Path, version: str) -> None:
    steps = parse_script("csms limit 10; plug; tap 04A1B2C3; expect Charging; wait 0.5; csms limit 4140W 1 for 60; "
                         "wait 0.5; csms unlimit 1; wait 0.2")
    config = sim_config(version=version)
    config.ocpp.csms_url = ""  # the built-in CSMS
    summary = await run_script(config, steps, state_dir=tmp_path)
    assert summary["ok"], summary["steps"]
    assert [s["detail"] for s in summary["steps"] if s["step"].startswith("csms")] == \
        ["the station answered Accepted"] * 3
    duty = [o["value"] for o in summary["timeline"] if o["kind"] == "pwm" and 0 < o["value"] < 100]
    # 10 A (16.67 %), then 4140 W on three phases of 230 V = 6 A (10 %).
    assert duty[:2] == [pytest.approx(16.67), pytest.approx(10.0)]


def test_csms_steps_are_parsed_strictly() -> None:
    assert parse_script("csms limit 7400W 0 for 600")[0].args == ("limit", 7400.0, "W", 0, 600)
    assert parse_script("csms unlimit")[0].args == ("unlimit", 0.0, "A", None, None)
    for bad in ("csms", "csms limit", "csms limit x", "csms limit 10 one", "csms unlimit 1 for 5", "csms fly"):
        with pytest.raises(ScriptError, match="csms"):
            parse_script(bad)


async def test_a_csms_step_without_the_built_in_csms_says_so() -> None:
    class ExternalCsms:
        csms = None  # evse-hil ctl, or run --csms URL: the CSMS is someone else's

    results = await run_steps(parse_script("csms unlimit"), ExternalCsms())  # type: ignore[arg-type]
    assert not results[0].ok and results[0].detail == "csms steps need the built-in CSMS (evse-hil run without --csms)"
