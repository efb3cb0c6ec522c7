"""Simulated hardware for ``hardware = "sim"``: the far end of every bus, built from the config.

The controller still builds its real drivers; this platform only supplies the buses: gpiozero mock pins (PWM,
coil, mirror contact, MCP3008 on mock SPI, RCM, cable lock, LED), a pymodbus meter server on loopback TCP per
connector, a card reader on a pty and a 1-Wire temperature file per connector. :meth:`SimHardware.driver_args`
tells the app which endpoints to use. It also brings the built-in CSMS (when the config names none) and the
bench control socket, and is what scripts drive (:class:`hil.script.Bench`). It reaches the controller only
through the ``evse_controller.platforms`` entry point named ``sim``.

``[sim] external`` leaves the AC meters or the card reader to whatever serves the configured endpoints: a bench's
simulators in another process (``evse-hil perf --cpu`` measures the daemon that way) or real devices on adapters.
"""

from __future__ import annotations

import functools
import gc
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from controller.config import Config, ConnectorSection
from controller.hardware import Platform
from hal.can import Frame
from hil.control import BENCH_SOCKET, BenchControlServer
from hil.csms import CsmsSimulator
from hil.devices import LedSim, LockSim, RcmSim
from hil.ev import AcEvSimulator, ContactorSim
from hil.gpio import MockMcp3008, WatchedPin, WatchedPWMPin, make_factory
from hil.kinds import AC_FAULT_KINDS, DC_FAULT_KINDS, FAULT_KINDS
from hil.meter import MeterSimulator
from hil.readers import Pn532Simulator, Rdm6300Simulator
from hil.simdc import DcCar, DcSimOutlet
from hil.timeline import Timeline


def _not_metered(_amps: float) -> None:
    """An external meter (``sim.external``) measures what it measures; the EV's draw does not reach it."""


