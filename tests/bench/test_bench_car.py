"""The bench's DC car on its own wires (`[[car]]` in bench.toml) for a charger that runs its own `evse run`.

The charger is a real `evse run` in another process: a simulated CHAdeMO or GB/T build whose car bus is on
python-can-remote (as a socketcan bus would be between two Pis) and whose car-side lines and power cable come
out of its car link. The bench's car runs here on gpiozero mock pins; a harness plays the wires between those
pins and the charger's car link, and a battery emulator at 380 V on the cable. The bench sees only what a real
bench would: the CAN bus, its own GPIO, and its CSMS.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import can
import pytest
from gpiozero import DigitalOutputDevice
from gpiozero.pins.mock import MockFactory

from controller.charging.chademo.frames import CHARGER_STATUS, database
from hal.can import Frame
from hil.benchcar import STALE, BenchCar, BenchCarError, ReportedCircuit
from hil.benchfile import BenchCarSpec, BenchFileError, BenchLine, load_bench
from hil.carbus import GuardedSends
from hil.carlink import CarLinkClient
from hil.chademo_ev import ChademoEv
from hil.meter import free_tcp_port
from hil.remote import check_remote_script, run_remote
from hil.script import ScriptError, parse_script
from tests.bench.test_dc_remote import _config, can_server  # noqa: F401 - the fixture is used by name
from tests.conftest import wait_until

TAG = "04A1B2C3"
LINES = {"chademo": 'd1 = 5\nd2 = 6\nk = 13\nplug = 19\nev_contactor = 26\n',
         "gbt": 'aux = {pin = 5, active_high = false}\ncc1 = 19\nev_contactor = 26\n'}


class Harness:
    """The wires between the bench's GPIO (mock pins) and the charger's car link, and a battery emulator."""

    def __init__(self, link: Path, factory: MockFactory, spec: BenchCarSpec) -> None:
        self.client = CarLinkClient(link)
        self.spec, self.factory = spec, factory
        self.contactor_closed_seen = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self.client.start()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(1.0)
        self.client.stop()

    def _pin(self, name: str) -> Any:
        return self.factory.pin(self.spec.lines[name].pin)

    def _run(self) -> None:
        client, lines = self.client, self.spec.lines
        while not self._stop.wait(0.005):
            for name in ("d1", "d2", "aux"):  # the charger's lines into the bench's optocouplers
                if name in lines:
                    on = client.pins[name].state
                    (self._pin(name).drive_high if on == lines[name].active_high else self._pin(name).drive_low)()
            for name in ("k", "plug"):  # the bench's switches onto the charger's lines
                if name in lines:
                    client.pins[name].state = bool(self._pin(name).state)
            if "cc1" in lines:
                client.set_cc1(4.0 if self._pin("cc1").state else 12.0)
            closed = bool(self._pin("ev_contactor").state)
            self.contactor_closed_seen |= closed
            client.circuit.battery_voltage = 380.0
            client.circuit.ev_contactor_closed = closed


def _bench(tmp_path: Path, kind: str, csms_port: int, can_url: str) -> Path:
    path = tmp_path / "bench.toml"
    path.write_text(f'[csms]\nlisten = "127.0.0.1:{csms_port}"\n[[car]]\nconnector = 1\nkind = "{kind}"\n'
                    f'interface = "remote"\nchannel = "{can_url}"\nsoc = 40\nquick = true\n'
                    f'[car.lines]\n{LINES[kind]}')
    return path


@pytest.mark.parametrize("kind", ["chademo", "gbt"])
async def test_the_bench_s_car_charges_from_a_charger_in_another_process(tmp_path: Path, can_server: str,  # noqa: F811
                                                                        kind: str) -> None:
    port = free_tcp_port()
    bench = load_bench(_bench(tmp_path, kind, port, can_server))
    charger = _config(tmp_path, kind, can_server)
    charger.write_text(charger.read_text().replace('csms_url = ""', f'csms_url = "ws://127.0.0.1:{port}"\n'
                                                   'reconnect_min = 0.2\nreconnect_max = 0.5'))
    state = tmp_path / "state"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "controller.cli", "run", "--config", str(charger), "--state-dir", str(state),
        "--log-level", "error", stderr=subprocess.PIPE)
    factory = MockFactory()
    harness = Harness(state / "car-1.sock", factory, bench.cars[0])
    # The GB/T run ends with the car going silent: the charger stops and reports the fault.
    ending = "csms remote-stop 1\nexpect Finishing within 20\nunplug 1\nexpect Available within 10" \
        if kind == "chademo" else "fault evsilent 1\nexpect Faulted within 10"
    steps = parse_script(f"plug 1\nexpect Preparing within 15\ncsms remote-start 1 {TAG}\n"
                         f"expect Charging within 40\nwait 10\n{ending}")
    check_remote_script(steps, bench)
    try:
        await wait_until(lambda: (state / "car-1.sock").exists(), 20, "the charger's car link")
        harness.start()
        report = await run_remote(bench, steps, script=f"{kind}.hil", connect_wait=20, pin_factory=factory)
    finally:
        harness.stop()
        proc.terminate()
        _, err = await asyncio.wait_for(proc.communicate(), 20)
    assert report["ok"], (report["steps"], err.decode()[-2000:])
    statuses = [s["status"] for s in report["statuses"] if s["connector"] == 1]
    assert "Charging" in statuses
    assert statuses[-1] == ("Available" if kind == "chademo" else "Faulted")
    # The car's side of the sequence, as it lived it on the bus and its lines.
    phases = [o["value"] for o in report["timeline"] if o["kind"] == "phase"]
    assert phases.index("charging") > 0, phases
    # What the car knows of the cable is what the charger said on the bus: current flowed, at the battery's volts.
    dc = [o["value"] for o in report["timeline"] if o["kind"] == "dc"]
    charging = [v for v in dc if v["A"] > 20]
    assert charging and all(340 < v["V"] < 420 for v in charging), dc
    assert harness.contactor_closed_seen  # the EV contactor's relay connected the battery emulator
    for name, line in bench.cars[0].lines.items():  # the bench left every line it drives off
        if name in ("k", "plug", "cc1", "ev_contactor"):
            assert bool(factory.pin(line.pin).state) != line.active_high, name
    [car] = report["cars"]
    assert car["kind"] == kind and car["soc"] > car["soc_start"] == 40 and car["frames_heard"] > 50, car
    assert [o["value"] for o in report["timeline"] if o["kind"] == "car"] == \
        (["plug", "unplug"] if kind == "chademo" else ["plug"])


def test_a_bench_car_needs_its_lines_and_says_which(tmp_path: Path) -> None:
    path = tmp_path / "bench.toml"
    path.write_text('[[car]]\nconnector = 1\nkind = "chademo"\n[car.lines]\nd1 = 5\nd2 = 5\nk = 40\naux = 7\n'
                    '[[car]]\nconnector = 2\nkind = "ccs"\n[[car]]\nconnector = 3\nkind = "gbt"\nsoc = 120\n'
                    '[car.lines]\naux = {pin = 8, active_low = true}\ncc1 = 9\n')
    with pytest.raises(BenchFileError) as caught:
        load_bench(path)
    problems = caught.value.problems
    expected = [
        "car[0].lines.aux: not a chademo car's line; expected one of d1, d2, k, plug, ev_contactor",
        "car[0].lines.plug: missing; a chademo car needs d1, d2, k, plug (BCM GPIO numbers)",
        "car[0].lines.d2 = 5: GPIO5 is already car[0].lines.d1",
        "car[0].lines.k = 40: expected a BCM GPIO number 0-27",
        "car[1].kind = 'ccs': expected chademo or gbt",
        "car[2].soc = 120: expected a state of charge from 0 to 100 %",
        "car[2].soc = 120: expected below target_soc (80.0), or the car never asks for current",
        "car[2].channel = 'can0': car[0] is on socketcan can0 already; expected a bus of its own",
        "car[2].lines.aux = {'pin': 8, 'active_low': True}: expected a BCM GPIO number 0-27",
    ]
    for line in expected:
        assert any(p.startswith(f"{path}: {line}") for p in problems), (line, problems)
    assert len(problems) == len(expected), problems


def test_car_steps_are_refused_where_the_bench_has_no_car(tmp_path: Path) -> None:
    bench = load_bench(_bench(tmp_path, "chademo", 9000, "ws://127.0.0.1:1/"))
    check_remote_script(parse_script("plug 1; fault evsilent 1; clear evsilent 1; fault cc1; unplug"), bench)
    for text, message in (("plug 2", "a remote bench has no EV on the charger's pilot"),
                          ("fault evsilent 2", "breaks only what it simulates: meter, reader$"),
                          ("fault insulation 1", "breaks only what it simulates: meter, reader, evsilent, cc1")):
        with pytest.raises(ScriptError, match=message):
            check_remote_script(parse_script(text), bench)


def _spec(kind: str, channel: str) -> BenchCarSpec:
    lines = {"chademo": {"d1": 5, "d2": 6, "k": 13, "plug": 19, "ev_contactor": 26},
             "gbt": {"aux": 5, "cc1": 19, "ev_contactor": 26}}[kind]
    return BenchCarSpec(1, kind, "virtual", channel, {name: BenchLine(pin) for name, pin in lines.items()})


def test_a_gbt_car_s_cc1_relay_follows_the_plug_and_its_fault() -> None:
    factory = MockFactory()
    car = BenchCar(_spec("gbt", "bench-car-cc1"), pin_factory=factory)
    car.start()
    cc1 = factory.pin(19)
    try:
        car.plug()
        assert cc1.state  # R4 on CC1: the charger reads 4 V
        car.inject("cc1", True)
        assert not cc1.state  # the connector comes loose while it is in
        car.inject("cc1", False)
        assert cc1.state
        car.unplug()
        assert not cc1.state
        with pytest.raises(ValueError, match="fault insulation is not one the bench's car can make"):
            car.inject("insulation", True)
    finally:
        car.stop()


def test_stopping_the_bench_mid_session_ends_it_from_the_car_before_the_relay_opens() -> None:
    factory = MockFactory()
    car = BenchCar(_spec("chademo", "bench-car-stop"), pin_factory=factory)
    car.start()
    car.plug()
    with car.circuit.lock:  # as if charging: the car's contactor closed on the bench's DC load
        car.model.contactor_closed = car.circuit.ev_contactor_closed = True
    car.stop()
    assert isinstance(car.model, ChademoEv) and car.model.stopping  # the driver's stop came first
    for pin in (13, 19, 26):  # k, connector present and the load's relay: all off
        assert not factory.pin(pin).state, pin


def test_a_car_whose_bus_cannot_open_names_it() -> None:
    spec = BenchCarSpec(1, "chademo", "socketcan_nonesuch", "can9",
                        {name: BenchLine(pin) for name, pin in (("d1", 5), ("d2", 6), ("k", 13), ("plug", 19))})
    factory = MockFactory()
    with pytest.raises(BenchCarError, match=r"\[\[car\]\] for connector 1 \(chademo on socketcan_nonesuch can9\)"):
        BenchCar(spec, pin_factory=factory)
    for pin in (5, 6, 13, 19):  # the lines it had opened are released: they open again without a conflict
        DigitalOutputDevice(pin, pin_factory=factory).close()


def test_the_car_believes_the_charger_s_reports_until_they_stop() -> None:
    circuit = ReportedCircuit("chademo")
    data = database().encode_message(CHARGER_STATUS, {
        "ProtocolNumber": 2, "PresentVoltage": 372, "PresentCurrent": 61, "DischargeCompatible": 0, "Charging": 1,
        "ChargerMalfunction": 0, "Energizing": 1, "BatteryIncompatible": 0, "SystemMalfunction": 0,
        "StopControl": 0, "RemainingTime10s": 0, "RemainingTimeMin": 30})
    circuit.heard(Frame(CHARGER_STATUS, bytes(data), False))
    circuit.step(0.005)
    assert (circuit.outlet_voltage, circuit.current) == (372.0, 61.0)
    circuit.heard(Frame(CHARGER_STATUS, b"\x02", False))  # a short frame from the charger: noted, not believed
    assert circuit.current == 61.0
    circuit.reported_at -= STALE
    circuit.step(0.005)
    assert circuit.current == 0.0 and circuit.outlet_voltage == 0.0  # no report for a second: a dead cable


async def test_evse_hil_car_plays_the_bench_file_s_car_until_stopped(tmp_path: Path) -> None:
    path = tmp_path / "bench.toml"
    path.write_text('[[car]]\nconnector = 2\nkind = "gbt"\ninterface = "virtual"\nchannel = "bench-car-cli"\n'
                    f'[car.lines]\n{LINES["gbt"]}')
    env = {**os.environ, "GPIOZERO_PIN_FACTORY": "mock"}  # the bench Pi's GPIO, mocked
    missing = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "hil.cli", "car", "chademo", "--bench", str(path), env=env, stderr=subprocess.PIPE)
    _, err = await missing.communicate()
    assert missing.returncode == 2 and err.decode().strip() == f"evse-hil: {path}: no chademo [[car]]"
    car = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "hil.cli", "car", "gbt", "--bench", str(path), env=env, stdout=subprocess.PIPE)
    assert car.stdout is not None
    first = json.loads(await asyncio.wait_for(car.stdout.readline(), 20))
    assert first == {"event": "plugged in", "kind": "gbt", "connector": 2, "bus": "virtual bench-car-cli"}
    report = json.loads(await asyncio.wait_for(car.stdout.readline(), 5))
    assert report["phase"] == "off" and report["soc"] == 50.0  # no charger's 12 V auxiliary supply yet
    car.terminate()
    out, _ = await asyncio.wait_for(car.communicate(), 10)
    assert car.returncode == 0 and json.loads(out.splitlines()[-1]) == {"event": "unplugged"}


def test_a_send_the_bus_refuses_is_counted_and_logged_and_the_car_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    sends = GuardedSends("CHAdeMO car")
    sent: list[int] = []

    def refused() -> None:
        raise can.CanOperationError("Network is down")

    for _ in range(150):
        sends(refused)
    sends(lambda: sent.append(1))
    assert sends.errors == 150 and sent == [1]
    logged = [r.getMessage() for r in caplog.records if "cannot send" in r.getMessage()]
    assert logged == ["CHAdeMO car: cannot send on the bus (1 so far): Network is down",
                      "CHAdeMO car: cannot send on the bus (100 so far): Network is down"]


def test_a_soc_that_is_not_a_number_is_named_not_a_traceback(tmp_path: Path) -> None:
    path = tmp_path / "bench.toml"
    path.write_text(f'[[car]]\nconnector = 1\nkind = "gbt"\nsoc = "half"\n[car.lines]\n{LINES["gbt"]}')
    with pytest.raises(BenchFileError) as caught:
        load_bench(path)
    assert caught.value.problems == [f"{path}: car[0].soc = 'half': expected a state of charge from 0 to 100 %"]
