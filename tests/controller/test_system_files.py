"""What the installer writes around the charger: udev rules from the plugged-in devices, CAN network files,
the boot lines a build needs."""

from __future__ import annotations

from pathlib import Path

from controller.config import load_config
from controller.system_files import (
    boot_lines,
    can_channels,
    missing_boot_lines,
    networkd_file,
    serial_console_problem,
    udev_rules,
)

ROOT = Path(__file__).resolve().parents[2]
DC = load_config(ROOT / "config" / "pi-dc-chademo.toml")
AC = load_config(ROOT / "config" / "pi-ac-single.toml")

PLUGGED = {
    "/dev/ttyUSB0": {"ID_VENDOR_ID": "0403", "ID_MODEL_ID": "6001", "ID_SERIAL_SHORT": "A10K3XJ2"},
    "/dev/ttyUSB1": {"ID_PATH": "platform-fd500000.pcie-pci-0000:01:00.0-usb-0:1.3:1.0"},  # a CH340: no serial
    "can1": {"ID_VENDOR_ID": "1d50", "ID_MODEL_ID": "606f", "ID_SERIAL_SHORT": "003A00385741"},
}


def test_udev_rules_find_each_adapter_again_and_say_which_key_to_change() -> None:
    rules, notes = udev_rules(DC, lambda name: PLUGGED.get(name, {}))
    assert ('SUBSYSTEM=="tty", ENV{ID_VENDOR_ID}=="0403", ENV{ID_MODEL_ID}=="6001", ENV{ID_SERIAL_SHORT}=="A10K3XJ2", '
            'SYMLINK+="evse/meter-1", GROUP="dialout", MODE="0660"') in rules
    assert ('SUBSYSTEM=="tty", ENV{ID_PATH}=="platform-fd500000.pcie-pci-0000:01:00.0-usb-0:1.3:1.0", '
            'SYMLINK+="evse/imd-1"') in rules
    assert ('SUBSYSTEM=="net", ACTION=="add", ENV{ID_VENDOR_ID}=="1d50", ENV{ID_MODEL_ID}=="606f", '
            'ENV{ID_SERIAL_SHORT}=="003A00385741", NAME="can1"') in rules
    assert ('connector[id=1].meter.port = /dev/ttyUSB0: now also /dev/evse/meter-1; set connector[id=1].meter.port '
            '= "/dev/evse/meter-1" so that it survives re-plugging') in notes
    assert "rfid.port = /dev/serial0: on-board or already stable, no rule needed" in notes
    assert "CAN can0: not a USB adapter plugged in now (an SPI HAT keeps its name), no rule" in notes


def test_an_adapter_that_is_not_plugged_in_gets_no_rule_and_a_note() -> None:
    rules, notes = udev_rules(AC, lambda name: {})
    assert "SYMLINK" not in rules
    assert notes[-1].startswith("connector[id=1].meter.port = /dev/ttyUSB0: not plugged in now, no rule written")


def test_each_socketcan_bus_comes_up_at_its_protocols_bitrate() -> None:
    assert can_channels(DC) == {"can0": 500000, "can1": 125000}
    text = networkd_file("can1", 125000)
    assert "[Match]\nName=can1\n" in text and "[CAN]\nBitRate=125000\n" in text and "RestartSec=100ms" in text
    assert "RequiredForOnline=no" in text
    assert can_channels(AC) == {}


def test_boot_lines_follow_the_build_and_only_the_missing_ones_are_asked_for() -> None:
    lines = [line for line, _ in boot_lines(AC)]
    assert lines == ["dtparam=spi=on", "enable_uart=1", "dtoverlay=disable-bt", "dtoverlay=pwm,pin=18,func=2"]
    missing = [line for line, _ in missing_boot_lines(AC, "[all]\ndtparam=spi=on\nenable_uart=1\n")]
    assert missing == ["dtoverlay=disable-bt", "dtoverlay=pwm,pin=18,func=2"]
    assert "dtoverlay=mcp2515-can0,oscillator=16000000,interrupt=25" in [line for line, _ in boot_lines(DC)]


def test_the_serial_console_on_the_readers_uart_is_named() -> None:
    cmdline = "console=serial0,115200 console=tty1 root=PARTUUID=1-02 rootwait"
    assert serial_console_problem(AC, cmdline) == "console=serial0,115200"
    assert serial_console_problem(AC, "console=tty1 root=PARTUUID=1-02") is None
