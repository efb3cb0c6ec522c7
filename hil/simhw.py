"""Simulated hardware for ``hardware = "sim"``: the far end of every bus, built from the config.

The controller still builds its real drivers; this only supplies the buses:
gpiozero mock pins (PWM, coil, mirror contact, MCP3008 on mock SPI), a
pymodbus meter server on loopback TCP per connector, and a card reader on a
pty. :meth:`SimHardware.driver_args` tells the app which endpoints to use.
"""

from __future__ import annotations

from typing import Any

from controller.config import Config, ConnectorSection
from hal.meter.regmap import load_register_map
from hil.ev import AcEvSimulator, ContactorSim
from hil.gpio import MockMcp3008, WatchedPin, WatchedPWMPin, make_factory
from hil.meter import MeterSimulator
from hil.readers import Pn532Simulator, Rdm6300Simulator
from hil.timeline import Timeline


class SimHardware:
    """Every simulator one configured charger needs, and the bench's timeline."""

    def __init__(self, config: Config, timeline: Timeline | None = None) -> None:
        self.config = config
        self.timeline = timeline or Timeline()
        self.factory: Any = None
        self.evs: dict[int, AcEvSimulator] = {}
        self.contactors: dict[int, ContactorSim] = {}
        self.meters: dict[int, MeterSimulator] = {}
        self.adcs: dict[tuple[int, int], MockMcp3008] = {}
        self.reader: Pn532Simulator | Rdm6300Simulator | None = None
        self._mode_before_short: dict[int, str] = {}

    async def start(self) -> None:
        """Create the pins and start the servers (call before building drivers)."""
        self.factory = make_factory()
        for conn in self.config.connector:
            self._wire(conn)
            meter = self.meters[conn.id]
            await meter.start_tcp()
        driver = self.config.rfid.driver
        if driver == "pn532":
            self.reader = Pn532Simulator()
        elif driver == "rdm6300":
            self.reader = Rdm6300Simulator()
        if self.reader is not None:
            await self.reader.start()

    def _wire(self, conn: ConnectorSection) -> None:
        key = (conn.pilot.spi_port, conn.pilot.spi_device)
        if key not in self.adcs:
            self.adcs[key] = MockMcp3008(self.factory, device=conn.pilot.spi_device)
        pwm = self.factory.pin(conn.pilot.pwm_pin, pin_class=WatchedPWMPin)
        coil = self.factory.pin(conn.contactor.pin, pin_class=WatchedPin)
        mirror = None
        if conn.contactor.mirror_pin is not None:
            mirror = self.factory.pin(conn.contactor.mirror_pin, pin_class=WatchedPin)
        contactor = ContactorSim(conn.id, coil, self.timeline, mirror, conn.contactor.mirror_type)
        meter = MeterSimulator(load_register_map(conn.meter.model), phases=conn.phases, unit=conn.meter.address)
        self.contactors[conn.id] = contactor
        self.meters[conn.id] = meter
        self.evs[conn.id] = AcEvSimulator(
            conn.id,
            pwm=pwm,
            contactor=contactor,
            adc=self.adcs[key],
            adc_channel=conn.pilot.adc_channel,
            volts_at_zero=conn.pilot.adc_volts_at_zero,
            volts_at_full=conn.pilot.adc_volts_at_full,
            phases=conn.phases,
            timeline=self.timeline,
            on_current=meter.set_current,
        )

    def driver_args(self, role: str, connector_id: int | None = None) -> dict[str, Any]:
        """Endpoint overrides for a driver: the mock pin factory, the meter server, the pty."""
        if role in ("pilot", "contactor"):
            return {"pin_factory": self.factory}
        if role == "meter":
            meter = self.meters[connector_id or 1]
            return {"transport": "tcp", "host": "127.0.0.1", "tcp_port": meter.port}
        if role == "rfid":
            assert self.reader is not None
            return {"port": self.reader.path}
        raise ValueError(f"no simulated bus for role {role!r}")

    def inject(self, kind: str, connector_id: int, active: bool) -> None:
        """Injected faults at the far end of the buses, recorded on the timeline."""
        from pymodbus.constants import ExcCodes

        self.timeline.record("fault" if active else "clear", connector_id, kind)
        if kind == "short":
            ev = self.evs[connector_id]
            if active:
                self._mode_before_short[connector_id] = ev.mode
                ev.set_mode("E")
            else:
                ev.set_mode(self._mode_before_short.pop(connector_id, "auto"))
        elif kind == "weld":
            self.contactors[connector_id].inject(welded=active)
        elif kind == "stuck":
            self.contactors[connector_id].inject(stuck_open=active)
        elif kind == "meter":
            self.meters[connector_id].refuse = ExcCodes.DEVICE_FAILURE if active else None
        else:
            raise ValueError(f"unknown fault {kind!r}")

    def tap(self, uid: str, duration: float = 0.5) -> None:
        """Present a card to the simulated reader."""
        if self.reader is None:
            raise RuntimeError("this charger has no card reader configured")
        self.timeline.record("card", None, uid.upper())
        self.reader.tap(uid, duration)

    async def stop(self) -> None:
        """Stop every server and close the pty."""
        for meter in self.meters.values():
            await meter.stop()
        if self.reader is not None:
            await self.reader.stop()
        if self.factory is not None:
            self.factory.reset()
