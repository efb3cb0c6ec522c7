"""`evse probe` on the simulated build, as a builder runs each at the bench: what it prints and its exit code."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

from hil.csms import CsmsSimulator
from tests.conftest import wait_until

ROOT = Path(__file__).resolve().parents[2]
TWO = str(ROOT / "config" / "sim-two-socket.toml")
CHADEMO = str(ROOT / "config" / "sim-chademo.toml")


def probe(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "controller.cli", "probe", *args, "--state-dir", str(tmp_path)],
                          capture_output=True, text=True, timeout=60)


def _last(proc: subprocess.CompletedProcess[str]) -> str:
    return proc.stdout.strip().splitlines()[-1]


@pytest.mark.parametrize(("args", "last"), [
    (("pilot", "--seconds", "0.3"), "PASS: connector 1's pilot reads state A"),
    (("pilot", "--duty", "50", "--seconds", "0.3"), "PASS: connector 1's pilot reads state A"),
    (("contactor", "--hold", "0.2"), "PASS: the contactor follows its coil and the mirror contact follows the "
                                     "contactor"),
    (("meter",), "PASS: the meter answers"),
    (("rfid", "--seconds", "1"), "PASS: the reader answers; no card was tapped"),
    (("leds", "--config", TWO, "--seconds", "0.3"), "PASS: each colour lit and read back (look at it too)"),
    (("lock", "--config", TWO), "PASS: the lock moves both ways and its switch follows"),
    (("rcm", "--config", TWO), "PASS: the RCM trips on its test and releases"),
    (("can", "--config", CHADEMO, "--seconds", "0.3"), "PASS: every CAN bus of the connector opens"),
])
def test_each_probe_passes_on_the_simulated_build(tmp_path: Path, args: tuple[str, ...], last: str) -> None:
    proc = probe(tmp_path, *args)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert _last(proc) == last, proc.stdout


def test_probes_say_what_they_measured(tmp_path: Path) -> None:
    pilot = probe(tmp_path, "pilot", "--seconds", "0.3").stdout
    assert "pilot: steady +12 V on GPIO18 (gpio PWM)" in pilot and "state A (no vehicle)" in pilot
    assert "pilot: low half -12.0 V in state F" in pilot
    meter = probe(tmp_path, "meter").stdout
    assert "meter: sdm630 at address 1 on 127.0.0.1:" in meter and " Wh, " in meter
    click = probe(tmp_path, "contactor", "--hold", "0.2").stdout
    assert "mirror contact on GPIO27 read closed when closed, open when opened" in click
    rcm = probe(tmp_path, "rcm", "--config", TWO).stdout
    assert "rcm: test on GPIO6: tripped after" in rcm


def test_a_probe_of_a_device_the_connector_lacks_exits_2(tmp_path: Path) -> None:
    proc = probe(tmp_path, "can")
    assert proc.returncode == 2 and "connector 1 is AC: it has no CAN bus" in proc.stdout
    proc = probe(tmp_path, "pilot", "--connector", "7")
    assert proc.returncode == 2 and "no connector with id 7" in proc.stdout


def test_ports_names_the_configured_ports_that_are_missing(tmp_path: Path) -> None:
    proc = probe(tmp_path, "ports")
    assert proc.returncode == 1
    assert "port: rfid.port = /dev/serial0: no such port on this machine" in proc.stdout
    assert _last(proc).startswith("FAIL: a configured serial port is missing")


async def test_probes_refuse_while_the_charger_runs(tmp_path: Path) -> None:
    csms = CsmsSimulator()
    await csms.start()
    daemon = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "controller.cli", "run", "--state-dir", str(tmp_path), "--csms", csms.url,
        "--log-level", "error")
    try:
        await wait_until(lambda: (tmp_path / "bench.sock").exists(), timeout=20, what="the daemon")
        proc = await asyncio.to_thread(probe, tmp_path, "contactor")
        assert proc.returncode == 2
        assert f"the charger on {tmp_path} is running (PID {daemon.pid}): stop it first" in proc.stdout
        second = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "controller.cli", "run", "--state-dir", str(tmp_path), "--csms", csms.url,
            stderr=subprocess.PIPE)
        _, err = await second.communicate()
        assert second.returncode == 2 and b"is running (PID" in err  # nor does a second daemon start
    finally:
        daemon.terminate()
        await daemon.wait()
        await csms.stop()
