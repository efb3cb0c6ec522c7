"""Wiring a Pi cannot do, caught by `evse config check`; connectors named by id; what the CSMS URL may be."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from controller.config import ConfigError, load_config

PI = '[station]\nhardware = "pi"\n[ocpp]\ncsms_url = "ws://127.0.0.1:9/ocpp"\n'
AC = "[[connector]]\nid = {id}\n[connector.pilot]\npwm_pin = {pwm}\n{pilot}[connector.contactor]\npin = {coil}\n" \
     '[connector.meter]\nport = "/dev/ttyUSB{meter}"\n'


def _problems(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "charger.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return [p.removeprefix(f"{path}: ") for p in info.value.problems]


def _ac(id: int = 1, pwm: int = 18, coil: int = 17, meter: int = 0, extra: str = "", pilot: str = "") -> str:
    """One AC connector; a second one passes ``pilot="spi_device = 1\n"`` for an MCP3008 of its own."""
    return AC.format(id=id, pwm=pwm, coil=coil, meter=meter, pilot=pilot) + extra


def test_pins_of_a_bus_in_use_are_refused_with_the_bus_named(tmp_path: Path) -> None:
    problems = _problems(tmp_path, PI + _ac(coil=9, extra="[connector.led]\ndriver = \"gpio\"\nblue_pin = 14\n"))
    assert problems == [
        "connector[id=1].contactor.pin = 9: expected a GPIO that is not SPI0's (GPIO9/10/11 and CE0 GPIO8; "
        "connector[id=1].pilot uses SPI0)",
        "connector[id=1].led.blue_pin = 14: expected a GPIO that is not UART0's (GPIO14/15; rfid.port is on it)",
    ]
    # The same pins are free where the bus is not used: the reader on USB, the pilot's MCP3008 on SPI1.
    path = tmp_path / "free.toml"
    path.write_text(PI.replace("[ocpp]", '[rfid]\nport = "/dev/ttyUSB7"\n[ocpp]') + _ac(
        pwm=12, coil=9, pilot="spi_port = 1\n", extra="[connector.led]\ndriver = \"gpio\"\nblue_pin = 14\n"))
    load_config(path)


def test_simulated_builds_skip_the_pi_bus_rules(tmp_path: Path) -> None:
    path = tmp_path / "sim.toml"
    path.write_text('[station]\nhardware = "sim"\n' + _ac(coil=9))
    assert load_config(path).connector[0].contactor.pin == 9


def test_one_wire_sensors_share_their_pin_and_nothing_else_may(tmp_path: Path) -> None:
    w1 = '[connector.temperature]\ndriver = "w1"\n'
    lock = '[connector.lock]\ndriver = "gpio"\nlock_pin = 12\nunlock_pin = 13\nfeedback_pin = 4\n'
    problems = _problems(tmp_path, PI + _ac(extra=w1) + _ac(id=2, pwm=19, coil=20, meter=1, extra=w1 + lock,
                                                            pilot="spi_device = 1\n"))
    assert problems == ["connector[id=2].lock.feedback_pin = 4: expected a GPIO not already used by "
                        "connector[id=1].temperature.w1_pin"]


def test_hardware_pwm_needs_a_pwm_pin_and_a_channel_per_pilot(tmp_path: Path) -> None:
    pwm = 'driver = "pwm"\n'
    assert _problems(tmp_path, PI + _ac(pwm=17, coil=27, pilot=pwm)) == [
        "connector[id=1].pilot.pwm_pin = 17: expected GPIO12, 13, 18 or 19 (the pins with hardware PWM; "
        'pilot.driver = "gpio" times PWM in software on any pin)']
    two = PI + _ac(pilot=pwm) + _ac(id=2, pwm=12, coil=27, meter=1, pilot=pwm + "spi_device = 1\n")
    assert _problems(tmp_path, two) == [
        "connector[id=2].pilot.pwm_pin = 12: expected a pin on the other PWM channel (connector[id=1].pilot.pwm_pin "
        "is on PWM0 too: GPIO12/18 share PWM0, GPIO13/19 share PWM1)"]
    path = tmp_path / "two.toml"
    path.write_text(two.replace("pwm_pin = 12", "pwm_pin = 13"))
    assert [c.pilot.pwm_pin for c in load_config(path).connector] == [18, 13]


def test_two_devices_on_one_serial_port_are_refused(tmp_path: Path) -> None:
    text = PI.replace("[ocpp]", '[rfid]\nport = "/dev/ttyUSB0"\n[ocpp]') + _ac() + _ac(
        id=2, pwm=19, coil=27, meter=0, pilot="spi_device = 1\n")
    assert _problems(tmp_path, text) == [
        "connector[id=1].meter.port = '/dev/ttyUSB0': expected a serial port of its own (rfid.port is on "
        "/dev/ttyUSB0; each device needs its own adapter: the drivers do not share a port)",
        "connector[id=2].meter.port = '/dev/ttyUSB0': expected a serial port of its own (rfid.port is on "
        "/dev/ttyUSB0; each device needs its own adapter: the drivers do not share a port)",
    ]


def test_a_reader_at_a_baud_rate_it_does_not_use_is_refused(tmp_path: Path) -> None:
    text = '[station]\nhardware = "sim"\n[rfid]\ndriver = "{}"\nbaudrate = {}\n' + _ac()
    assert _problems(tmp_path, text.format("pn532", 9600)) == [
        "rfid.baudrate = 9600: expected 115200 (a PN532's HSU wakes at 115200 baud; or leave it out)"]
    assert _problems(tmp_path, text.format("rdm6300", 115200)) == [
        "rfid.baudrate = 115200: expected 9600 (an RDM6300 sends at 9600 baud; or leave it out)"]


@pytest.mark.parametrize("station_id", ["CP 01", "CP/01", "Ladesäule", "CP?x=1", "x" * 49, ""])
def test_a_station_id_that_is_no_url_segment_is_refused(tmp_path: Path, station_id: str) -> None:
    (problem,) = _problems(tmp_path, f'[station]\nhardware = "sim"\nid = "{station_id}"\n' + _ac())
    assert problem.startswith(f"station.id = {station_id!r}: expected 1-48 of the characters A-Z a-z 0-9")


def test_a_colon_in_the_id_cannot_go_with_basic_auth(tmp_path: Path) -> None:
    text = '[station]\nhardware = "sim"\nid = "CP:1"\n[ocpp]\nbasic_auth_password = "0123456789abcdef"\n' + _ac()
    assert _problems(tmp_path, text) == [
        "station.id = 'CP:1': expected no ':' with ocpp.basic_auth_password (HTTP Basic sends the id as the "
        "user name, which ends at the first ':')"]


def test_a_file_must_say_what_hardware_it_runs_on(tmp_path: Path) -> None:
    assert _problems(tmp_path, _ac(coil=18)) == [
        'station.hardware: not set: expected "pi" for a real charger or "sim" for simulated buses (a config file '
        "says which; [station] hardware = ...)",
        "connector[id=1].contactor.pin = 18: expected a GPIO not already used by connector[id=1].pilot.pwm_pin",
    ]


def test_connectors_are_named_by_id_or_by_place_where_the_id_is_no_use(tmp_path: Path) -> None:
    text = '[station]\nhardware = "sim"\n' + _ac(id=2, coil=18) + _ac(id=1, pwm=19, coil=19, meter=1,
                                                                      pilot="spi_device = 1\n")
    assert _problems(tmp_path, text) == [
        "connector[id=2].contactor.pin = 18: expected a GPIO not already used by connector[id=2].pilot.pwm_pin",
        "connector[id=1].contactor.pin = 19: expected a GPIO not already used by connector[id=1].pilot.pwm_pin",
    ]
    repeated = '[station]\nhardware = "sim"\n' + _ac(id=1) + _ac(id=1, pwm=19, coil=20, meter=1,
                                                                  pilot="spi_device = 1\n")
    assert _problems(tmp_path, repeated) == ["connector[#2].id = 1: expected a connector id not used before"]


def test_csms_on_the_command_line_stands_in_for_an_empty_csms_url(tmp_path: Path) -> None:
    path = tmp_path / "pi.toml"
    path.write_text('[station]\nhardware = "pi"\n' + _ac())
    with pytest.raises(ConfigError, match=r"ocpp\.csms_url = ''"):
        load_config(path)
    assert load_config(path, csms_url="ws://127.0.0.1:9/ocpp").ocpp.csms_url == "ws://127.0.0.1:9/ocpp"
    assert load_config(path, csms_url="builtin").ocpp.csms_url == "builtin"
    proc = subprocess.run([sys.executable, "-m", "controller.cli", "run", "--config", str(path), "--csms",
                           "ws://127.0.0.1:9/ocpp", "--state-dir", str(tmp_path / "state")],
                          capture_output=True, text=True, timeout=30)
    # Past the config to the hardware: this machine has no GPIO, and says so in one line.
    assert proc.returncode == 2 and proc.stderr.strip().endswith("for simulated hardware set station.hardware = "
                                                                 '"sim"'), proc.stderr
