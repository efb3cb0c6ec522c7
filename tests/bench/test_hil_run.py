"""`evse-hil run` as a bench engineer and a CI use it: script files, standard input, timings, skipped steps, one JSON
shape for every outcome, exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from controller import version

PY = sys.executable


def hil(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PY, "-m", "hil.cli", *args], input=stdin, capture_output=True, text=True, timeout=90)


def test_a_script_file_runs_with_comments_and_reports_every_step_with_its_timing(tmp_path: Path) -> None:
    script = tmp_path / "stop-before-charging.hil"
    script.write_text("# a car arrives but nobody taps a card\nplug\n\nexpect Preparing   # the pilot sees it\n"
                      "expect Charging within 0.3\nunplug; expect Available\n")
    proc = hil("run", str(script))
    assert proc.returncode == 1, proc.stderr
    report = json.loads(proc.stdout)
    assert report["script"] == str(script) and report["config"] == "<built-in sim defaults>"
    assert report["charger"] == {"id": "SIM-0001", "ocpp": "1.6", "connectors": [{"id": 1, "kind": "ac"}]}
    assert report["version"] == version() and report["counts"] == {"passed": 2, "failed": 1, "skipped": 2}
    steps = report["steps"]
    assert [s["status"] for s in steps] == ["passed", "passed", "failed", "skipped", "skipped"]
    assert [s["step"] for s in steps][2:] == ["expect Charging within 0.3", "unplug", "expect Available"]
    failed = steps[2]
    assert failed["detail"] == "connector 1 is Preparing, expected Charging within 0.3 s"
    assert 0.3 <= failed["duration"] < 1.5 and abs(failed["end"] - failed["start"] - failed["duration"]) < 1e-5
    assert steps[0]["start"] <= steps[1]["start"] <= failed["start"] <= failed["end"] <= steps[3]["start"]


def test_standard_input_and_the_global_timeout() -> None:
    proc = hil("run", "-", "--timeout", "0.5", stdin="plug\nwait 20\nunplug\n")
    assert proc.returncode == 1
    report = json.loads(proc.stdout)
    assert report["script"] == "<stdin>"
    assert [(s["step"], s["status"]) for s in report["steps"]] == [
        ("plug", "passed"), ("wait 20", "failed"), ("unplug", "skipped")]
    assert report["steps"][1]["detail"] == "the script's time limit (--timeout) ran out during this step"
    assert report["duration"] < 3


def test_a_script_that_cannot_run_is_exit_2_with_the_same_json_shape(tmp_path: Path) -> None:
    script = tmp_path / "typo.hil"
    script.write_text("plug\nexpect Charging within 99999999999\n")
    proc = hil("run", str(script))
    assert proc.returncode == 2
    report = json.loads(proc.stdout)
    assert report["ok"] is False and report["steps"] == [] and report["script"] == str(script)
    assert report["error"] == (f"{script}: line 2: step 'expect Charging within 99999999999': SECONDS must be at "
                               "most 3600, got 99999999999")
    assert report["error"] in proc.stderr
    missing = hil("run", str(tmp_path / "absent.hil"))
    assert missing.returncode == 2 and "cannot read the script" in json.loads(missing.stdout)["error"]
    both = hil("run", str(script), "--script", "plug")
    assert both.returncode == 2 and json.loads(both.stdout)["error"].startswith("give a script: a FILE")
    bad_config = tmp_path / "pi.toml"
    bad_config.write_text('[station]\nhardware = "pi"\n[ocpp]\ncsms_url = "ws://csms.example/ocpp"\n'
                          '[[connector]]\nid = 1\n')
    refused = hil("run", "--config", str(bad_config), "--script", "plug")
    assert refused.returncode == 2 and "expected sim" in json.loads(refused.stdout)["error"]


def test_help_documents_the_exit_codes() -> None:
    out = hil("run", "--help").stdout
    assert "exit codes:" in out and "0  every step passed" in out and "2  the script or the config cannot be used" \
        in out
