"""The composition root: config in, a running charger out, outputs safe on every way out.

With ``hardware = "sim"`` the same drivers are built against simulated buses
(``hil.simhw``), a built-in CSMS is started when none is given, and a bench
control socket opens in the state directory for ``evse-hil ctl``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from controller import systemd
from controller.clock import Clock, iso_utc
from controller.config import Config, ConnectorSection, MeterSection
from controller.connector import Connector
from controller.devices import Indicator, LockControl, OvercurrentGuard, RcmControl, TemperatureGuard
from controller.events import StopReason
from controller.faults import Fault
from controller.ocpp.v16 import Ocpp16Client
from controller.safety import SafetySupervisor
from controller.station import Station
from controller.storage import Store
from controller.tasks import cancel_and_wait
from hal.contactor import Contactor
from hal.drivers import CARD_READERS, CONTACTORS, LEDS, LOCKS, METERS, PILOTS, PROXIMITY, RCMS, THERMOMETERS
from hal.errors import HalError
from hal.meter import EnergyMeter
from hal.pilot import ControlPilot, PilotMonitor, PilotState, plugged_in
from hal.proximity import ProximityError, ProximityInput, cable_rating
from hal.rfid import CardReader

if TYPE_CHECKING:
    from hil.control import BenchControlServer
    from hil.csms import CsmsSimulator
    from hil.simhw import SimHardware

log = logging.getLogger(__name__)

# A thread switch every 1 ms (CPython's default is 5 ms) keeps the pilot monitor's
# reaction time bounded while the loop thread is busy with OCPP or Modbus.
SWITCH_INTERVAL = 0.001
BENCH_SOCKET = "bench.sock"
SHUTDOWN_DRAIN = 3.0


class App:
    """One charger: drivers, supervisor, connectors, card reader, meters and the OCPP client."""

    def __init__(
        self,
        config: Config,
        *,
        state_dir: str | Path | None = None,
        csms_url: str | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.config = config
        self.state_dir = Path(state_dir or config.station.state_dir)
        self.csms_url = csms_url or config.ocpp.csms_url
        self.clock = clock or Clock()
        self.supervisor = SafetySupervisor(self.clock.monotonic)
        self.store: Store | None = None
        self.station = Station(site_current_limit=config.station.site_current_limit)
        self.sim: SimHardware | None = None
        self.csms: CsmsSimulator | None = None
        self.ocpp: Ocpp16Client | None = None
        self.bench_server: BenchControlServer | None = None
        self.pilots: dict[int, ControlPilot] = {}
        self.contactors: dict[int, Contactor] = {}
        self.meters: dict[int, EnergyMeter] = {}
        self.monitors: dict[int, PilotMonitor] = {}
        self.proximity: dict[int, ProximityInput] = {}
        self.rcms: dict[int, RcmControl] = {}
        self.locks: dict[int, LockControl] = {}
        self.indicators: dict[int, Indicator] = {}
        self.overcurrent: dict[int, OvercurrentGuard] = {}
        self.thermometers: dict[int, TemperatureGuard] = {}
        self.reader: CardReader | None = None
        self._tasks: list[asyncio.Task[Any]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopped = False
        self._stop_event: asyncio.Event | None = None
        #: Set when a CSMS Reset asked for a restart ("hard" or "soft"); the CLI re-executes the daemon.
        self.restart: str | None = None

    # ------------------------------------------------------------- building

    def _args(self, role: str, connector_id: int | None = None) -> dict[str, Any]:
        return self.sim.driver_args(role, connector_id) if self.sim is not None else {}

    async def start(self) -> None:
        """Build everything and start it; on any failure, everything built so far is made safe."""
        sys.setswitchinterval(SWITCH_INTERVAL)
        self._loop = asyncio.get_running_loop()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        try:
            self.store = Store(self.state_dir)
            if self.config.station.hardware == "sim":
                from hil.simhw import SimHardware

                self.sim = SimHardware(self.config)
                await self.sim.start()
            for conn in self.config.connector:
                self._build_connector(conn)
            if self.sim is not None:
                self.sim.settle()
            self._restore_availability(self.store)
            self.station.rebalance()
            self._build_reader()
            await self._start_ocpp()
            self.supervisor.listeners.append(self._on_faults)
            for cid, pilot in self.pilots.items():
                pilot.stop_offer()  # from state F to steady +12 V: ready
                self.monitors[cid].start()
            await self._self_test()
            self.supervisor.start_watch()
            for rcm in self.rcms.values():
                rcm.start()
                self._tasks.append(asyncio.create_task(rcm.run_periodic(), name=f"rcm-{rcm.id}"))
            for lock in self.locks.values():
                lock.start()
            for guard in self.thermometers.values():
                self._tasks.append(asyncio.create_task(guard.run(), name=f"temperature-{guard.connector.id}"))
            for conn in self.config.connector:
                poll = self._poll_meter(conn.id, self.meters[conn.id], conn.meter)
                self._tasks.append(asyncio.create_task(poll, name=f"meter-{conn.id}"))
            if self.sim is not None:
                from hil.control import BenchControlServer

                self.bench_server = BenchControlServer(self.state_dir / BENCH_SOCKET, self)
                await self.bench_server.start()
        except BaseException:
            await self.stop()
            raise
        systemd.notify("READY=1")
        log.info("charger %s ready: %d connector(s), CSMS %s", self.config.station.id,
                 len(self.config.connector), self.ocpp.url if self.ocpp else "none")

    def _build_connector(self, conn: ConnectorSection) -> None:
        cid = conn.id
        p = conn.pilot
        pins = self._args("pilot", cid)
        pilot = PILOTS.resolve(p.driver)(
            pwm_pin=p.pwm_pin, adc_channel=p.adc_channel, adc_low_channel=p.adc_low_channel, spi_port=p.spi_port,
            spi_device=p.spi_device, pwm_active_high=p.pwm_active_high, adc_volts_at_zero=p.adc_volts_at_zero,
            adc_volts_at_full=p.adc_volts_at_full, **pins,
        )
        self.pilots[cid] = pilot
        if not pilot.measures_low:
            log.warning("connector %d: pilot.adc_low_channel not set: no diode check (IEC 61851-1 asks for one "
                        "before closing)", cid)
        if conn.proximity.adc_channel is not None:
            self.proximity[cid] = PROXIMITY.resolve(conn.proximity.driver)(
                adc_channel=conn.proximity.adc_channel, pullup_ohms=conn.proximity.pullup_ohms,
                spi_port=p.spi_port, spi_device=p.spi_device, **pins)
        c = conn.contactor
        contactor = CONTACTORS.resolve(c.driver)(
            pin=c.pin, active_high=c.active_high, mirror_pin=c.mirror_pin, mirror_type=c.mirror_type,
            **self._args("contactor", cid),
        )
        self.contactors[cid] = contactor
        self.supervisor.add(cid, contactor, pilot, c.feedback_delay, ventilation=p.ventilation,
                            ev_stop_timeout=p.ev_stop_timeout)
        m = conn.meter
        meter_args: dict[str, Any] = {
            "model": m.model, "transport": m.transport, "port": m.port, "baudrate": m.baudrate,
            "parity": m.parity, "stopbits": m.stopbits, "bytesize": m.bytesize, "host": m.host,
            "tcp_port": m.tcp_port, "address": m.address, "timeout": m.timeout,
        }
        meter_args.update(self._args("meter", cid))
        self.meters[cid] = METERS.resolve(m.driver)(**meter_args)
        connector = Connector(
            cid, max_current=conn.max_current, phases=conn.phases, pilot=pilot,
            supervisor=self.supervisor, emit=self.station.emit, clock=self.clock, wakeup_after=p.wakeup_after,
        )
        self.station.add(connector)
        refresh = functools.partial(self._to_loop, connector.refresh)
        if conn.rcm.driver != "none":
            r = conn.rcm
            rcm = RCMS.resolve(r.driver)(fault_pin=r.fault_pin, test_pin=r.test_pin,
                                         fault_active_high=r.fault_active_high,
                                         test_active_high=r.test_active_high, **pins)
            self.rcms[cid] = RcmControl(cid, rcm, self.supervisor, r, refresh)
        if conn.lock.driver != "none":
            k = conn.lock
            cable_lock = LOCKS.resolve(k.driver)(lock_pin=k.lock_pin, unlock_pin=k.unlock_pin,
                                                 feedback_pin=k.feedback_pin,
                                                 feedback_active_high=k.feedback_active_high, **pins)
            connector.lock = self.locks[cid] = LockControl(cid, cable_lock, self.supervisor, k, refresh)
        if conn.led.driver != "none":
            led = LEDS.resolve(conn.led.driver)(red_pin=conn.led.red_pin, green_pin=conn.led.green_pin,
                                                blue_pin=conn.led.blue_pin, active_high=conn.led.active_high, **pins)
            self.indicators[cid] = Indicator(cid, led)
            self.station.subscribe(self.indicators[cid].on_event)
        if conn.temperature.driver != "none":
            path = self._args("temperature", cid).get("path", conn.temperature.path)
            sensor = THERMOMETERS.resolve(conn.temperature.driver)(path=path)
            self.thermometers[cid] = TemperatureGuard(connector, self.supervisor, sensor, conn.temperature)
        self.overcurrent[cid] = OvercurrentGuard(connector, self.supervisor, conn.overcurrent_margin,
                                                 conn.overcurrent_grace, self.clock.monotonic)
        self.monitors[cid] = PilotMonitor(
            pilot, functools.partial(self._on_pilot, cid),
            poll_interval=p.poll_interval, debounce_samples=p.debounce_samples, name=f"pilot{cid}",
            diode_callback=functools.partial(self._on_diode, cid),
        )

    def _restore_availability(self, store: Store) -> None:
        # ChangeAvailability survives restarts and power loss.
        for cid, connector in self.station.connectors.items():
            if store.get_setting(f"availability.{cid}") == "Inoperative":
                connector.set_operative(False)
        self.station.on_availability = lambda cid, operative: store.set_setting(
            f"availability.{cid}", "Operative" if operative else "Inoperative")

    def _on_reset(self, hard: bool) -> None:
        self.restart = "hard" if hard else "soft"
        if self._stop_event is not None:
            self._stop_event.set()

    def _on_faults(self, connector_id: int, faults: dict[Fault, str]) -> None:
        # Any thread: the supervisor has already acted; the state machine hears about it on the loop.
        self._to_loop(self.station.connectors[connector_id].on_faults, faults)

    def _to_loop(self, callback: Callable[..., object], *args: object) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(callback, *args)

    async def _self_test(self) -> None:
        for conn in self.config.connector:
            if not conn.contactor.self_test or conn.contactor.mirror_pin is None:
                continue
            monitor = self.monitors[conn.id]
            for _ in range(100):  # the first pilot reading: never test with a vehicle connected
                if monitor.state is not None:
                    break
                await asyncio.sleep(0.01)
            await asyncio.to_thread(self.supervisor.self_test, conn.id)

    def _on_pilot(self, connector_id: int, state: PilotState | None, _t: float) -> None:
        # Monitor thread: the supervisor acts here and now; the state machine hears it on the loop.
        self.supervisor.on_pilot(connector_id, state)
        self._to_loop(self._pilot_changed, connector_id, state)

    def _on_diode(self, connector_id: int, ok: bool, epoch: int, _t: float) -> None:
        # Monitor thread, before the state change of the same poll: a good diode may let the close go ahead.
        self.supervisor.on_diode(connector_id, ok, epoch)
        if ok:
            self._to_loop(self.station.connectors[connector_id].refresh)

    def _pilot_changed(self, connector_id: int, state: PilotState | None) -> None:
        connector = self.station.connectors[connector_id]
        previous = connector.pilot_state
        if plugged_in(previous, state) and connector_id in self.proximity:
            self._read_cable(connector_id)
        elif state == PilotState.A and connector_id in self.proximity:
            connector.set_limit("cable", None)
            self.supervisor.clear_fault(connector_id, Fault.PROXIMITY_FAULT)
        if connector_id in self.rcms:
            self.rcms[connector_id].on_pilot(previous, state)
        if connector_id in self.locks:
            self.locks[connector_id].on_pilot(state)
        connector.on_pilot(state)

    def _read_cable(self, connector_id: int) -> None:
        # A socket build: the cable's PP resistor caps what may be offered through it.
        connector = self.station.connectors[connector_id]
        try:
            ohms = self.proximity[connector_id].read_ohms()
            amps = cable_rating(ohms)
        except ProximityError as exc:
            self.supervisor.raise_fault(connector_id, Fault.PROXIMITY_FAULT, str(exc))
            return
        except Exception as exc:
            self.supervisor.raise_fault(connector_id, Fault.PROXIMITY_FAULT, f"PP read failed: {exc}")
            return
        log.info("connector %d: cable PP %.0f ohm, rated %.0f A", connector_id, ohms, amps)
        connector.set_limit("cable", amps)

    def _build_reader(self) -> None:
        r = self.config.rfid
        if r.driver == "none":
            return
        args: dict[str, Any] = {"port": r.port}
        if r.baudrate is not None:
            args["baudrate"] = r.baudrate
        if r.driver == "pn532":
            args["poll_interval"] = r.poll_interval
        args.update(self._args("rfid"))
        self.reader = CARD_READERS.resolve(r.driver)(**args)
        self.reader.on_health = self._reader_health
        self._tasks.append(asyncio.create_task(self.reader.run(self.station.on_card), name="card-reader"))

    def _reader_health(self, healthy: bool) -> None:
        # The shared reader is down: charging goes on, but every connector reports ReaderFailure (no new
        # card sessions can start; remote starts still work) until it answers again.
        for connector in self.station.connectors.values():
            connector.flag(Fault.READER_FAILURE, not healthy)

    async def _start_ocpp(self) -> None:
        url = self.csms_url
        if not url:
            from hil.csms import CsmsSimulator

            self.csms = CsmsSimulator()
            await self.csms.start()
            url = self.csms.url
        assert self.store is not None
        self.ocpp = Ocpp16Client(self.config, self.station, self.store, csms_url=url, clock=self.clock)
        self.ocpp.on_reset = self._on_reset
        # Before anything is sent: transactions a dead process left open end as PowerLoss.
        self.ocpp.outbox.recover_power_loss()
        self._tasks.append(asyncio.create_task(self.ocpp.run(), name="ocpp"))

    async def _poll_meter(self, connector_id: int, meter: EnergyMeter, settings: MeterSection) -> None:
        connector = self.station.connectors[connector_id]
        interval = settings.poll_interval
        persist_every = self.config.station.reading_persist_interval
        persisted_at = float("-inf")
        last_ok = self.clock.monotonic()
        failing = lost = False
        while True:
            try:
                reading = await meter.read()
            except (HalError, OSError) as exc:
                if not failing:
                    log.warning("connector %d: meter read failed (%s); retrying every %.1f s",
                                connector_id, exc, interval)
                    failing = True
                if not lost and self.clock.monotonic() - last_ok >= settings.loss_timeout:
                    lost = True
                    self._meter_lost(connector_id, settings.loss_policy, True)
            else:
                last_ok = self.clock.monotonic()
                if failing:
                    log.info("connector %d: meter answers again", connector_id)
                    failing = False
                if lost:
                    lost = False
                    self._meter_lost(connector_id, settings.loss_policy, False)
                connector.on_meter(reading)
                self.overcurrent[connector_id].on_reading(reading)
                tx = connector.transaction
                now = self.clock.monotonic()
                if tx is not None and self.store is not None and now - persisted_at >= persist_every:
                    self.store.record_reading(tx.local_id, round(reading.energy_wh), iso_utc(self.clock.utcnow()))
                    persisted_at = now
            await asyncio.sleep(interval)

    def _meter_lost(self, connector_id: int, policy: str, lost: bool) -> None:
        if policy == "stop":
            if lost:
                self.supervisor.raise_fault(connector_id, Fault.METER_COMM_LOST)
            else:
                self.supervisor.clear_fault(connector_id, Fault.METER_COMM_LOST)
        else:
            log.warning("connector %d: meter %s; charging continues (policy continue)", connector_id,
                        "lost" if lost else "back")
            self.station.connectors[connector_id].flag(Fault.METER_COMM_LOST, lost)

    # ---------------------------------------------------------- the bench API

    def ev(self, connector_id: int) -> Any:
        """The simulated EV on a connector (simulated hardware only)."""
        if self.sim is None:
            raise RuntimeError("bench steps need hardware = \"sim\"")
        return self.sim.evs[connector_id]

    def tap(self, uid: str) -> None:
        """Present a card to the simulated reader."""
        if self.sim is None:
            raise RuntimeError("bench steps need hardware = \"sim\"")
        self.sim.tap(uid)

    def status(self, connector_id: int) -> str:
        """A connector's status as the controller reports it."""
        return self.station.status(connector_id).value

    def inject(self, kind: str, connector_id: int, active: bool) -> None:
        """Start or end a fault on the simulated hardware (short, weld, stuck, meter)."""
        if self.sim is None:
            raise RuntimeError("bench steps need hardware = \"sim\"")
        self.sim.inject(kind, connector_id, active)

    # ------------------------------------------------------------- stopping

    async def stop(self) -> None:
        """Shut down safely: contactors open first, then transactions end, then everything else.

        Safe to call more than once (a failed start, then SIGTERM).
        """
        if self._stopped:
            return
        self._stopped = True
        self.supervisor.open_all()
        self.supervisor.stop_watch()
        for rcm in self.rcms.values():
            rcm.rcm.on_trip = None
        for monitor in self.monitors.values():
            monitor.stop()
        for connector in self.station.connectors.values():
            if connector.transaction is not None:
                connector.stop(StopReason.OTHER)
        for pilot in self.pilots.values():
            with contextlib.suppress(Exception):
                pilot.set_unavailable()  # state F: not available, last of all
        if self.ocpp is not None and self.ocpp.connected.is_set() and len(self.ocpp.outbox):
            # Give queued transaction messages a moment to reach the CSMS before the link goes.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.ocpp.outbox.drained(), SHUTDOWN_DRAIN)
        if self.bench_server is not None:
            await self.bench_server.stop()
        await cancel_and_wait(self._tasks)
        self._tasks.clear()
        device_tasks = [t for r in self.rcms.values() for t in r.tasks()]
        device_tasks += [t for k in self.locks.values() for t in k.tasks()]
        await cancel_and_wait(device_tasks)
        for meter in self.meters.values():
            with contextlib.suppress(Exception):
                await meter.close()
        for cid, contactor in self.contactors.items():
            try:
                contactor.shutdown()
            except Exception:
                log.exception("connector %d: contactor release failed", cid)
        closers: list[Callable[[], None]] = [
            *(r.rcm.close for r in self.rcms.values()), *(k.lock.close for k in self.locks.values()),
            *(i.led.close for i in self.indicators.values()), *(p.close for p in self.proximity.values())]
        for close in closers:
            with contextlib.suppress(Exception):
                close()
        for pilot in self.pilots.values():
            with contextlib.suppress(Exception):
                pilot.close()
        self.pilots.clear()
        self.contactors.clear()
        if self.csms is not None:
            await self.csms.stop()
        if self.sim is not None:
            await self.sim.stop()
        if self.store is not None:
            self.store.close()
        systemd.notify("STOPPING=1")

    async def run(self, stop: asyncio.Event) -> None:
        """Start, run until ``stop`` is set, then shut down safely (also on errors)."""
        self._stop_event = stop
        await self.start()
        watchdog = asyncio.create_task(systemd.watchdog_loop(), name="watchdog")
        try:
            await stop.wait()
        finally:
            watchdog.cancel()
            await self.stop()
