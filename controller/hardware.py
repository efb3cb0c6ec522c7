"""Building one charger's drivers from its config, on real buses or through a registered platform.

A *platform* says where the buses come from. ``hardware = "pi"`` is the real thing: gpiozero's own pin
factory, the configured serial ports and Modbus devices. Any other name is looked up among the installed
``evse_controller.platforms`` entry points; the bench registers ``sim`` there (simulated buses, a built-in
CSMS, a control socket), so nothing under ``controller/`` names the bench.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from controller.config import CanSection, Config, ConnectorSection
from controller.config.dc import PROTOCOL_BITRATE
from hal.can import CanBus
from hal.contactor import Contactor
from hal.dc_io import Bleeder, ChademoLines, EmergencyStop, GbtLines
from hal.dc_power import DcPowerStage
from hal.drivers import (
    BLEEDERS,
    CAN_BUSES,
    CARD_READERS,
    CHADEMO_LINES,
    CONTACTORS,
    DC_POWER_STAGES,
    EMERGENCY_STOPS,
    GBT_LINES,
    IMDS,
    LEDS,
    LOCKS,
    METERS,
    PILOTS,
    PROXIMITY,
    RCMS,
    THERMOMETERS,
)
from hal.imd import InsulationMonitor
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
#: Installed packages offer a CSMS the station can bring along (``ocpp.csms_url = "builtin"``): the bench's.
CSMS_GROUP = "evse_controller.csms"


class PlatformError(Exception):
    """The platform cannot run here; the message says what to fix."""


class Platform:
    """Real buses: every driver talks to the hardware its config names. Other platforms override the hooks."""

    def __init__(self, config: Config) -> None:
        self.config = config
        #: The charger's state directory (the app sets it before :meth:`start`): where a platform keeps sockets.
        self.state_dir: Path | None = None

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

    async def builtin_csms(self) -> str:
        """Start the CSMS an installed package offers (``ocpp.csms_url = "builtin"``), on 127.0.0.1; its URL."""
        found = [e for e in entry_points(group=CSMS_GROUP) if e.name == "builtin"]
        if not found:
            raise PlatformError('ocpp.csms_url = "builtin": no built-in CSMS is installed (it comes with this '
                                "package's hil module; reinstall evse-controller)")
        self._builtin = found[0].load()()
        await self._builtin.start()
        log.warning("test charge: the built-in CSMS at %s accepts every card and keeps its sessions in memory; "
                    "no real CSMS sees them (set ocpp.csms_url to your CSMS for service)", self._builtin.url)
        url: str = self._builtin.url
        return url

    async def attach(self, app: Any) -> None:
        """The charger is running: hook in what the platform adds (a bench control socket)."""

    async def stop(self) -> None:
        """Take the buses down (after every driver is closed), and a built-in CSMS."""
        builtin = getattr(self, "_builtin", None)
        if builtin is not None:
            await builtin.stop()


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
class DcDrivers:
    """What a DC outlet adds: the car's bus, the power stage on its own bus, the IMD and the connector's lines."""

    car_bus: CanBus
    module_bus: CanBus
    power: DcPowerStage
    imd: InsulationMonitor
    lines: ChademoLines | GbtLines
    bleeder: Bleeder
    estop: EmergencyStop

    async def open(self) -> None:
        """Both buses up, then the modules asked for their capabilities (the sequence needs them)."""
        await self.car_bus.open()
        await self.module_bus.open()
        await self.power.open()

    def close_inputs(self) -> None:
        """Before the contactor is released: no edge (e-stop, k, a stage fault) may reach it any more."""
        self.power.on_fault = None
        for part in (self.lines, self.estop):
            if isinstance(part, ChademoLines | EmergencyStop):
                part.on_change = None
            with contextlib.suppress(Exception):
                part.close()  # CHAdeMO's d1/d2 and GB/T's auxiliary supply go low with them

    async def close(self) -> None:
        """The stage off first, then the IMD and the buses; the bleed resistor last (it stays connected)."""
        for part in (self.power, self.imd, self.car_bus, self.module_bus):
            with contextlib.suppress(Exception):
                await part.close()
        with contextlib.suppress(Exception):
            self.bleeder.close()


@dataclass
class OutletDrivers:
    """The drivers of one outlet: an AC one has a pilot, a DC one its :class:`DcDrivers`."""

    pilot: ControlPilot | None
    contactor: Contactor
    meter: EnergyMeter
    dc: DcDrivers | None = None
    proximity: ProximityInput | None = None
    rcm: ResidualCurrentMonitor | None = None
    lock: CableLock | None = None
    led: StatusLed | None = None
    thermometer: Thermometer | None = None

    async def close(self, cid: int = 0) -> None:
        """Release every driver, the contactor open (it should be already) and the inputs before it."""
        with contextlib.suppress(Exception):
            await self.meter.close()
        # Inputs first: a lock or RCM edge arriving now must not reach a contactor that is being released.
        for part in (self.rcm, self.lock, self.led, self.proximity):
            if part is not None:
                with contextlib.suppress(Exception):
                    part.close()
        if self.dc is not None:
            self.dc.close_inputs()
        try:
            self.contactor.shutdown()
        except Exception:
            log.exception("connector %d: contactor release failed", cid)
        if self.dc is not None:
            await self.dc.close()
        if self.pilot is not None:
            with contextlib.suppress(Exception):
                self.pilot.close()


def build_outlet(conn: ConnectorSection, platform: Platform) -> OutletDrivers:
    """Every driver one ``[[connector]]`` names, on the platform's buses (a DC outlet's still to be opened)."""
    if conn.on_board:
        return _build_on_board(conn, platform)
    cid, p = conn.id, conn.pilot
    pins = platform.driver_args("pilot", cid)
    if p.driver == "pwm":
        pins = {"pwm_chip": p.pwm_chip, "pwm_channel": p.pwm_channel, **pins}
    pilot = None
    if not conn.dc:
        pilot = PILOTS.resolve(p.driver)(
            pwm_pin=p.pwm_pin, adc_channel=p.adc_channel, adc_low_channel=p.adc_low_channel, spi_port=p.spi_port,
            spi_device=p.spi_device, pwm_active_high=p.pwm_active_high, adc_volts_at_zero=p.adc_volts_at_zero,
            adc_volts_at_full=p.adc_volts_at_full, **pins)
    c = conn.contactor
    contactor = CONTACTORS.resolve(c.driver)(pin=c.pin, active_high=c.active_high, mirror_pin=c.mirror_pin,
                                             mirror_type=c.mirror_type, **platform.driver_args("contactor", cid))
    drivers = OutletDrivers(pilot, contactor, _meter(conn, platform))
    if conn.dc:
        drivers.dc = _build_dc(conn, platform)
    if conn.proximity.adc_channel is not None and not conn.dc:
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


def _meter(conn: ConnectorSection, platform: Platform) -> EnergyMeter:
    m = conn.meter
    return METERS.resolve(m.driver)(**{  # the platform's endpoint (a simulated meter) replaces the configured one
        "model": m.model, "transport": m.transport, "port": m.port, "baudrate": m.baudrate, "parity": m.parity,
        "stopbits": m.stopbits, "bytesize": m.bytesize, "host": m.host, "tcp_port": m.tcp_port,
        "address": m.address, "timeout": m.timeout, **platform.driver_args("meter", conn.id)})


def _build_on_board(conn: ConnectorSection, platform: Platform) -> OutletDrivers:
    """An outlet whose EVSE board drives the pilot and the relay (and may watch the RCD); the meter is its own."""
    b = conn.board
    board = {"transport": b.transport, "port": b.port, "parity": b.parity, "address": b.address,
             "host": b.host, "tcp_port": b.tcp_port, "timeout": b.timeout, "poll_interval": b.poll_interval,
             **({"baudrate": b.baudrate} if b.baudrate else {}), **platform.driver_args("board", conn.id)}
    drivers = OutletDrivers(PILOTS.resolve(conn.pilot.driver)(board=board),
                            CONTACTORS.resolve(conn.contactor.driver)(board=board), _meter(conn, platform))
    if conn.rcm.driver != "none":
        drivers.rcm = RCMS.resolve(conn.rcm.driver)(board=board)
    return drivers


def _bus(section: CanSection, overrides: dict[str, Any]) -> CanBus:
    args: dict[str, Any] = {**section.options, "interface": section.interface, "channel": section.channel,
                            "bitrate": section.bitrate, **overrides}
    return CAN_BUSES.resolve(section.driver)(**args)


def _build_dc(conn: ConnectorSection, platform: Platform) -> DcDrivers:
    cid, io, imd, stage = conn.id, conn.dc_io, conn.imd, conn.dc_power
    car_bus = _bus(conn.can, {"bitrate": conn.can.bitrate or PROTOCOL_BITRATE[conn.kind],
                              **platform.driver_args("can", cid)})
    module_bus = _bus(stage.can, {"bitrate": stage.can.bitrate or PROTOCOL_BITRATE[stage.driver],
                                  **platform.driver_args("dc_power.can", cid)})
    power = DC_POWER_STAGES.resolve(stage.driver)(bus=module_bus, addresses=stage.addresses,
                                                  poll=stage.poll_interval)
    monitor = IMDS.resolve(imd.driver)(**{
        "transport": imd.transport, "port": imd.port, "baudrate": imd.baudrate, "parity": imd.parity,
        "host": imd.host, "tcp_port": imd.tcp_port, "unit": imd.address, "prewarning_kohm": imd.prewarning_kohm,
        "alarm_kohm": imd.alarm_kohm, "timeout": imd.timeout, **platform.driver_args("imd", cid)})
    pins = platform.driver_args("dc_io", cid)
    lines: ChademoLines | GbtLines
    if conn.kind == "chademo":
        lines = CHADEMO_LINES.resolve(io.driver)(d1_pin=io.d1_pin, d2_pin=io.d2_pin, k_pin=io.k_pin,
                                                 plug_pin=io.plug_pin, k_active_high=io.k_active_high,
                                                 plug_active_high=io.plug_active_high, **pins)
    else:
        lines = GBT_LINES.resolve(io.driver)(cc1_channel=io.cc1_channel, aux_pin=io.aux_pin, cc1_scale=io.cc1_scale,
                                             spi_port=io.spi_port, spi_device=io.spi_device, **pins)
    bleeder = BLEEDERS.resolve(io.driver)(pin=io.bleed_pin, active_high=io.bleed_active_high, **pins)
    estop = EMERGENCY_STOPS.resolve(io.driver)(pin=io.estop_pin, closed_high=io.estop_closed_high, **pins)
    return DcDrivers(car_bus, module_bus, power, monitor, lines, bleeder, estop)


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
