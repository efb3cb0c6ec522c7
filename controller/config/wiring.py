"""Wiring a Raspberry Pi cannot do: the rules ``evse config check`` adds for ``station.hardware = "pi"``.

A pin a bus owns while the bus is in use (SPI0/SPI1 for the MCP3008s, UART0 for a reader or meter on
``/dev/serial0``), a pilot on hardware PWM through a pin without it or
sharing a PWM channel, and two devices on one serial port. Pin numbers are BCM GPIOs, as everywhere in the config.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from controller.config.sections import Config, ConnectorSection

#: Records one problem: the key, the value as written, what was expected.
Problem = Callable[[str, object, str], None]

#: SPI bus -> its MISO, MOSI and SCLK GPIOs.
SPI_PINS = {0: (9, 10, 11), 1: (19, 20, 21)}
#: (SPI bus, chip select) -> the CE GPIO the kernel's spidev claims for it.
SPI_CE = {(0, 0): 8, (0, 1): 7, (1, 0): 18, (1, 1): 17, (1, 2): 16}
#: UART0 (the Pi's primary UART, /dev/serial0) TX and RX.
UART0_PINS = (14, 15)
UART0_PORTS = ("/dev/serial0", "/dev/ttyAMA0", "/dev/ttyS0")
#: GPIOs with hardware PWM -> the PWM channel they share (BCM2711/2837: PWM0 on 12 and 18, PWM1 on 13 and 19;
#: a Pi 5's RP1 gives each its own channel, so two pilots on 12 and 18 need a Pi 5; this rule asks for distinct
#: channels, which every model has).
HARDWARE_PWM = {12: 0, 18: 0, 13: 1, 19: 1}
#: The baud rates the card readers talk at: a PN532's HSU wakes at 115200 (only a command changes it, which the
#: driver does not send); an RDM6300 sends at 9600, fixed.
READER_BAUD = {"pn532": 115200, "rdm6300": 9600}


def wiring_rules(config: Config, labels: list[str], bad: Problem) -> None:
    """Append every wiring problem of a Pi build; ``labels[i]`` names connector i in a key (by its id)."""
    reserved = _reserved_pins(config, labels)
    for conn, where in zip(config.connector, labels, strict=True):
        for key, pin in connector_pins(conn):
            owner = reserved.get(pin) if pin is not None else None
            if owner:
                bad(f"{where}.{key}", pin, f"a GPIO that is not {owner}")
    _pwm_rules(config, labels, bad)
    _serial_rules(config, labels, bad)


def reader_baud_problem(config: Config) -> str | None:
    """What is wrong with ``rfid.baudrate`` for its reader (None: nothing); checked on every platform."""
    wanted = READER_BAUD.get(config.rfid.driver)
    if wanted is None or config.rfid.baudrate in (None, wanted):
        return None
    name = "a PN532's HSU wakes at" if config.rfid.driver == "pn532" else "an RDM6300 sends at"
    return f"{wanted} ({name} {wanted} baud; or leave it out)"


def _reserved_pins(config: Config, labels: list[str]) -> dict[int, str]:
    """GPIO -> the bus that owns it in this build and why it is in use."""
    reserved: dict[int, str] = {}
    for (port, device), user in _spi_users(config, labels).items():
        why = f"SPI{port}'s (GPIO{'/'.join(map(str, SPI_PINS[port]))} and CE{device} GPIO{SPI_CE[port, device]}; " \
              f"{user} uses SPI{port})"
        for pin in (*SPI_PINS[port], SPI_CE[port, device]):
            reserved.setdefault(pin, why)
    uart_user = next((d.key for d in serial_devices(config, labels) if d.port in UART0_PORTS), None)
    if uart_user:
        for pin in UART0_PINS:
            reserved.setdefault(pin, f"UART0's (GPIO14/15; {uart_user} is on it)")
    return reserved


def _spi_users(config: Config, labels: list[str]) -> dict[tuple[int, int], str]:
    """(SPI bus, chip select) -> the first key that puts an MCP3008 there."""
    users: dict[tuple[int, int], str] = {}
    for conn, where in zip(config.connector, labels, strict=True):
        if conn.kind == "ac" and not conn.on_board:
            users.setdefault((conn.pilot.spi_port, conn.pilot.spi_device), f"{where}.pilot")
        elif conn.kind == "gbt":
            users.setdefault((conn.dc_io.spi_port, conn.dc_io.spi_device), f"{where}.dc_io.cc1_channel")
    return users


def connector_pins(conn: ConnectorSection) -> list[tuple[str, int | None]]:
    """Every GPIO a connector's config uses, with its key."""
    pins: list[tuple[str, int | None]] = [] if conn.on_board else [
        ("contactor.pin", conn.contactor.pin),
        ("contactor.mirror_pin", conn.contactor.mirror_pin),
    ]
    io = conn.dc_io
    if conn.on_board:
        pass  # the board's pilot and relay: no GPIO of the Pi's
    elif conn.kind == "ac":
        pins.insert(0, ("pilot.pwm_pin", conn.pilot.pwm_pin))
    elif conn.kind == "chademo":
        pins += [("dc_io.d1_pin", io.d1_pin), ("dc_io.d2_pin", io.d2_pin), ("dc_io.k_pin", io.k_pin),
                 ("dc_io.plug_pin", io.plug_pin)]
    else:
        pins += [("dc_io.aux_pin", io.aux_pin)]
    if conn.dc:
        pins += [("dc_io.bleed_pin", io.bleed_pin), ("dc_io.estop_pin", io.estop_pin)]
    if conn.rcm.driver == "gpio":
        pins += [("rcm.fault_pin", conn.rcm.fault_pin), ("rcm.test_pin", conn.rcm.test_pin)]
    if conn.lock.driver != "none":
        pins += [("lock.lock_pin", conn.lock.lock_pin), ("lock.unlock_pin", conn.lock.unlock_pin),
                 ("lock.feedback_pin", conn.lock.feedback_pin)]
    if conn.led.driver != "none":
        pins += [("led.red_pin", conn.led.red_pin), ("led.green_pin", conn.led.green_pin),
                 ("led.blue_pin", conn.led.blue_pin)]
    if conn.temperature.driver == "w1":
        pins += [("temperature.w1_pin", conn.temperature.w1_pin)]  # the 1-Wire bus: no other device on it
    return pins


