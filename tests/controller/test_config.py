"""Config validation: every problem names the file, key, value and what was expected; the CLI exits 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from controller import firmware_guard
from controller.cli import main
from controller.config import ConfigError, default_config, load_config

ROOT = Path(__file__).resolve().parents[2]


#: Snippets here leave station.hardware out unless they are about it.
NOT_SAID = "station.hardware: not set"


def _problems(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "charger.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return [p for p in info.value.problems if NOT_SAID not in p]


def test_shipped_configs_are_valid() -> None:
    shipped = sorted(p.name for p in (ROOT / "config").glob("*.toml"))
    assert {"sim.toml", "pi-ac-single.toml", "sim-two-socket.toml", "sim-chademo.toml", "sim-gbt.toml",
            "pi-dc-chademo.toml"} <= set(shipped)
    for name in shipped:
        load_config(ROOT / "config" / name)


def test_sim_toml_is_the_embedded_default() -> None:
    shipped = load_config(ROOT / "config" / "sim.toml")
    built_in = default_config()
    shipped.source = built_in.source = ""
    assert shipped == built_in


def test_a_wrong_pin_names_file_key_value_and_range(tmp_path: Path) -> None:
    problems = _problems(tmp_path, "[[connector]]\nid = 1\n[connector.pilot]\npwm_pin = 40\n")
    path = tmp_path / "charger.toml"
    assert problems == [f"{path}: connector[id=1].pilot.pwm_pin = 40: expected an integer from 0 to 27"]


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    problems = _problems(
        tmp_path,
        '[station]\nhardware = "arduino"\n[ocpp]\nheartbeat_interval = "often"\n'
        '[[connector]]\nid = 1\nmax_current = 2000\nphases = 2\ncolour = "red"\n'
        '[connector.meter]\nparity = "X"\n',
    )
    text = "\n".join(problems)
    assert "station.hardware = 'arduino': expected one of sim, pi" in text
    assert "ocpp.heartbeat_interval = 'often': expected an integer" in text
    assert "connector[id=1].max_current = 2000: expected a number from 1 to 1000" in text
    assert "connector[id=1].phases = 2: expected one of 1, 3" in text
    assert "connector[id=1].colour: unknown key; expected one of" in text
    assert "connector[id=1].meter.parity = 'X': expected one of N, E, O" in text
    assert len(problems) == 6


def test_cross_field_rules(tmp_path: Path) -> None:
    problems = _problems(
        tmp_path,
        '[station]\nhardware = "pi"\n[[connector]]\nid = 1\nmax_current = 100\n[connector.contactor]\npin = 18\n'
        '[connector.meter]\nmodel = "sdm999"\n',
    )
    text = "\n".join(problems)
    assert "ocpp.csms_url = '': expected a ws:// or wss:// URL, or 'builtin' for a test charge" in text
    assert ("connector[id=1].contactor.pin = 18: expected a GPIO not already used by "
            "connector[id=1].pilot.pwm_pin") in text
    assert "connector[id=1].meter.model = 'sdm999'" in text and "sdm630" in text
    assert "connector[id=1].max_current = 100: expected a number from 6 to 80 (amps per phase on AC)" in text


def test_safety_device_rules(tmp_path: Path) -> None:
    problems = _problems(
        tmp_path,
        '[[connector]]\nid = 1\n[connector.pilot]\nadc_low_channel = 0\n[connector.proximity]\nadc_channel = 0\n'
        '[connector.rcm]\ndriver = "gpio"\nfault_pin = 3\ntest_pin = 17\n'
        '[connector.temperature]\ndriver = "w1"\nderate_at = 70.0\nstop_at = 65.0\n',
    )
    text = "\n".join(problems)
    assert ("connector[id=1].pilot.adc_low_channel = 0: expected an MCP3008 channel not already used by "
            "connector[id=1].pilot.adc_channel") in text
    assert "connector[id=1].proximity.adc_channel = 0: expected an MCP3008 channel not already used" in text
    assert "connector[id=1].rcm.fault_pin = 3: expected a GPIO without a fixed pull-up" in text
    assert ("connector[id=1].rcm.test_pin = 17: expected a GPIO not already used by "
            "connector[id=1].contactor.pin") in text
    assert "connector[id=1].temperature.stop_at = 65: expected more than derate_at (70)" in text
    assert len(problems) == 5


def test_no_connector_and_bad_url(tmp_path: Path) -> None:
    problems = _problems(tmp_path, '[ocpp]\ncsms_url = "http://csms"\n')
    assert any("at least one [[connector]]" in p for p in problems)
    assert any("ocpp.csms_url = 'http://csms': expected a ws:// or wss:// URL" in p for p in problems)


def test_broken_toml_and_missing_file(tmp_path: Path) -> None:
    assert "not valid TOML" in _problems(tmp_path, "[station\n")[0]
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "absent.toml")


def test_config_check_prints_ok_or_problems_and_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "check", str(ROOT / "config" / "pi-ac-single.toml")]) == 0
    assert capsys.readouterr().out.strip() == "OK"
    bad = tmp_path / "bad.toml"
    bad.write_text('[station]\nhardware = "sim"\n[[connector]]\nid = 1\nmax_current = 5\n')
    assert main(["config", "check", str(bad)]) == 2
    assert capsys.readouterr().out.strip() == (f"{bad}: connector[id=1].max_current = 5: expected a number from 6 "
                                               "to 80 (amps per phase on AC)")


def test_evse_run_refuses_to_start_on_a_bad_config(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[station]\nhardware = "pi"\n[[connector]]\nid = 1\n')
    proc = subprocess.run(
        [sys.executable, "-m", "controller.cli", "run", "--config", str(bad), "--state-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=30,
    )
    assert proc.returncode == 2
    assert "ocpp.csms_url" in proc.stderr and "not starting" in proc.stderr


def _evse_run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "controller.cli", "run", *args], capture_output=True, text=True,
                          timeout=30, cwd=tmp_path)


def test_a_config_that_is_not_utf8_is_one_line_and_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "latin1.toml"
    bad.write_bytes('[station]\nid = "Caf\xe9"\n'.encode("latin-1"))
    proc = _evse_run(tmp_path, "--config", str(bad), "--state-dir", str(tmp_path / "state"))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert f"{bad}: not UTF-8 text (byte 19): save the file as UTF-8" in proc.stderr
    assert not (tmp_path / "state").exists()


def test_a_state_dir_that_is_a_file_is_one_line_and_exit_2(tmp_path: Path) -> None:
    (tmp_path / "state").write_text("not a directory")
    proc = _evse_run(tmp_path, "--state-dir", str(tmp_path / "state"))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "is a file: point --state-dir (or station.state_dir) at a directory" in proc.stderr


def test_real_hardware_without_a_gpio_backend_says_what_is_missing(tmp_path: Path) -> None:
    config = tmp_path / "pi.toml"
    config.write_text('[station]\nhardware = "pi"\n[ocpp]\ncsms_url = "ws://127.0.0.1:9/ocpp"\n'
                      "[[connector]]\nid = 1\n")
    proc = _evse_run(tmp_path, "--config", str(config), "--state-dir", str(tmp_path / "state"))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr  # this machine is no Raspberry Pi
    lines = [line for line in proc.stderr.splitlines() if line.startswith("evse:")]
    assert lines == ["evse: not starting: no GPIO backend: this is not a Raspberry Pi, or the pi extra is missing "
                     "(pip install 'evse-controller[pi]'); for simulated hardware set station.hardware = \"sim\""]
    assert not (tmp_path / "state").exists()  # nothing created before the check passed


def test_the_systemd_unit_starts_the_current_release_through_the_guard_and_stops_looping_on_a_bad_config() -> None:
    unit = (ROOT / "systemd" / "evse.service").read_text()
    settings = dict(line.split("=", 1) for line in unit.splitlines() if "=" in line and not line.startswith("#"))
    assert settings["StateDirectory"] == "evse" and settings["WorkingDirectory"] == "/var/lib/evse"
    assert settings["ExecStart"] == ("/usr/bin/python3 /opt/evse/guard.py /opt/evse start -- run --config "
                                     "/etc/evse/config.toml --state-dir ${STATE_DIRECTORY}")
    # A bad config is said a few times, not forever; a release on trial gets the restarts that roll it back.
    assert "RestartPreventExitStatus" not in settings and settings["Restart"] == "always"
    assert int(settings["StartLimitBurst"]) > firmware_guard.MAX_TRIAL_STARTS
    assert settings["ProtectSystem"] == "strict" and settings["ReadWritePaths"] == "/opt/evse"


def test_a_csms_url_that_cannot_work_is_refused_without_showing_its_password(tmp_path: Path) -> None:
    for url in ("ws://cp:s3cret@127.0.0.1:99999/ocpp", "ws://cp:s3cret@csms.example/ocpp#x", "wss://"):
        proc = _evse_run(tmp_path, "--csms", url, "--state-dir", str(tmp_path / "state"))
        assert proc.returncode == 2 and "Traceback" not in proc.stderr and "s3cret" not in proc.stderr
        assert "expected a ws:// or wss:// URL" in proc.stderr
    problems = _problems(tmp_path,
                         '[ocpp]\ncsms_url = "ws://cp:s3cret@csms.example/ocpp#frag"\n[[connector]]\nid = 1\n')
    assert problems == [f"{tmp_path / 'charger.toml'}: ocpp.csms_url = 'ws://cp:***@csms.example/ocpp#frag': expected "
                        "a ws:// or wss:// URL without a #fragment"]


def test_an_unknown_time_zone_is_named(tmp_path: Path) -> None:
    problems = _problems(tmp_path, '[station]\ntimezone = "Europe/Springfield"\n[[connector]]\nid = 1\n')
    assert problems == [f"{tmp_path / 'charger.toml'}: station.timezone = 'Europe/Springfield': expected an IANA "
                        "time zone such as 'Europe/Berlin' or 'UTC' (see /usr/share/zoneinfo)"]
