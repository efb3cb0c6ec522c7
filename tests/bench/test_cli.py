"""The commands as a user runs them: evse demo, evse-hil run, evse run + evse-hil ctl, SIGTERM."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from controller.storage import Store
from hil.csms import CsmsSimulator
from tests.conftest import wait_until

PY = sys.executable
ROOT = Path(__file__).resolve().parents[2]


async def start_daemon(state: Path, csms: CsmsSimulator, *extra: str) -> asyncio.subprocess.Process:
    """``evse run`` on simulated hardware against the bench CSMS, as its own process."""
    return await asyncio.create_subprocess_exec(
        PY, "-m", "controller.cli", "run", "--state-dir", str(state), "--csms", csms.url, "--log-level", "warning",
        *extra, stderr=subprocess.PIPE,
    )


def _run(*args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PY, "-m", *args], capture_output=True, text=True, timeout=timeout)


def test_evse_demo_runs_a_session_and_says_ok() -> None:
    proc = _run("controller.cli", "demo")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert "Session: card 04A1B2C3 on connector 1" in out and "ended Local" in out
    assert "CSMS transaction 1" in out and "Timestamps: all strict RFC 3339" in out
    assert out.rstrip().endswith("Result: OK")


def test_evse_demo_on_2_0_1_says_what_the_csms_received() -> None:
    proc = _run("controller.cli", "demo", "--ocpp-version", "2.0.1")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "TransactionEvents in seqNo order, stoppedReason Local" in proc.stdout
    assert proc.stdout.rstrip().endswith("Result: OK")


def test_evse_demo_runs_a_dc_session_on_a_dc_config() -> None:
    proc = _run("controller.cli", "demo", "--ocpp-version", "2.0.1", "--config", str(ROOT / "config" / "sim-gbt.toml"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "stoppedReason Local" in proc.stdout and proc.stdout.rstrip().endswith("Result: OK")


def test_evse_hil_run_prints_a_json_summary_with_the_bench_timeline() -> None:
    steps = "plug; tap 04A1B2C3; expect Charging; wait 1; ev B; expect SuspendedEV; unplug; expect Available"
    proc = _run("hil.cli", "run", "--script", steps)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["ok"] is True
    assert [s["reason"] for s in summary["sessions"]] == ["EVDisconnected"]
    kinds = {o["kind"] for o in summary["timeline"]}
    assert {"pilot", "pwm", "contactor", "card"} <= kinds
    pilot = [o["value"] for o in summary["timeline"] if o["kind"] == "pilot"]
    assert pilot[:3] == ["B", "C", "B"]
    times = [o["t"] for o in summary["timeline"]]
    assert times == sorted(times)
    assert [s["status"] for s in summary["statuses"]][:2] == ["Preparing", "Charging"]


def test_evse_hil_run_fails_on_a_failed_expect_and_on_a_bad_step() -> None:
    proc = _run("hil.cli", "run", "--script", "expect Charging within 0.3")
    assert proc.returncode == 1
    assert json.loads(proc.stdout)["steps"][0]["detail"].startswith("connector 1 is Available")
    bad = _run("hil.cli", "run", "--script", "plug; fly")
    assert bad.returncode == 2 and "unknown step 'fly'; valid steps:" in bad.stderr


def test_evse_hil_counts_must_be_one_or_more() -> None:
    from hil.cli import build_parser

    for argv in (["reliability", "--kills", "0"], ["perf", "--trials", "ten"]):
        with pytest.raises(SystemExit) as stopped:
            build_parser().parse_args(argv)
        assert stopped.value.code == 2  # argparse's one-line error, not a traceback later


def test_evse_hil_ctl_without_a_charger_says_what_to_start(tmp_path: Path) -> None:
    proc = _run("hil.cli", "ctl", "--state-dir", str(tmp_path), "plug")
    assert proc.returncode == 2 and "no simulated charger listening" in proc.stderr


async def test_ctl_drives_a_running_charger_and_sigterm_ends_the_session(tmp_path: Path) -> None:
    csms = CsmsSimulator()
    await csms.start()
    daemon = await start_daemon(tmp_path, csms, "--id", "CTL-1")
    try:
        await wait_until(lambda: "CTL-1" in csms.boots and (tmp_path / "bench.sock").exists(), timeout=20,
                         what="the daemon to boot")
        await asyncio.sleep(0.3)  # its first status notifications
        ctl = await asyncio.create_subprocess_exec(
            PY, "-m", "hil.cli", "ctl", "--state-dir", str(tmp_path), "plug; tap 04A1B2C3; expect Charging",
            stdout=subprocess.PIPE,
        )
        out, _ = await ctl.communicate()
        assert ctl.returncode == 0, out
        assert json.loads(out)["ok"] is True
        await wait_until(lambda: len(csms.transactions) == 1, what="StartTransaction")
        started = time.monotonic()
        daemon.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(daemon.wait(), 20) == 0
        assert time.monotonic() - started < 10
        (tx,) = csms.transactions.values()
        assert tx.reason == "Other" and tx.meter_stop is not None
        assert csms.close_codes == [1001]  # going away, not 1011 (an internal error)
    finally:
        if daemon.returncode is None:
            daemon.kill()
            await daemon.wait()
        await csms.stop()


async def test_TC_032_2_CS_sigkill_mid_charge_ends_the_transaction_as_power_loss_after_restart(tmp_path: Path) -> None:
    config = tmp_path / "sim.toml"
    config.write_text(
        '[station]\nhardware = "sim"\nid = "KILL-1"\nreading_persist_interval = 0.2\n'
        "[ocpp]\nreconnect_min = 0.2\n[rfid]\npoll_interval = 0.05\n"
        "[[connector]]\nid = 1\n[connector.meter]\npoll_interval = 0.1\n"
    )
    state = tmp_path / "state"
    csms = CsmsSimulator()
    await csms.start()

    daemon = await start_daemon(state, csms, "--config", str(config))
    try:
        await wait_until(lambda: "KILL-1" in csms.connections and (state / "bench.sock").exists(), timeout=20,
                         what="the daemon to boot")
        await asyncio.sleep(0.3)
        ctl = await asyncio.create_subprocess_exec(
            PY, "-m", "hil.cli", "ctl", "--state-dir", str(state), "plug; tap 04A1B2C3; expect Charging; wait 1.5",
            stdout=subprocess.PIPE,
        )
        await ctl.communicate()
        await wait_until(lambda: len(csms.transactions) == 1, what="StartTransaction")
        store = Store(state)  # the daemon's own database: wait until it has read the StartTransaction reply
        await wait_until(lambda: store.outbox_size() == 0, what="the StartTransaction to be confirmed")
        store.close()
        daemon.kill()  # SIGKILL: no shutdown code runs
        await daemon.wait()
        (tx,) = csms.transactions.values()
        assert tx.meter_stop is None
        daemon = await start_daemon(state, csms, "--config", str(config))
        await wait_until(lambda: tx.meter_stop is not None, timeout=20, what="the PowerLoss StopTransaction")
        assert tx.reason == "PowerLoss"
        # The last persisted reading: energy flowed for ~1.5 s at 32 A x 3 x 230 V (about 9 Wh).
        assert tx.meter_stop - tx.meter_start >= 5
        assert tx.stop_time is not None and tx.stop_time > tx.start_time
        assert csms.boots == ["KILL-1", "KILL-1"] and csms.duplicate_stops == []
    finally:
        if daemon.returncode is None:
            daemon.terminate()
            await daemon.wait()
        await csms.stop()


async def test_a_csms_reset_restarts_the_daemon_in_place(tmp_path: Path) -> None:
    from ocpp.v16 import call

    csms = CsmsSimulator()
    await csms.start()
    daemon = await start_daemon(tmp_path, csms, "--id", "RST-1")
    try:
        await wait_until(lambda: "RST-1" in csms.connections, timeout=20, what="the first boot")
        await asyncio.sleep(0.3)
        assert (await csms.call("RST-1", call.Reset(type="Soft"))).status == "Accepted"
        await wait_until(lambda: csms.boots == ["RST-1", "RST-1"], timeout=20, what="a boot after the reset")
        assert daemon.returncode is None  # the same process, re-executed
        assert csms.close_codes == [1001]
    finally:
        daemon.terminate()
        await asyncio.wait_for(daemon.wait(), 20)
        await csms.stop()


def test_evse_hil_run_fails_when_it_never_reaches_its_csms() -> None:
    from hil.meter import free_tcp_port

    url = f"ws://127.0.0.1:{free_tcp_port()}"  # nobody listens there
    proc = _run("hil.cli", "run", "--csms", url, "--csms-wait", "1", "--script", "plug; wait 0.2")
    assert proc.returncode == 1, proc.stdout
    summary = json.loads(proc.stdout)
    assert summary["ok"] is False and summary["error"] == f"never reached the CSMS at {url}/SIM-0001"


def test_evse_hil_run_drives_a_dc_charger_with_the_same_script_steps() -> None:
    steps = ("plug; expect Preparing; tap 04A1B2C3; expect Charging within 20; wait 1; fault estop; "
             "expect Faulted within 2; clear estop")
    proc = _run("hil.cli", "run", "--config", str(ROOT / "config" / "sim-chademo.toml"), "--script", steps)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr  # the shutdown after the script leaves no step touching closed pins
    summary = json.loads(proc.stdout)
    assert [s["reason"] for s in summary["sessions"]] == ["EmergencyStop"]
    kinds = {o["kind"] for o in summary["timeline"]}
    assert {"can", "dc", "contactor", "fault"} <= kinds
    frames = [o["value"] for o in summary["timeline"] if o["kind"] == "can"]
    assert any(f.startswith("tx 108 ") for f in frames) and any(f.startswith("rx 100 ") for f in frames)


async def test_sigusr1_switches_the_ocpp_frame_log_on_in_a_running_daemon(tmp_path: Path) -> None:
    csms = CsmsSimulator()
    await csms.start()
    daemon = await start_daemon(tmp_path, csms, "--id", "LOG-1")
    assert daemon.stderr is not None
    lines: list[str] = []

    async def read() -> None:
        assert daemon.stderr is not None
        async for line in daemon.stderr:
            lines.append(line.decode())

    reader = asyncio.create_task(read())
    try:
        await wait_until(lambda: (tmp_path / "bench.sock").exists(), timeout=20, what="the daemon to start")
        assert not any("controller.ocpp.frames" in line for line in lines)  # off at --log-level warning
        daemon.send_signal(signal.SIGUSR1)
        await wait_until(lambda: any("OCPP frame log on" in line for line in lines), what="the switch")
        ctl = await asyncio.create_subprocess_exec(PY, "-m", "hil.cli", "ctl", "--state-dir", str(tmp_path), "plug")
        assert await ctl.wait() == 0
        await wait_until(lambda: any("controller.ocpp.frames: send" in line and "StatusNotification" in line
                                     for line in lines), what="the frame of the plug's StatusNotification")
    finally:
        daemon.terminate()
        await daemon.wait()
        reader.cancel()
        await csms.stop()


async def test_a_test_charge_runs_against_the_built_in_csms_and_says_so(tmp_path: Path) -> None:
    daemon = await asyncio.create_subprocess_exec(
        PY, "-m", "controller.cli", "run", "--config", str(ROOT / "config" / "sim.toml"), "--csms", "builtin",
        "--state-dir", str(tmp_path), "--log-level", "warning", stderr=subprocess.PIPE)
    try:
        await wait_until(lambda: (tmp_path / "bench.sock").exists(), timeout=20, what="the daemon to start")
        ctl = await asyncio.create_subprocess_exec(
            PY, "-m", "hil.cli", "ctl", "--state-dir", str(tmp_path), "plug; tap 04A1B2C3; expect Charging",
            stdout=subprocess.PIPE)
        out, _ = await ctl.communicate()
        assert ctl.returncode == 0 and json.loads(out)["ok"] is True, out
    finally:
        daemon.terminate()
        _, err = await daemon.communicate()
    assert "test charge: the built-in CSMS at ws://127.0.0.1:" in err.decode()
    assert "accepts every card" in err.decode()
