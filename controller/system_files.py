"""What a charger's config asks of the system around it: udev rules, systemd-networkd files, boot overlays.

Pure functions of a :class:`~controller.config.Config` (and, for udev, of what udev says about the devices plugged
in now), so that the installer writes them and the tests read them without a Pi.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from controller.config import Config
from controller.config.dc import PROTOCOL_BITRATE
from controller.config.wiring import UART0_PORTS, serial_devices

#: Looks a device up in udev: port or interface -> its properties (``udevadm info --query=property``); {} if absent.
Lookup = Callable[[str], dict[str, str]]


def can_channels(config: Config) -> dict[str, int]:
    """socketcan interface -> bitrate, for every bus the config puts on socketcan."""
    channels: dict[str, int] = {}
    for conn in config.connector:
        if not conn.dc:
            continue
        for bus, protocol in ((conn.can, conn.kind), (conn.dc_power.can, conn.dc_power.driver)):
            if bus.interface == "socketcan":
                channels[bus.channel] = bus.bitrate or PROTOCOL_BITRATE[protocol]
    return channels


def networkd_file(channel: str, bitrate: int) -> str:
    """A systemd-networkd .network file that brings ``channel`` up at ``bitrate`` at boot (and after bus-off)."""
    return (f"# Written by the evse installer: the CAN bus {channel} at {bitrate} bit/s.\n"
            f"[Match]\nName={channel}\n\n[CAN]\nBitRate={bitrate}\n# Back from bus-off by itself.\nRestartSec=100ms\n\n"
            "[Link]\n# Not part of being online: the charger's CSMS link is.\nRequiredForOnline=no\n")


def _rule_key(props: dict[str, str]) -> str | None:
    """The udev match that finds this USB device again, whatever port number it gets."""
    if props.get("ID_SERIAL_SHORT") and props.get("ID_VENDOR_ID"):
        return (f'ENV{{ID_VENDOR_ID}}=="{props["ID_VENDOR_ID"]}", ENV{{ID_MODEL_ID}}=="{props.get("ID_MODEL_ID", "")}"'
                f', ENV{{ID_SERIAL_SHORT}}=="{props["ID_SERIAL_SHORT"]}"')
    if props.get("ID_PATH"):  # no serial number (cheap CH340s): the USB port it is plugged into
        return f'ENV{{ID_PATH}}=="{props["ID_PATH"]}"'
    return None


def udev_rules(config: Config, lookup: Lookup) -> tuple[str, list[str]]:
    """The rules file, and one line per device saying what it found (and which config key to change)."""
    lines = ["# Written by the evse installer from /etc/evse/config.toml and the devices plugged in when it ran.",
             "# Re-run the installer after moving a USB adapter to another device.",
             "# (GPIO, SPI and the PWM files get their groups from Raspberry Pi OS's own rules: 99-com.rules.)"]
    notes = []
    for device in serial_devices(config):
        if device.port.startswith("/dev/evse/"):
            notes.append(f"{device.key} = {device.port}: a stable name already")
            continue
        if device.port in UART0_PORTS or not re.match(r"/dev/tty(USB|ACM)\d+$", device.port):
            notes.append(f"{device.key} = {device.port}: on-board or already stable, no rule needed")
            continue
        key = _rule_key(lookup(device.port))
        if key is None:
            notes.append(f"{device.key} = {device.port}: not plugged in now, no rule written (plug it in and "
                         "re-run the installer for a stable name)")
            continue
        lines.append(f'SUBSYSTEM=="tty", {key}, SYMLINK+="evse/{device.role}", GROUP="dialout", MODE="0660"')
        notes.append(f"{device.key} = {device.port}: now also /dev/evse/{device.role}; set {device.key} = "
                     f'"/dev/evse/{device.role}" so that it survives re-plugging')
    for channel in can_channels(config):
        key = _rule_key(lookup(channel))
        if key is None:
            notes.append(f"CAN {channel}: not a USB adapter plugged in now (an SPI HAT keeps its name), no rule")
            continue
        lines.append(f'SUBSYSTEM=="net", ACTION=="add", {key}, NAME="{channel}"')
        notes.append(f"CAN {channel}: this USB adapter is named {channel} from now on, whatever order they appear in")
    return "\n".join(lines) + "\n", notes


def boot_lines(config: Config) -> list[tuple[str, str]]:
    """(line for /boot/firmware/config.txt, why) for every bus the build uses."""
    lines: list[tuple[str, str]] = []
    ac = [c for c in config.connector if c.kind == "ac" and not c.on_board]
    spi_ports = {c.pilot.spi_port for c in ac} | {c.dc_io.spi_port for c in config.connector if c.kind == "gbt"}
    if 0 in spi_ports:
        lines.append(("dtparam=spi=on", "the MCP3008 on SPI0"))
    if 1 in spi_ports:
        lines.append(("dtoverlay=spi1-2cs", "the MCP3008 on SPI1 (CE0 GPIO18, CE1 GPIO17)"))
    if any(d.port in UART0_PORTS for d in serial_devices(config)):
        lines.append(("enable_uart=1", "the device on /dev/serial0 (GPIO14/15)"))
        lines.append(("dtoverlay=disable-bt", "the full UART on GPIO14/15 instead of Bluetooth (Pi 3, 4, Zero W)"))
    pins = sorted({c.temperature.w1_pin for c in config.connector if c.temperature.driver == "w1"})
    lines += [(f"dtoverlay=w1-gpio,gpiopin={pin}", "the 1-Wire temperature sensors") for pin in pins]
    functions = {12: 4, 13: 4, 18: 2, 19: 2}  # the pin's ALT function that carries PWM (ALT0 = 4, ALT5 = 2)
    for conn in ac:
        if conn.pilot.driver == "pwm" and conn.pilot.pwm_pin in functions:
            pin = conn.pilot.pwm_pin
            lines.append((f"dtoverlay=pwm,pin={pin},func={functions[pin]}", f"the hardware PWM of connector "
                          f"{conn.id}'s pilot (two pilots: dtoverlay=pwm-2chan,pin=18,func=2,pin2=19,func2=2)"))
    for channel in can_channels(config):
        if channel == "can0":
            lines.append(("dtoverlay=mcp2515-can0,oscillator=16000000,interrupt=25",
                          "can0 on an MCP2515 HAT (check its crystal and interrupt pin; not for a USB adapter)"))
    return lines


def missing_boot_lines(config: Config, config_txt: str | None) -> list[tuple[str, str]]:
    """The boot lines ``config_txt`` (the file's text; None: not found) does not have yet."""
    have = {line.strip() for line in (config_txt or "").splitlines()}
    return [(line, why) for line, why in boot_lines(config) if line not in have]


def serial_console_problem(config: Config, cmdline: str | None) -> str | None:
    """The kernel's serial console sits on the UART a device needs: what to remove from cmdline.txt."""
    if cmdline is None or not any(d.port in UART0_PORTS for d in serial_devices(config)):
        return None
    console = re.search(r"console=(serial0|ttyAMA0|ttyS0),\d+", cmdline)
    return console[0] if console else None
