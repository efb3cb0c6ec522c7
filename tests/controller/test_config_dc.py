"""DC connectors in the config: the CAN buses, the power modules, the IMD and the DC lines, and their rules."""

from __future__ import annotations

from pathlib import Path

import pytest

from controller.config import ConfigError, load_config

ROOT = Path(__file__).resolve().parents[2]
DC = ('[[connector]]\nid = 1\nkind = "{kind}"\nmax_current = 125\n[connector.meter]\nmodel = "djsf1352"\n'
      'poll_interval = 0.2\n')


#: Snippets here leave station.hardware out unless they are about it.
NOT_SAID = "station.hardware: not set"


def _problems(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "charger.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return [p.removeprefix(f"{path}: ") for p in info.value.problems if NOT_SAID not in p]


def test_the_real_chademo_build_reads_as_its_wiring_header_says() -> None:
    config = load_config(ROOT / "config" / "pi-dc-chademo.toml")
    conn = config.connector[0]
    assert conn.kind == "chademo" and conn.dc
    assert (conn.can.interface, conn.can.channel, conn.can.bitrate) == ("socketcan", "can0", 500_000)
    assert (conn.dc_power.can.channel, conn.dc_power.can.bitrate) == ("can1", 125_000)
    assert conn.dc_power.addresses == [0, 1, 2, 3]
    assert (conn.imd.port, conn.imd.parity, conn.imd.address) == ("/dev/ttyUSB1", "E", 3)
    assert (conn.dc_io.d1_pin, conn.dc_io.d2_pin, conn.dc_io.k_pin, conn.dc_io.plug_pin) == (5, 6, 22, 24)


def test_a_module_bus_given_in_part_keeps_its_own_defaults(tmp_path: Path) -> None:
    path = tmp_path / "charger.toml"
    path.write_text('[station]\nhardware = "sim"\n' + DC.format(kind="gbt")
                    + "[connector.dc_power.can]\noptions = { fd = false }\n")
    conn = load_config(path).connector[0]
    assert (conn.dc_power.can.channel, conn.dc_power.can.options) == ("can1", {"fd": False})
    assert conn.can.channel == "can0"


def test_each_protocol_runs_at_its_own_bitrate(tmp_path: Path) -> None:
    problems = _problems(tmp_path, DC.format(kind="chademo") + "[connector.can]\nbitrate = 250000\n"
                         "[connector.dc_power.can]\nbitrate = 500000\n")
    assert problems == [
        "connector[id=1].can.bitrate = 250000: expected 500000 (CHAdeMO runs at 500 kbit/s; or leave it out)",
        "connector[id=1].dc_power.can.bitrate = 500000: expected 125000 (InfyPower runs at 125 kbit/s; or leave it "
        "out)",
    ]
    problems = _problems(tmp_path, DC.format(kind="gbt") + "[connector.can]\nbitrate = 500000\n")
    assert problems == ["connector[id=1].can.bitrate = 500000: expected 250000 (GB/T 27930 runs at 250 kbit/s; "
                        "or leave it out)"]


def test_the_power_modules_need_a_bus_of_their_own(tmp_path: Path) -> None:
    problems = _problems(tmp_path, DC.format(kind="chademo") + '[connector.dc_power.can]\nchannel = "can0"\n')
    assert problems == ["connector[id=1].dc_power.can.channel = 'can0': expected a CAN bus of its own (socketcan can0 "
                        "is already connector[id=1].can): the power modules need their own controller"]
    second = ('[[connector]]\nid = 2\nkind = "gbt"\nmax_current = 125\n[connector.meter]\nmodel = "djsf1352"\n'
              'poll_interval = 0.2\n'
              '[connector.can]\nchannel = "can2"\n[connector.contactor]\npin = 21\n'
              '[connector.dc_io]\naux_pin = 18\nbleed_pin = 19\nestop_pin = 12\n')
    problems = _problems(tmp_path, DC.format(kind="chademo") + second)
    assert problems == ["connector[id=2].dc_power.can.channel = 'can1': expected a CAN bus of its own (socketcan can1 "
                        "is already connector[id=1].dc_power.can): the power modules need their own controller"]


def test_a_dc_connector_needs_a_dc_meter_and_an_ac_one_an_ac_meter(tmp_path: Path) -> None:
    problems = _problems(tmp_path, DC.format(kind="chademo").replace("djsf1352", "sdm630"))
    assert problems == ["connector[id=1].meter.model = 'sdm630': expected a DC meter for a connector of kind "
                        "'chademo' (this map measures AC)"]
    problems = _problems(tmp_path, '[[connector]]\nid = 1\n[connector.meter]\nmodel = "djsf1352"\n')
    assert problems == ["connector[id=1].meter.model = 'djsf1352': expected an AC meter for a connector of kind 'ac' "
                        "(this map measures DC)"]


def test_dc_lines_share_the_pin_check_with_every_other_device(tmp_path: Path) -> None:
    problems = _problems(tmp_path, DC.format(kind="chademo") + "[connector.dc_io]\nk_pin = 17\nbleed_pin = 6\n")
    assert problems == [
        "connector[id=1].dc_io.k_pin = 17: expected a GPIO not already used by connector[id=1].contactor.pin",
        "connector[id=1].dc_io.bleed_pin = 6: expected a GPIO not already used by connector[id=1].dc_io.d2_pin",
    ]
    # GB/T has no d1/d2/k: those pins are free for other devices; CC1 is an MCP3008 channel like the pilot's.
    gbt = DC.format(kind="gbt") + "[connector.dc_io]\nd1_pin = 20\nspi_device = 0\ncc1_channel = 1\n"
    ac = '[[connector]]\nid = 2\n[connector.pilot]\npwm_pin = 13\nadc_channel = 1\n[connector.contactor]\npin = 12\n'
    assert _problems(tmp_path, gbt + ac) == ["connector[id=2].pilot.adc_channel = 1: expected an MCP3008 channel not "
                                             "already used by connector[id=1].dc_io.cc1_channel"]


def test_module_addresses_and_bus_options_are_checked(tmp_path: Path) -> None:
    text = DC.format(kind="chademo") + ('[connector.dc_power]\naddresses = [0, 70, "1"]\n'
                                        '[connector.can]\noptions = { a = [1] }\n[connector.imd]\nalarm_kohm = 600\n')
    problems = _problems(tmp_path, text)
    assert problems == [
        "connector[id=1].can.options = {'a': [1]}: expected an inline table of plain values (such as { name = 1 })",
        "connector[id=1].dc_power.addresses = [0, 70, '1']: expected an array, each item an integer from 0 to 62",
    ]
    problems = _problems(tmp_path, DC.format(kind="chademo") + "[connector.dc_power]\naddresses = [1, 1]\n"
                         "[connector.imd]\nalarm_kohm = 600\n")
    assert problems == ["connector[id=1].dc_power.addresses = [1, 1]: expected distinct module addresses",
                        "connector[id=1].imd.alarm_kohm = 600: expected less than prewarning_kohm (500)"]


def test_a_dc_meter_must_be_polled_fast_enough_to_be_the_outlet_voltage(tmp_path: Path) -> None:
    text = DC.format(kind="gbt").replace("poll_interval = 0.2", "poll_interval = 1.0\ntimeout = 2.0\n"
                                         'loss_policy = "continue"')
    assert _problems(tmp_path, text) == [
        "connector[id=1].meter.poll_interval = 1: expected at most 0.3 on a DC connector (its meter is the outlet "
        "voltage; 0.2 is usual)",
        "connector[id=1].meter.timeout = 2: expected at most 0.5 on a DC connector (a reading older than 1 s counts "
        "as no reading)",
        "connector[id=1].meter.loss_policy = 'continue': expected 'stop' on a DC connector (its meter is the outlet "
        "voltage: unlocking depends on it)",
    ]


def test_active_high_dc_inputs_may_not_sit_on_the_i2c_pull_ups_and_two_cars_need_two_buses(tmp_path: Path) -> None:
    text = DC.format(kind="chademo") + "[connector.dc_io]\nestop_pin = 2\nk_pin = 3\n"
    assert _problems(tmp_path, text) == [
        "connector[id=1].dc_io.k_pin = 3: expected a GPIO without a fixed pull-up (GPIO2/3 have the I2C pull-ups; an "
        "active-high input needs a pull-down)",
        "connector[id=1].dc_io.estop_pin = 2: expected a GPIO without a fixed pull-up (GPIO2/3 have the I2C pull-ups; "
        "an active-high input needs a pull-down)",
    ]
    second = ('[[connector]]\nid = 2\nkind = "gbt"\nmax_current = 125\n[connector.meter]\nmodel = "djsf1352"\n'
              'poll_interval = 0.2\n[connector.dc_power.can]\nchannel = "can3"\n[connector.contactor]\npin = 21\n'
              '[connector.dc_io]\naux_pin = 18\nbleed_pin = 19\nestop_pin = 12\n')
    assert _problems(tmp_path, DC.format(kind="chademo") + second) == [
        "connector[id=2].can.channel = 'can0': expected a CAN bus of its own (socketcan can0 is already "
        "connector[id=1].can): each car needs its own controller"]
