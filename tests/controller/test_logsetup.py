"""--log-level: one level, levels per component, and the OCPP frame log switched at run time."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from controller.cli import main
from controller.logsetup import FRAMES, LogLevelError, parse_levels, setup_logging, toggle_frame_log


@pytest.fixture(autouse=True)
def _restore_levels() -> Iterator[None]:
    names = ("", FRAMES, "controller.ocpp", "controller.evse", "pymodbus", "websockets")
    saved = {n: logging.getLogger(n).level for n in names}
    yield
    for name, level in saved.items():
        logging.getLogger(name).setLevel(level)


def test_a_spec_is_a_level_component_levels_or_both() -> None:
    assert parse_levels("warning") == ("warning", {})
    assert parse_levels("controller.ocpp=debug") == ("info", {"controller.ocpp": "debug"})
    assert parse_levels("error, controller.evse=DEBUG,pymodbus=info") == (
        "error", {"controller.evse": "debug", "pymodbus": "info"})
    with pytest.raises(LogLevelError, match="'loud' is not a level; expected one of debug, info, warning, error"):
        parse_levels("controller.ocpp=loud")


def test_component_levels_apply_and_pymodbus_stays_quiet_unless_named() -> None:
    setup_logging("warning,controller.evse=debug")
    assert logging.getLogger("controller.evse.machine").isEnabledFor(logging.DEBUG)
    assert not logging.getLogger("controller.ocpp.client").isEnabledFor(logging.INFO)
    assert not logging.getLogger("pymodbus.logging").isEnabledFor(logging.INFO)
    assert not logging.getLogger(FRAMES).isEnabledFor(logging.DEBUG)
    setup_logging("info,pymodbus=info,controller.ocpp=debug")
    assert logging.getLogger("pymodbus.logging").isEnabledFor(logging.INFO)
    assert logging.getLogger(FRAMES).isEnabledFor(logging.DEBUG)  # the client's debugging includes its frames


def test_the_frame_log_switches_on_and_off() -> None:
    setup_logging("info")
    assert toggle_frame_log() is True and logging.getLogger(FRAMES).isEnabledFor(logging.DEBUG)
    assert toggle_frame_log() is False and not logging.getLogger(FRAMES).isEnabledFor(logging.DEBUG)


def test_a_bad_log_level_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as ended:
        main(["run", "--log-level", "controller.ocpp=chatty"])
    assert ended.value.code == 2
    assert "'chatty' is not a level" in capsys.readouterr().err


def test_version_names_the_installed_package(capsys: pytest.CaptureFixture[str]) -> None:
    from importlib.metadata import version

    with pytest.raises(SystemExit) as ended:
        main(["--version"])
    assert ended.value.code == 0
    assert capsys.readouterr().out.strip() == f"evse {version('evse-controller')}"
