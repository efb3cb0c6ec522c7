"""The bench CSMS's fleet steps in scripts (``csms limit`` / ``unlimit`` / ``update`` / ``logs``), on both OCPP
versions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hil.runner import run_script
from hil.script import ScriptError, parse_script
from hil.steps import run_steps
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
    assert parse_script("csms update http://h/fw.tar")[0].args == ("update", "http://h/fw.tar", "DiagnosticsLog")
    assert parse_script("csms logs ftp://h/up security")[0].args == ("logs", "ftp://h/up", "SecurityLog")
    for bad in ("csms", "csms limit", "csms limit x", "csms limit 10 one", "csms unlimit 1 for 5", "csms fly",
                "csms update", "csms update fw.tar", "csms update http://h/a http://h/b", "csms logs http://h/ x"):
        with pytest.raises(ScriptError, match="csms"):
            parse_script(bad)


async def test_a_csms_step_without_the_built_in_csms_says_so() -> None:
    class ExternalCsms:
        csms = None  # evse-hil ctl, or run --csms URL: the CSMS is someone else's

    results = await run_steps(parse_script("csms unlimit"), ExternalCsms())  # type: ignore[arg-type]
    assert not results[0].ok and results[0].detail == "csms steps need the built-in CSMS (evse-hil run without --csms)"


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
async def test_csms_steps_start_an_update_and_a_log_upload(tmp_path: Path, version: str) -> None:
    from hil.pki import BenchCa
    from tests.bench.test_firmware import not_a_release
    from tests.fileservers import http_server

    served = tmp_path / "http"
    served.mkdir()
    maker = BenchCa(tmp_path / "maker", name="manufacturer CA")
    cert, key = maker.pair("signer", "firmware signer")
    (served / "fw.tar").write_bytes(not_a_release())
    (served / "fw.tar.sig").write_text(json.dumps({"signature": maker.sign_image(not_a_release(), key),
                                                   "signingCertificate": cert.read_text()}))
    config = sim_config(version=version)
    config.ocpp.csms_url = ""
    config.firmware.releases_dir = str(tmp_path / "opt")
    config.firmware.manufacturer_root_file = str(maker.ca_file)  # provisioned with the station
    with http_server(served) as url:
        steps = parse_script(f"csms update {url}/fw.tar; csms logs {url}/ security; wait 1; "
                             f"csms update {url}/missing.tar")
        summary = await run_script(config, steps, state_dir=tmp_path / "state")
    details = [s["detail"] for s in summary["steps"] if s["step"].startswith("csms")]
    assert details[0] == "the station answered Accepted"
    assert details[1].startswith("the station answered Accepted; it uploads TEST-CP-security-")
    assert details[2].startswith(f"cannot read the image's signature {url}/missing.tar.sig: HTTP Error 404")
    assert any(p.name.startswith("TEST-CP-security-") for p in served.iterdir())
