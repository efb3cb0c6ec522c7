"""`evse-hil run --bench bench.toml`: the bench serves a charger that runs its own `evse run` in another process,
over the buses they share: its CSMS, a PN532 simulator on a serial line wired to the charger's reader port, and
a meter simulator on the charger's Modbus RTU line (null-modem pty pairs stand in for the adapters here)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest

from hil.benchfile import BenchFileError, load_bench
from hil.control import send_script
from hil.meter import free_tcp_port
from hil.nullmodem import NullModem
from hil.remote import RemoteBench, check_remote_script, run_remote
from hil.script import ScriptError, parse_script
from tests.conftest import wait_until

TAG = "04A1B2C3"


def bench_file(folder: Path, port: int, reader: str, meter: str) -> Path:
    path = folder / "bench.toml"
    path.write_text(f'[csms]\nlisten = "127.0.0.1:{port}"\n[reader]\ndriver = "pn532"\nport = "{reader}"\n'
                    f'[[meter]]\nconnector = 1\nmodel = "sdm630"\nport = "{meter}"\nbaudrate = 9600\n')
    return path


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
async def test_a_script_runs_against_a_charger_in_another_process(tmp_path: Path, version: str) -> None:
    reader_line, meter_line = NullModem(), NullModem()
    await reader_line.start()
    await meter_line.start()
    port = free_tcp_port()
    bench = load_bench(bench_file(tmp_path, port, reader_line.a, meter_line.a))
    charger = tmp_path / "charger.toml"
    charger.write_text(f'[station]\nhardware = "sim"\nid = "FAR-1"\n[ocpp]\ncsms_url = "ws://127.0.0.1:{port}"\n'
                       f'version = "{version}"\n'
                       'reconnect_min = 0.2\nreconnect_max = 0.5\n[sim]\nexternal = ["meter", "rfid"]\n'
                       f'[rfid]\nport = "{reader_line.b}"\n[[connector]]\nid = 1\n'
                       f'[connector.meter]\ntransport = "rtu"\nport = "{meter_line.b}"\npoll_interval = 0.2\n')
    state = tmp_path / "state"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "controller.cli", "run", "--config", str(charger), "--state-dir", str(state),
        "--log-level", "error", stderr=subprocess.PIPE)
    try:
        await wait_until(lambda: (state / "bench.sock").exists(), 20, "the charger's start")
        start, stop = ("StartTransaction", "StopTransaction") if version == "1.6" else ("TransactionEvent",) * 2
        # 2.0.1 reports Occupied: the bench tells Preparing, Charging and Finishing apart by the transaction's events.
        steps = parse_script(f"expect Preparing within 10\ntap {TAG}\nexpect Charging\nexpect csms {start}\n"
                             f"draw 16 1\nwait 2\ntap {TAG}\nexpect Finishing\nexpect csms {stop}")
        check_remote_script(steps, bench)
        remote = asyncio.create_task(run_remote(bench, steps, script="far.hil", connect_wait=20))
        await asyncio.sleep(0.5)
        assert (await send_script(state, "plug"))["ok"]  # a person plugs the car in at the charger
        report = await remote
    finally:
        proc.terminate()
        await proc.wait()
        reader_line.close()
        meter_line.close()
    assert report["ok"], [s["detail"] for s in report["steps"] if s["status"] == "failed"]
    assert report["charger"] == {"id": "FAR-1", "remote": True} and report["config"] == str(tmp_path / "bench.toml")
    statuses = [s["status"] for s in report["statuses"] if s["connector"] == 1]
    if version == "1.6":
        assert "Charging" in statuses and statuses[-1] == "Finishing"
        actions = [m["action"] for m in report["csms"]["messages"] if m["dir"] == "in"]
        assert actions.index("StartTransaction") < actions.index("StopTransaction")
    else:
        assert statuses[-1] == "Occupied"
    assert [o["value"] for o in report["timeline"] if o["kind"] == "card"] == [TAG, TAG]


def test_steps_a_remote_bench_cannot_do_are_refused_before_it_starts(tmp_path: Path) -> None:
    bench = load_bench(bench_file(tmp_path, 9000, "/dev/ttyUSB0", "/dev/ttyUSB1"))
    for text, message in (("plug", "a remote bench has no EV on the charger's pilot"),
                          ("fault rcm", "a remote bench breaks only what it simulates: meter, reader"),
                          ("draw 16 2", "has no [[meter]] for connector 2")):
        with pytest.raises(ScriptError, match=message.replace("[", r"\[").replace("]", r"\]")):
            check_remote_script(parse_script(text), bench)
    check_remote_script(parse_script("tap 04A1B2C3; fault meter; clear meter; csms reset soft; expect Charging"),
                        bench)


def test_a_bad_bench_file_names_file_key_value_and_what_was_expected(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('[csms]\nlisten = "nowhere"\n[reader]\ndriver = "acr122"\n[[meter]]\nconnector = 0\n'
                    'model = "sdm999"\nbaudrate = 1234\ncolour = "blue"\n[pilot]\n')
    with pytest.raises(BenchFileError) as error:
        load_bench(path)
    assert error.value.problems[:5] == [
        f"{path}: pilot: unknown section; expected csms, reader, [[meter]] or [[car]]",
        f"{path}: csms.listen = 'nowhere': expected HOST:PORT such as '0.0.0.0:9000'",
        f"{path}: reader.driver = 'acr122': expected one of pn532, none",
        f"{path}: reader.port: expected the serial port wired to the charger's reader",
        f"{path}: meter[0].colour: unknown key; expected one of address, baudrate, connector, model, phases, port, "
        "tcp",
    ]
    assert any("meter[0].model = 'sdm999'" in p for p in error.value.problems)
    assert any("meter[0]: expected port (RS-485, Modbus RTU) or tcp" in p for p in error.value.problems)


def test_the_command_line_refuses_a_pilot_step_with_exit_2_and_the_report_shape(tmp_path: Path) -> None:
    path = bench_file(tmp_path, 9000, "/dev/ttyUSB0", "/dev/ttyUSB1")
    proc = subprocess.run([sys.executable, "-m", "hil.cli", "run", "--bench", str(path), "--script", "plug"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    report = json.loads(proc.stdout)
    assert report["ok"] is False and report["steps"] == [] and "no EV on the charger's pilot" in report["error"]


def test_more_bench_file_mistakes_are_named(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('[reader]\nport = "/dev/ttyUSB0"\nbaudrate = 12\n[[meter]]\nmodel = "sdm630"\nport = "/dev/x"\n'
                    '[[meter]]\nconnector = 1\nport = "/dev/y"\n[[meter]]\nconnector = 1\nport = "/dev/z"\n')
    with pytest.raises(BenchFileError) as error:
        load_bench(path)
    assert error.value.problems == [
        f"{path}: reader.baudrate = 12: expected one of 1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200 (a "
        "PN532's HSU talks 115200)",
        f"{path}: meter[0].connector: expected the id of the connector this meter measures",
        f"{path}: meter[2].connector = 1: expected one [[meter]] per connector",
    ]


def test_a_serial_port_that_is_not_there_is_exit_2_with_the_report_shape(tmp_path: Path) -> None:
    path = bench_file(tmp_path, free_tcp_port(), "/dev/does-not-exist-evse", "/dev/does-not-exist-evse-2")
    proc = subprocess.run([sys.executable, "-m", "hil.cli", "run", "--bench", str(path), "--script", "tap 04A1B2C3"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, proc.stderr
    report = json.loads(proc.stdout)
    assert report["steps"] == [] and "cannot serve the bench" in report["error"] and "does-not-exist" in \
        report["error"]


def test_a_2_0_1_charger_s_occupied_is_told_apart_by_its_transaction(tmp_path: Path) -> None:
    remote = RemoteBench(load_bench(bench_file(tmp_path, 9000, "/dev/ttyUSB0", "/dev/ttyUSB1")))
    remote._charger = "CP"
    statuses, states = remote.csms.statuses, remote.csms.charging_states
    statuses.append((1.0, "CP", 1, "Available", ""))
    assert remote.status(1) == "Available" and remote.status(2) == "Unknown"
    states.append((1.5, "CP", 1, "Ended", "EVConnected"))  # the last session's end, before this car came
    statuses.append((2.0, "CP", 1, "Occupied", ""))
    assert remote.status(1) == "Preparing"
    for t, kind, state, expected in ((3.0, "Started", "EVConnected", "Preparing"),
                                     (4.0, "Updated", "Charging", "Charging"),
                                     (5.0, "Updated", "SuspendedEV", "SuspendedEV"),
                                     (6.0, "Updated", "SuspendedEVSE", "SuspendedEVSE"),
                                     (7.0, "Ended", "EVConnected", "Finishing")):
        states.append((t, "CP", 1, kind, state))
        statuses.append((t + 0.1, "CP", 1, "Occupied", ""))  # a charger may repeat Occupied as it goes
        assert remote.status(1) == expected, (kind, state)
    states.append((8.0, "OTHER", 1, "Started", "Charging"))  # another station's EVSE 1 is not this one's
    assert remote.status(1) == "Finishing"