class SimHardware(Platform):
    """Every simulator one configured charger needs, the bench's timeline, a built-in CSMS and the bench socket."""

    def __init__(self, config: Config, timeline: Timeline | None = None) -> None:
        super().__init__(config)
        self.timeline = timeline or Timeline()
        self.app: Any = None
        self.csms: CsmsSimulator | None = None
        self.bench_server: BenchControlServer | None = None
        self.factory: Any = None
        self.evs: dict[int, AcEvSimulator] = {}
        self.contactors: dict[int, ContactorSim] = {}
        self.meters: dict[int, MeterSimulator] = {}
        self.adcs: dict[tuple[int, int], MockMcp3008] = {}
        self.reader: Pn532Simulator | Rdm6300Simulator | None = None
        self.rcms: dict[int, RcmSim] = {}
        self.locks: dict[int, LockSim] = {}
        self.leds: dict[int, LedSim] = {}
        self.dc: dict[int, DcSimOutlet] = {}
        self._tmp = tempfile.TemporaryDirectory(prefix="evse-sim-")
        self._mode_before_short: dict[int, str] = {}
        #: Normal and injected (fault "temp") temperatures in degrees Celsius.
        self.ambient = 25.0
        self.hot = 90.0

    def check(self) -> None:
        """Simulated buses need no GPIO backend."""

    async def start(self) -> None:
        """Create the pins and start the servers (call before building drivers)."""
        self.factory = make_factory()
        for conn in self.config.connector:
            if conn.dc:
                outlet = self.dc[conn.id] = DcSimOutlet(conn, self.factory, self.adcs, self.timeline,
                                                        Path(self.state_dir or self._tmp.name))
                self.meters[conn.id], self.contactors[conn.id] = outlet.meter, outlet.contactor
                self._wire_devices(conn)
                await outlet.start()
                continue
            self._wire(conn)
            if conn.id in self.meters:
                await self.meters[conn.id].start_tcp()
        driver = self.config.rfid.driver
        if "rfid" in self.config.sim.external:
            pass  # the configured reader (a simulator in another process, a real one): nothing to serve here
        elif driver == "pn532":
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
        on_current: Callable[[float], None] = _not_metered
        if "meter" not in self.config.sim.external:
            meter = self.meters[conn.id] = MeterSimulator(conn.meter.model, phases=conn.phases,
                                                          unit=conn.meter.address)
            on_current = meter.set_current
        self.contactors[conn.id] = contactor
        self._wire_devices(conn)
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
            on_current=on_current,
            adc_low_channel=conn.pilot.adc_low_channel,
            pp_channel=conn.proximity.adc_channel,
            pp_pullup_ohms=conn.proximity.pullup_ohms,
        )

    def _wire_devices(self, conn: ConnectorSection) -> None:
        """What AC and DC connectors have alike: RCM, cable lock, LED, temperature sensor."""
        f, tl = self.factory, self.timeline
        if conn.rcm.driver != "none":
            r = conn.rcm
            self.rcms[conn.id] = RcmSim(conn.id, f.pin(r.fault_pin, pin_class=WatchedPin),
                                        f.pin(r.test_pin, pin_class=WatchedPin), tl,
                                        fault_active_high=r.fault_active_high, test_active_high=r.test_active_high)
        if conn.lock.driver != "none":
            k = conn.lock
            self.locks[conn.id] = LockSim(conn.id, f.pin(k.lock_pin, pin_class=WatchedPin),
                                          f.pin(k.unlock_pin, pin_class=WatchedPin),
                                          f.pin(k.feedback_pin, pin_class=WatchedPin), tl,
                                          switch_active_high=k.feedback_active_high)
        if conn.led.driver != "none":
            led = conn.led
            self.leds[conn.id] = LedSim(conn.id, f.pin(led.red_pin, pin_class=WatchedPin),
                                        f.pin(led.green_pin, pin_class=WatchedPin),
                                        f.pin(led.blue_pin, pin_class=WatchedPin), tl, led.active_high)
        if conn.temperature.driver != "none":
            self.set_temperature(conn.id, self.ambient)

    def temperature_path(self, connector_id: int) -> Path:
        """The simulated 1-Wire ``temperature`` file of a connector."""
        return Path(self._tmp.name) / f"temperature-{connector_id}"

    def set_temperature(self, connector_id: int, celsius: float) -> None:
        """Write a reading in millidegrees, as the kernel's w1 driver does."""
        path = self.temperature_path(connector_id)
        path.with_suffix(".tmp").write_text(f"{round(celsius * 1000)}\n")
        path.with_suffix(".tmp").replace(path)

    def settle(self) -> None:
        """After the controller opened its input devices (their pulls drove the pins): drive the inputs again."""
        parts: list[RcmSim | LockSim | ContactorSim] = [*self.rcms.values(), *self.locks.values(),
                                                        *self.contactors.values()]
        for part in parts:
            part.settle()
        for outlet in self.dc.values():
            outlet.settle()

    async def csms_url(self) -> str | None:
        """Start the built-in CSMS (a config that names no CSMS gets this one)."""
        self.csms = CsmsSimulator()
        await self.csms.start()
        return self.csms.url

    async def attach(self, app: Any) -> None:
        """The charger runs: scripts may drive it, through :meth:`status` and its control socket."""
        self.app = app
        for cid, drivers in app.drivers.items():
            if drivers.dc is not None:
                drivers.dc.car_bus.monitors.append(functools.partial(self._record_frame, cid))
        for cid, protocol in app.protocols.items():
            observers = getattr(protocol, "phase_observers", None)  # a DC outlet's sequence, as the charger runs it
            if observers is not None:
                observers.append(functools.partial(self.timeline.record, "phase", cid))
        self.bench_server = BenchControlServer(app.state_dir / BENCH_SOCKET, self)
        await self.bench_server.start()

    def _record_frame(self, connector_id: int, direction: str, frame: Frame) -> None:
        # As the charger's controller saw it: "rx" from the car, "tx" to it.
        self.timeline.record("can", connector_id, f"{direction} {frame.id:X} {frame.data.hex()}")

    def status(self, connector_id: int) -> str:
        """A connector's status as the controller reports it."""
        if self.app is None:
            raise RuntimeError("the simulated charger is not running")
        return str(self.app.status(connector_id))

    def ev(self, connector_id: int) -> AcEvSimulator | DcCar:
        """The simulated EV on a connector (a DC one's car, here in this process)."""
        if connector_id in self.dc:
            lock = self.locks.get(connector_id)
            return self.dc[connector_id].ev(lambda: lock is not None and lock.locked)
        return self.evs[connector_id]

    def driver_args(self, role: str, connector_id: int | None = None) -> dict[str, Any]:
        """Endpoint overrides for a driver: the mock pin factory, the meter server, the pty."""
        if role in ("pilot", "contactor", "dc_io"):
            return {"pin_factory": self.factory}
        if role in ("can", "dc_power.can"):
            return {}  # the configured python-can channels: the simulators listen there
        if role == "imd":
            return {"transport": "tcp", "host": "127.0.0.1", "tcp_port": self.dc[connector_id or 1].imd.port}
        if role == "temperature":
            return {"path": self.temperature_path(connector_id or 1)}
        if role == "meter":
            meter = self.meters.get(connector_id or 1)
            return {} if meter is None else {"transport": "tcp", "host": "127.0.0.1", "tcp_port": meter.port}
        if role == "rfid":
            return {} if self.reader is None else {"port": self.reader.path}
        raise ValueError(f"no simulated bus for role {role!r}")

    def inject(self, kind: str, connector_id: int, active: bool) -> None:
        """Injected faults at the far end of the buses, recorded on the timeline.

        short: CP to PE (state E); adc: the pilot's MCP3008 channels stuck at zero (-15 V); diode: the EV's diode
        missing; rcm: a residual current; rcmdead: an RCM that no longer trips (its self-test fails); weld /
        stuck: contactor contacts; lock: the cable lock jams (and gives way if locked); meter: the meter answers
        with exceptions; overcurrent: the EV draws 8 A more than it is offered, whatever it asked for; temp: the
        sensor reads ``hot``; pp: a shorted PP resistor (30 ohm); reader: the card reader stops answering (the
        connector is ignored: there is one reader). The DC kinds are :meth:`DcSimOutlet.inject`'s; weld, stuck, lock,
        meter and temp apply to both.
        """
        from pymodbus.constants import ExcCodes

        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {kind!r}; expected one of {', '.join(FAULT_KINDS)}")
        dc = self.dc.get(connector_id)
        if dc is None and kind in DC_FAULT_KINDS:
            raise ValueError(f"fault {kind} needs a DC connector; connector {connector_id} is AC")
        if dc is not None and kind in AC_FAULT_KINDS:
            raise ValueError(f"fault {kind} needs an AC connector; connector {connector_id} is {dc.conn.kind}")
        self.timeline.record("fault" if active else "clear", connector_id, kind)
        if dc is not None and kind in DC_FAULT_KINDS:
            dc.inject(kind, active)
            return
        external = {"reader": "rfid", "meter": "meter"}.get(kind)
        if external in self.config.sim.external and (kind == "reader" or connector_id not in self.dc):
            raise ValueError(f"fault {kind} needs the simulated {kind}; this charger's is external (sim.external)")
        if kind == "reader":
            if not isinstance(self.reader, Pn532Simulator):
                raise ValueError("fault reader needs the PN532 reader (an RDM6300 only ever talks when a tag is near)")
            self.reader.silent = active
            return
        if kind == "adc":
            pilot = next(c.pilot for c in self.config.connector if c.id == connector_id)
            adc = self.adcs[(pilot.spi_port, pilot.spi_device)]
            for channel in (pilot.adc_channel, pilot.adc_low_channel):
                if channel is not None and active:
                    adc.stuck[channel] = 0.0
                elif channel is not None:
                    adc.stuck.pop(channel, None)
        elif kind == "diode":
            self.evs[connector_id].set_behaviour(diode=not active)
        elif kind == "overcurrent":
            self.evs[connector_id].set_behaviour(overdraw=8.0 if active else 0.0)
        elif kind == "pp":
            self.evs[connector_id].set_behaviour(cable_ohms=30.0 if active else 220.0)
        elif kind in ("rcm", "rcmdead"):
            self._part(self.rcms, connector_id, "rcm").inject(**{"residual" if kind == "rcm" else "dead": active})
        elif kind == "lock":
            self._part(self.locks, connector_id, "lock").inject(active)
        elif kind == "temp":
            if not self.temperature_path(connector_id).exists():
                raise ValueError(f"connector {connector_id} has no temperature input configured")
            self.set_temperature(connector_id, self.hot if active else self.ambient)
        elif kind == "short":
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

    @staticmethod
    def _part(parts: dict[int, Any], connector_id: int, what: str) -> Any:
        if connector_id not in parts:
            raise ValueError(f"connector {connector_id} has no {what} configured")
        return parts[connector_id]

    def tap(self, uid: str, duration: float = 0.5) -> None:
        """Present a card to the simulated reader."""
        if self.reader is None:
            raise RuntimeError("this charger's card reader is external (sim.external): tap a card on it"
                               if "rfid" in self.config.sim.external else "this charger has no card reader configured")
        self.timeline.record("card", None, uid.upper())
        self.reader.tap(uid, duration)

    async def stop(self) -> None:
        """Stop every server and close the pty."""
        await super().stop()
        if self.bench_server is not None:
            await self.bench_server.stop()
        if self.csms is not None:
            await self.csms.stop()
        for outlet in self.dc.values():
            await outlet.stop()
        for meter in self.meters.values():
            await meter.stop()
        if self.reader is not None:
            await self.reader.stop()
        if self.factory is not None:
            self.factory.reset()
        self._tmp.cleanup()
        # gpiozero's shared SPI interfaces are registered by pin names, process-wide. A closed device that is
        # garbage-collected later closes once more, and that second close deletes whatever interface is then
        # registered under its pins: a charger built next in this process (the tests, the benchmarks) loses
        # its SPI bus halfway through being built. Collect now, while nothing else is registered.
        gc.collect()


def sim_of(app: Any) -> SimHardware:
    """The simulated hardware a running charger was built on (a charger on real hardware has none)."""
    platform = app.platform
    if not isinstance(platform, SimHardware):
        raise RuntimeError('bench steps need station.hardware = "sim"')
    return platform