def _pwm_rules(config: Config, labels: list[str], bad: Problem) -> None:
    channels: dict[int, str] = {}
    for conn, where in zip(config.connector, labels, strict=True):
        if conn.kind != "ac" or conn.pilot.driver != "pwm":
            continue
        pin = conn.pilot.pwm_pin
        if pin not in HARDWARE_PWM:
            bad(f"{where}.pilot.pwm_pin", pin, "GPIO12, 13, 18 or 19 (the pins with hardware PWM; "
                'pilot.driver = "gpio" times PWM in software on any pin)')
            continue
        channel = HARDWARE_PWM[pin]
        if channel in channels:
            bad(f"{where}.pilot.pwm_pin", pin, f"a pin on the other PWM channel ({channels[channel]} is on "
                f"PWM{channel} too: GPIO12/18 share PWM0, GPIO13/19 share PWM1)")
        channels[channel] = f"{where}.pilot.pwm_pin"


@dataclass(frozen=True)
class SerialDevice:
    """A device on a serial port, as the config names it."""

    key: str  # the config key, e.g. "connector[id=1].meter.port"
    role: str  # its stable name under /dev/evse/ (the installer's udev rules), e.g. "meter-1"
    port: str


def serial_devices(config: Config, labels: list[str] | None = None) -> list[SerialDevice]:
    """Every device of the config on a serial port: the reader, meters, IMDs and EVSE boards on RTU. ``labels``
    names the connectors in the keys (default ``connector[id=N]``)."""
    labels = labels or [f"connector[id={c.id}]" for c in config.connector]
    devices = []
    if config.rfid.driver != "none":
        devices.append(SerialDevice("rfid.port", "rfid", config.rfid.port))
    for conn, where in zip(config.connector, labels, strict=True):
        if conn.meter.transport == "rtu":
            devices.append(SerialDevice(f"{where}.meter.port", f"meter-{conn.id}", conn.meter.port))
        if conn.dc and conn.imd.transport == "rtu":
            devices.append(SerialDevice(f"{where}.imd.port", f"imd-{conn.id}", conn.imd.port))
        if conn.on_board and conn.board.transport == "rtu":
            devices.append(SerialDevice(f"{where}.board.port", f"board-{conn.id}", conn.board.port))
    return devices


def _serial_rules(config: Config, labels: list[str], bad: Problem) -> None:
    owners: dict[str, str] = {}
    for device in serial_devices(config, labels):
        if device.port in owners:
            bad(device.key, repr(device.port), f"a serial port of its own ({owners[device.port]} is on "
                f"{device.port}; each device needs its own adapter: the drivers do not share a port)")
        owners.setdefault(device.port, device.key)
