"""The DC sections of a CHAdeMO or GB/T connector: the car's CAN bus, the power stage, the IMD and the DC I/O.

Defaults are a Pi with an MCP2515 CAN HAT on SPI0 CE0 (``can0``, the car; interrupt on GPIO25), a USB
CAN adapter for the power modules (``can1``, gs_usb / candleLight through socketcan), an MCP3008 on
SPI0 CE1 for GB/T's CC1, and the pins of ``config/pi-dc-chademo.toml``, clear of SPI0, I2C and the UART.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from controller.config.fields import opt

#: Bitrates a CAN controller on a Pi HAT is set to (python-can passes them on).
CAN_BITRATES = (125_000, 250_000, 500_000, 1_000_000)
#: What each protocol's bus runs at: CHAdeMO 500 kbit/s, GB/T 27930 250 kbit/s, InfyPower modules 125 kbit/s.
PROTOCOL_BITRATE = {"chademo": 500_000, "gbt": 250_000, "infypower": 125_000}


@dataclass
class CanSection:
    """[connector.can] (the car) or [connector.dc_power.can] (the modules): one CAN bus, through python-can.

    ``interface`` and ``channel`` are python-can's: ``socketcan`` / ``can0`` on a Pi, ``virtual`` in
    simulation, ``remote`` / ``ws://host:54701/`` through python-can-remote (an EV simulator elsewhere).
    ``options`` go to python-can's ``Bus`` as they are (for example ``{ receive_own_messages = false }``).
    """

    driver: str = opt("python-can", choices=("python-can",))
    interface: str = "socketcan"
    channel: str = "can0"
    #: Unset: the protocol's own (see PROTOCOL_BITRATE); set, it must be that.
    bitrate: int | None = opt(None, choices=CAN_BITRATES)
    options: dict[str, Any] = opt({})


@dataclass
class DcPowerSection:
    """[connector.dc_power]: the rectifier modules behind the DC contactors, on a CAN bus of their own."""

    driver: str = opt("infypower", choices=("infypower",))
    #: The modules' address dials (0-62); they share the current equally.
    addresses: list[int] = opt([0], lo=0, hi=62)
    poll_interval: float = opt(0.1, lo=0.01, hi=1)
    #: How long a stop may take to bring the current to 5 A before the contactors open anyway (CHAdeMO: 0.5 s).
    stop_grace: float = opt(1.0, lo=0.5, hi=3)
    can: CanSection = opt(CanSection(channel="can1"))


@dataclass
class ImdSection:
    """[connector.imd]: the insulation monitor (Bender isoCHA425HV over Modbus RTU, or TCP through a gateway)."""

    driver: str = opt("bender", choices=("bender",))
    transport: str = opt("rtu", choices=("rtu", "tcp"))
    port: str = "/dev/ttyUSB1"
    baudrate: int = opt(19200, choices=(9600, 19200, 38400, 57600, 115200))
    parity: str = opt("E", choices=("N", "E", "O"))
    host: str = "127.0.0.1"
    tcp_port: int = opt(502, lo=1, hi=65535)
    address: int = opt(3, lo=3, hi=90)
    #: The device's own relay levels (kOhm); the charger's fault level is 100 ohm/V of the test voltage.
    prewarning_kohm: int = opt(500, lo=5, hi=600)
    alarm_kohm: int = opt(100, lo=5, hi=600)
    timeout: float = opt(0.5, lo=0.05, hi=10)
    #: How often the resistance is read while current flows.
    interval: float = opt(1.0, lo=0.1, hi=10)


@dataclass
class DcIoSection:
    """[connector.dc_io]: the connector's own lines on GPIO and the MCP3008.

    CHAdeMO: d1 and d2 out (through relays), k (the EV's charging permission) and the connector-present
    line in. GB/T: CC1's voltage on an MCP3008 channel (through a divider) and the auxiliary 12 V relay.
    Both: the bleed resistor's relay and the emergency-stop loop.
    """

    driver: str = opt("gpio", choices=("gpio",))
    d1_pin: int = opt(5, lo=0, hi=27)
    d2_pin: int = opt(6, lo=0, hi=27)
    k_pin: int = opt(22, lo=0, hi=27)
    k_active_high: bool = True
    plug_pin: int = opt(24, lo=0, hi=27)
    plug_active_high: bool = True
    cc1_channel: int = opt(0, lo=0, hi=7)
    #: CC1 volts when the ADC reads full scale (13.2: a 1:4 divider onto the MCP3008's 3.3 V).
    cc1_scale: float = opt(13.2, lo=1, hi=50)
    spi_port: int = opt(0, lo=0, hi=1)
    spi_device: int = opt(1, lo=0, hi=1)
    aux_pin: int = opt(20, lo=0, hi=27)
    bleed_pin: int = opt(16, lo=0, hi=27)
    bleed_active_high: bool = True
    #: The emergency-stop loop's input (closed: not pressed). A DC charger has one (IEC 61851-23); a broken
    #: wire reads as pressed.
    estop_pin: int = opt(26, lo=0, hi=27)
    estop_closed_high: bool = True
