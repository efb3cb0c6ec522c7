"""Building one charger's drivers from its config, on real buses or through a registered platform.

A *platform* says where the buses come from. ``hardware = "pi"`` is the real thing: gpiozero's own pin
factory, the configured serial ports and Modbus devices. Any other name is looked up among the installed
``evse_controller.platforms`` entry points; the bench registers ``sim`` there (simulated buses, a built-in
CSMS, a control socket), so nothing under ``controller/`` names the bench.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any

from controller.config import Config, ConnectorSection
from hal.contactor import Contactor
from hal.drivers import CARD_READERS, CONTACTORS, LEDS, LOCKS, METERS, PILOTS, PROXIMITY, RCMS, THERMOMETERS
from hal.led import StatusLed
from hal.lock import CableLock
from hal.meter import EnergyMeter
from hal.pilot import ControlPilot
from hal.proximity import ProximityInput
from hal.rcm import ResidualCurrentMonitor
from hal.rfid import CardReader
from hal.temperature import Thermometer

log = logging.getLogger(__name__)

PLATFORM_GROUP = "evse_controller.platforms"


class PlatformError(Exception):
    """The platform cannot run here; the message says what to fix."""


class Platform:
    """Real buses: every driver talks to the hardware its config names. Other platforms override the hooks."""

    def __init__(self, config: Config) -> None:
        self.config = config

    def check(self) -> None:
        """Before anything is built: raise PlatformError when the hardware cannot be reached at all."""
        from gpiozero import Device
        from gpiozero.exc import BadPinFactory

        try:
            # gpiozero picks its pin factory lazily, at the first device; try now, before anything is built
            # (it has no public way to ask).
            if Device.pin_factory is None:
                Device.pin_factory = Device._default_pin_factory()
        except BadPinFactory as exc:
            raise PlatformError(
                "no GPIO backend: this is not a Raspberry Pi, or the pi extra is missing "
                "(pip install 'evse-controller[pi]'); for simulated hardware set station.hardware = \"sim\""
            ) from exc

    async def start(self) -> None:
        """Bring the buses up (before any driver is built)."""

    def driver_args(self, role: str, evse_id: int | None = None) -> dict[str, Any]:
        """Endpoint overrides for a driver (a simulated bus); none on real hardware."""
        return {}

    def settle(self) -> None:
        """After the drivers opened their inputs: let the far ends drive them again."""

    async def csms_url(self) -> str | None:
        """A CSMS the platform brings along, for a config that names none."""
        return None

    async def attach(self, app: Any) -> None:
        """The charger is running: hook in what the platform adds (a bench control socket)."""

    async def stop(self) -> None:
        """Take the buses down (after every driver is closed)."""


def platform_for(config: Config) -> Platform:
    """The platform ``station.hardware`` names."""
    name = config.station.hardware
    if name == "pi":
        return Platform(config)
    found = [e for e in entry_points(group=PLATFORM_GROUP) if e.name == name]
    if not found:
        raise PlatformError(f"{config.source}: station.hardware = {name!r}: no such platform is installed")
    platform: Platform = found[0].load()(config)
    return platform


@dataclass
class OutletDrivers:
    """The drivers of one outlet."""

    pilot: ControlPilot
    contactor: Contactor
    meter: EnergyMeter
    proximity: ProximityInput | None = None
    rcm: ResidualCurrentMonitor | None = None
    lock: CableLock | None = None
    led: StatusLed | None = None
    thermometer: Thermometer | None = None


def build_outlet(conn: ConnectorSection, platform: Platform) -> OutletDrivers:
    """Every driver one ``[[connector]]`` names, on the platform's buses."""
    cid, p = conn.id, conn.pilot
    pins = platform.driver_args("pilot", cid)
    pilot = PILOTS.resolve(p.driver)(
        pwm_pin=p.pwm_pin, adc_channel=p.adc_channel, adc_low_channel=p.adc_low_channel, spi_port=p.spi_port,
        spi_device=p.spi_device, pwm_active_high=p.pwm_active_high, adc_volts_at_zero=p.adc_volts_at_zero,
        adc_volts_at_full=p.adc_volts_at_full, **pins)
    c = conn.contactor
    contactor = CONTACTORS.resolve(c.driver)(pin=c.pin, active_high=c.active_high, mirror_pin=c.mirror_pin,
                                             mirror_type=c.mirror_type, **platform.driver_args("contactor", cid))
    m = conn.meter
    meter_args: dict[str, Any] = {
        "model": m.model, "transport": m.transport, "port": m.port, "baudrate": m.baudrate, "parity": m.parity,
        "stopbits": m.stopbits, "bytesize": m.bytesize, "host": m.host, "tcp_port": m.tcp_port,
        "address": m.address, "timeout": m.timeout, **platform.driver_args("meter", cid)}
    drivers = OutletDrivers(pilot, contactor, METERS.resolve(m.driver)(**meter_args))
    if conn.proximity.adc_channel is not None:
        drivers.proximity = PROXIMITY.resolve(conn.proximity.driver)(
            adc_channel=conn.proximity.adc_channel, pullup_ohms=conn.proximity.pullup_ohms, spi_port=p.spi_port,
            spi_device=p.spi_device, **pins)
    if conn.rcm.driver != "none":
        r = conn.rcm
        drivers.rcm = RCMS.resolve(r.driver)(fault_pin=r.fault_pin, test_pin=r.test_pin,
                                             fault_active_high=r.fault_active_high,
                                             test_active_high=r.test_active_high, **pins)
    if conn.lock.driver != "none":
        k = conn.lock
        drivers.lock = LOCKS.resolve(k.driver)(lock_pin=k.lock_pin, unlock_pin=k.unlock_pin,
                                               feedback_pin=k.feedback_pin,
                                               feedback_active_high=k.feedback_active_high, **pins)
    if conn.led.driver != "none":
        d = conn.led
        drivers.led = LEDS.resolve(d.driver)(red_pin=d.red_pin, green_pin=d.green_pin, blue_pin=d.blue_pin,
                                             active_high=d.active_high, **pins)
    if conn.temperature.driver != "none":
        path = platform.driver_args("temperature", cid).get("path", conn.temperature.path)
        drivers.thermometer = THERMOMETERS.resolve(conn.temperature.driver)(path=path)
    return drivers


def build_reader(config: Config, platform: Platform) -> CardReader | None:
    """The shared card reader, or None."""
    r = config.rfid
    if r.driver == "none":
        return None
    args: dict[str, Any] = {"port": r.port}
    if r.baudrate is not None:
        args["baudrate"] = r.baudrate
    if r.driver == "pn532":
        args["poll_interval"] = r.poll_interval
    args.update(platform.driver_args("rfid"))
    return CARD_READERS.resolve(r.driver)(**args)
