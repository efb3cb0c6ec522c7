"""`evse-hil suite` and `evse-hil plot` as a CI and a bench engineer use them: a folder of scripts in parallel,
a summary table, JUnit XML a CI server reads, one HTML page with the timelines drawn, and the shipped acceptance
suite passing whole."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PY = sys.executable


def hil(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PY, "-m", "hil.cli", *args], capture_output=True, text=True, timeout=timeout, cwd=ROOT)


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text)
    return path


def test_a_folder_runs_in_parallel_with_a_summary_junit_and_an_html_report(tmp_path: Path) -> None:
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    write(scripts, "a-charges.hil", "# A car charges.\nplug\ntap 04A1B2C3\nexpect Charging\nwait 1.2\n")
    write(scripts, "b-no-card.hil", "plug\nexpect Charging within 0.5\nunplug\n")
    write(scripts, "c-typo.hil", "plug\nfly\n")
    write(scripts, "d-socket.hil", f"# config: {ROOT / 'config' / 'sim-two-socket.toml'}\n# ocpp: 2.0.1\n"
                                   "# The two-socket build, its second connector.\nplug 2\nexpect Preparing 2\n")
    junit, page, report = tmp_path / "junit.xml", tmp_path / "report.html", tmp_path / "suite.json"
    proc = hil("suite", str(scripts), "--jobs", "2", "--junit", str(junit), "--html", str(page), "--json", str(report))
    assert proc.returncode == 1, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].split() == ["script", "result", "steps", "time", "detail"]
    rows = {line.split()[0]: line for line in lines[1:-1]}
    assert rows["a-charges.hil"].split()[1:3] == ["PASS", "4/4"]
    assert "FAIL" in rows["b-no-card.hil"] and "expect Charging within 0.5: connector 1 is Preparing" in \
        rows["b-no-card.hil"]
    assert "ERROR" in rows["c-typo.hil"] and "line 2: unknown step 'fly'" in rows["c-typo.hil"]
    assert rows["d-socket.hil"].split()[1] == "PASS"
    assert lines[-1].startswith("4 scripts: 2 passed, 1 failed, 1 in error;") and "with 2 job(s)" in lines[-1]

    root = ET.parse(junit).getroot()
    suite = root.find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("4", "1", "1")
    cases = {c.get("name"): c for c in suite.iter("testcase")}
    assert set(cases) == {"a-charges", "b-no-card", "c-typo", "d-socket"}
    failure = cases["b-no-card"].find("failure")
    assert failure is not None and failure.get("message") == \
        "expect Charging within 0.5: connector 1 is Preparing, expected Charging within 0.5 s"
    assert "skipped unplug" in (failure.text or "")  # the step list, the rest skipped
    error = cases["c-typo"].find("error")
    assert error is not None and "unknown step 'fly'" in (error.get("message") or "")
    assert cases["a-charges"].find("failure") is None and float(cases["a-charges"].get("time") or 0) >= 1.2
    assert "charger: TEST" not in (cases["d-socket"].findtext("system-out") or "") and \
        "OCPP 2.0.1" in (cases["d-socket"].findtext("system-out") or "")

    html = page.read_text()
    assert html.startswith("<!doctype html>") and "<script" not in html and "http" not in html.split("<body>")[0]
    for name in ("a-charges.hil", "b-no-card.hil", "c-typo.hil", "d-socket.hil"):
        assert name in html
    assert html.count("<svg") == 3  # a timeline per script that ran (the typo never started a charger)
    document = json.loads(report.read_text())
    assert (document["scripts"], document["passed"], document["failed"], document["errors"]) == (4, 2, 1, 1)


def test_a_shared_charger_runs_the_scripts_one_after_the_other(tmp_path: Path) -> None:
    write(tmp_path, "1-plug.hil", "plug\nexpect Preparing\n")
    write(tmp_path, "2-still-plugged.hil", "expect Preparing within 0.5\ntap 04A1B2C3\nexpect Charging\n")
    proc = hil("suite", str(tmp_path), "--shared")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.splitlines()[-1].startswith("2 scripts: 2 passed") and "on one shared charger" in proc.stdout


def test_a_shared_charger_refuses_scripts_that_ask_for_their_own(tmp_path: Path) -> None:
    write(tmp_path, "own.hil", "# ocpp: 2.0.1\nplug\n")
    proc = hil("suite", str(tmp_path), "--shared")
    assert proc.returncode == 2 and "own.hil: its header asks for a charger of its own; run it without --shared" \
        in proc.stderr


def test_suites_that_cannot_run_say_why(tmp_path: Path) -> None:
    empty = hil("suite", str(tmp_path))
    assert empty.returncode == 2 and f"no .hil scripts in {tmp_path}" in empty.stderr
    write(tmp_path, "x.hil", "# colour: blue\nplug\n")
    header = hil("suite", str(tmp_path))
    assert header.returncode == 2 and "x.hil: unknown header 'colour:'; expected one of config, ocpp, reject, " \
        "timeout" in header.stderr


def test_plot_draws_a_run_report_as_svg(tmp_path: Path) -> None:
    run = hil("run", "--script", "plug; tap 04A1B2C3; expect Charging; wait 1.2; fault short; expect Faulted",
              "--config", str(ROOT / "config" / "sim-two-socket.toml"))
    assert run.returncode == 0, run.stderr
    (tmp_path / "run.json").write_text(run.stdout)
    proc = hil("plot", str(tmp_path / "run.json"), "-o", str(tmp_path / "run.svg"))
    assert proc.returncode == 0, proc.stderr
    svg = (tmp_path / "run.svg").read_text()
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg
    for label in ("pilot", "PWM %", "contactor", "OCPP", "fault short", "StartTransaction"):
        assert label in svg, label
    bad = hil("plot", str(tmp_path / "run.svg"), "-o", str(tmp_path / "x.svg"))
    assert bad.returncode == 2 and "not an evse-hil run report" in bad.stderr


def test_a_dc_run_draws_the_charge_sequence_s_can_phases(tmp_path: Path) -> None:
    run = hil("run", "--script", "plug; tap 04A1B2C3; expect Charging within 30; wait 6; tap 04A1B2C3; "
              "expect Finishing within 15", "--config", str(ROOT / "config" / "sim-gbt.toml"))
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    phases = [o["value"] for o in report["timeline"] if o["kind"] == "phase" and o["connector"] == 1]
    # GB/T 27930's order, as the charger ran it: the handshake before the insulation test, charging after both.
    for before, after in (("handshake", "insulation"), ("insulation", "recognition"), ("parameters", "precharge"),
                          ("precharge", "charging"), ("charging", "stopping")):
        assert phases.index(before) < phases.index(after), phases
    (tmp_path / "run.json").write_text(run.stdout)
    assert hil("plot", str(tmp_path / "run.json"), "-o", str(tmp_path / "run.svg")).returncode == 0
    svg = (tmp_path / "run.svg").read_text()
    for label in ("CAN phase", "precharge", "V / A", "contactor"):
        assert label in svg, label
    assert "PWM %" not in svg  # a DC outlet has no pilot


@pytest.mark.timeout(600)
def test_the_acceptance_suite_passes_whole(tmp_path: Path) -> None:
    scripts = sorted((ROOT / "suites" / "acceptance").glob("*.hil"))
    assert len(scripts) >= 20
    proc = hil("suite", str(ROOT / "suites" / "acceptance"), "--jobs", "2", "--junit", str(tmp_path / "j.xml"),
               timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.timeout(300)
def test_the_fault_benchmark_draws_its_histograms(tmp_path: Path) -> None:
    proc = hil("perf", "--faults", "--kinds", "rcm,lock", "--trials", "3", "--svg", str(tmp_path / "faults.svg"),
               timeout=240)
    assert proc.returncode == 0, proc.stderr
    figures = json.loads(proc.stdout)
    assert figures["rcm"]["reaction"]["n"] == 3 and "samples_ms" not in figures["rcm"]["reaction"]
    svg = (tmp_path / "faults.svg").read_text()
    assert "<svg" in svg and "rcm (n=3)" in svg and "lock (n=3)" in svg
    assert f"p99 {figures['lock']['reaction']['p99_ms']:g} ms" in svg


@pytest.mark.timeout(300)
def test_the_dc_benchmark_draws_its_histograms(tmp_path: Path) -> None:
    proc = hil("perf", "--dc", "--kinds", "estop", "--trials", "2", "--cycles", "50", "--svg",
               str(tmp_path / "dc.svg"), timeout=240)
    assert proc.returncode == 0, proc.stderr
    figures = json.loads(proc.stdout)
    assert "samples_ms" not in proc.stdout  # the JSON stays a summary
    total = figures["reactions"]["estop gbt"]["total"]
    assert total["n"] == 2 and total["max_ms"] >= figures["reactions"]["estop gbt"]["contactors_open"]["max_ms"]
    svg = (tmp_path / "dc.svg").read_text()
    for label in ("108 period (n=50)", "CCS period (n=100)", "estop chademo: to open (n=2)",
                  f"p99 {total['p99_ms']:g} ms"):
        assert label in svg, label
    assert hil("perf", "--cpu", "--svg", str(tmp_path / "x.svg")).returncode == 2  # the CPU figures have none


@pytest.mark.timeout(180)
def test_the_latency_benchmark_draws_its_histograms(tmp_path: Path) -> None:
    proc = hil("perf", "--trials", "3", "--tap-trials", "3", "--no-memory", "--svg", str(tmp_path / "lat.svg"))
    assert proc.returncode == 0, proc.stderr
    figures = json.loads(proc.stdout)
    assert "samples_ms" not in proc.stdout and figures["tap_to_contactor_closed"]["n"] == 3
    svg = (tmp_path / "lat.svg").read_text()
    for name in ("ev_c_to_b_contactor_open", "tap_to_contactor_closed", "fault_cp_short_to_contactor_open",
                 "profile_boundary_to_pwm"):
        assert f"{name} (n=3)" in svg, name
