"""The composition root: config in, a running charger out, outputs safe on every way out.

It builds the platform's drivers (``controller.hardware``), one supervised EVSE per ``[[connector]]`` with its
charging protocol, guards, LED and meter poller, the shared card reader and the OCPP client, runs them on one
asyncio loop and shuts them down safely. The platform brings whatever else it adds (the bench's simulators, a
built-in CSMS, a control socket) through :class:`~controller.hardware.Platform`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import sys
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from controller import systemd, version
from controller.api.publisher import StatusPublisher
from controller.charging.dcoutlet import HOLD_LIMIT, DcOutlet, current_safe
from controller.charging.iec61851 import Iec61851
from controller.charging.outletvoltage import OutletVoltage
from controller.clock import Clock, iso_utc
from controller.config import Config, ConnectorSection
from controller.config.rules import BUILTIN_CSMS
from controller.domain.faults import Fault
from controller.domain.types import IdTokenType, PowerLimit, StopReason, TriggerReason
from controller.evse.machine import Evse
from controller.evse.port import ChargingProtocol
from controller.hardware import OutletDrivers, Platform, build_outlet, build_reader, platform_for
from controller.indicator import Indicator
from controller.metering import MeterPoller
from controller.ocpp.client import OcppClient
from controller.releases import restore_after_rollback
from controller.restore import restore_station
from controller.runlock import RunLock
from controller.safety.dc import DcGuards
from controller.safety.lock import LockControl
from controller.safety.overcurrent import OvercurrentGuard
from controller.safety.rcm import RcmControl
from controller.safety.supervisor import SafetySupervisor
from controller.safety.temperature import TemperatureGuard
from controller.station import Station
from controller.storage import Store
from controller.tasks import cancel_and_wait, until
from hal.dc_io import ChademoLines, GbtLines
from hal.dc_power import SAFE_CURRENT
from hal.errors import HalError
from hal.meter import MeterReading
from hal.rfid import CardReader

if TYPE_CHECKING:
    from controller.api.server import StatusApi

log = logging.getLogger(__name__)

# A thread switch every 1 ms (CPython's default is 5 ms) keeps the pilot monitor's
# reaction time bounded while the loop thread is busy with OCPP or Modbus.
SWITCH_INTERVAL = 0.001
SHUTDOWN_DRAIN = 3.0
METER_IDENTIFY_WAIT = 2.0
TOUCH_SAFE_VOLTS = 60.0  # a DC output below it may be touched (IEC 61851-23)


class App:
    """One charger: drivers, supervisor, EVSEs, card reader, meters and the OCPP client."""

    def __init__(self, config: Config, *, state_dir: str | Path | None = None, csms_url: str | None = None,
                 clock: Clock | None = None, api_listen: str | None = None) -> None:
        self.config = config
        #: "HOST:PORT" of the status API (``--api``, else ``api.listen``; empty: none).
        self.api_listen = api_listen or config.api.listen
        self.state_dir = Path(state_dir or config.station.state_dir)
        self.csms_url = csms_url or config.ocpp.csms_url
        self.clock = clock or Clock()
        self.supervisor = SafetySupervisor(self.clock.monotonic)
        self.station = Station(site_current_limit=config.station.site_current_limit)
        self.platform: Platform = platform_for(config)
        self.store: Store | None = None
        self.ocpp: OcppClient | None = None
        self.drivers: dict[int, OutletDrivers] = {}
        self.protocols: dict[int, ChargingProtocol] = {}
        self.rcms: dict[int, RcmControl] = {}
        self.locks: dict[int, LockControl] = {}
        self.indicators: dict[int, Indicator] = {}
        self.overcurrent: dict[int, OvercurrentGuard] = {}
        self.thermometers: dict[int, TemperatureGuard] = {}
        self.meters: dict[int, MeterPoller] = {}
        self._persisted_at: dict[int, float] = {}
        self.reader: CardReader | None = None
        self.run_lock = RunLock(self.state_dir)
        self.publisher: StatusPublisher | None = None
        self.api: StatusApi | None = None  # (controller.api.server, imported when there is one)
        self._tasks: list[asyncio.Task[Any]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopped = False
        self._stop_event: asyncio.Event | None = None
        #: Set when a CSMS Reset asked for a restart ("hard" or "soft") or a firmware update for one into another
        #: release ("firmware"); the CLI re-executes the daemon.
        self.restart: str | None = None

    # ------------------------------------------------------------- building

    async def start(self) -> None:
        """Build everything and start it; on any failure, everything built so far is made safe."""
        sys.setswitchinterval(SWITCH_INTERVAL)
        self._loop = asyncio.get_running_loop()
        self.platform.check()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.run_lock.acquire()  # one charger per state directory (a second daemon, a probe: refused)
        self.platform.state_dir = self.state_dir
        try:
            restore_after_rollback(self.config.firmware.releases_dir, self.state_dir)
            self.store = Store(self.state_dir)
            await self.platform.start()
            for conn in self.config.connector:
                await self._build_evse(conn)
            self.platform.settle()
            restore_station(self.station, self.store, self.clock)
            self.station.rebalance()
            self._build_reader()
            await self._start_ocpp()
            self.publisher = StatusPublisher(self, version())
            self.publisher.start()
            if self.api_listen:
                from controller.api.server import StatusApi  # aiohttp: only with an API to serve

                self.api = StatusApi(self.publisher, self.api_listen, self.config.api.token)
                await self.api.start()
            self.supervisor.listeners.append(self._on_faults)
            for protocol in self.protocols.values():
                protocol.start()
            await self._self_test()
            self.supervisor.start_watch()
            self._start_devices()
            await self.platform.attach(self)
        except BaseException:
            await self.stop()
            raise
        systemd.notify("READY=1")
        log.info("charger %s ready: %d connector(s), CSMS %s", self.config.station.id, len(self.config.connector),
                 self.ocpp.display_url if self.ocpp else "none")

    async def _build_evse(self, conn: ConnectorSection) -> None:
        cid = conn.id
        drivers = self.drivers[cid] = build_outlet(conn, self.platform)
        dc = drivers.dc
        if dc is not None:
            self.supervisor.add(cid, drivers.contactor, conn.contactor.feedback_delay,
                                stop_grace=conn.dc_power.stop_grace, before_open=dc.power.shut_off,
                                current_safe=current_safe(dc.power, self.clock.monotonic), hold_limit=HOLD_LIMIT)
        else:
            self.supervisor.add(cid, drivers.contactor, conn.contactor.feedback_delay,
                                stop_grace=conn.pilot.ev_stop_timeout)
        refresh: Callable[[], None] = lambda: self._to_loop(self.station.evses[cid].refresh)  # noqa: E731
        if drivers.rcm is not None:
            self.rcms[cid] = RcmControl(cid, drivers.rcm, self.supervisor, conn.rcm, refresh)
        if drivers.lock is not None:
            self.locks[cid] = LockControl(cid, drivers.lock, self.supervisor, conn.lock, refresh)
        protocol: ChargingProtocol
        voltage: OutletVoltage | None = None
        if dc is not None:
            await dc.open()
            voltage = OutletVoltage(dc.power, functools.partial(self.supervisor.closed, cid),
                                    clock=self.clock.monotonic)
            protocol = self._dc_protocol(conn, drivers, voltage)
        else:
            assert drivers.pilot is not None
            protocol = Iec61851(
                cid, drivers.pilot, self.supervisor, conn.pilot, phases=conn.phases, to_loop=self._to_loop,
                clock=self.clock, proximity=drivers.proximity, rcm=self.rcms.get(cid), lock=self.locks.get(cid))
        self.protocols[cid] = protocol
        # A DC EVSE has no phases (0): its limits are DC amps and watts, its samples unphased.
        evse = Evse(cid, maximum=PowerLimit(amps=conn.max_current), phases=0 if dc else conn.phases,
                    protocol=protocol, supervisor=self.supervisor, emit=self.station.emit, clock=self.clock)
        self.station.add(evse)
        if drivers.led is not None:
            self.indicators[cid] = Indicator(cid, drivers.led)
            self.station.subscribe(self.indicators[cid].on_event)
        if drivers.thermometer is not None:
            self.thermometers[cid] = TemperatureGuard(evse, self.supervisor, drivers.thermometer, conn.temperature)
        poller = self.meters[cid] = MeterPoller(evse, drivers.meter, conn.meter, self.supervisor, self.clock,
                                                annotate=protocol.annotate)
        if voltage is not None:
            poller.listeners.append(voltage.on_reading)
        else:
            guard = self.overcurrent[cid] = OvercurrentGuard(evse, self.supervisor, conn.overcurrent_margin,
                                                             conn.overcurrent_grace, self.clock.monotonic)
            poller.listeners.append(lambda _evse, reading: guard.on_reading(reading))

    def _dc_protocol(self, conn: ConnectorSection, drivers: OutletDrivers, voltage: OutletVoltage) -> DcOutlet:
        cid, dc = conn.id, drivers.dc
        assert dc is not None
        guards = DcGuards(cid, self.supervisor, dc.power, estop=dc.estop, clock=self.clock.monotonic)
        common: dict[str, Any] = {
            "bus": dc.car_bus, "power": dc.power, "supervisor": self.supervisor, "to_loop": self._to_loop,
            "outlet_voltage": voltage, "imd": dc.imd, "bleeder": dc.bleeder, "lock": self.locks.get(cid),
            "guards": guards, "clock": self.clock, "imd_interval": conn.imd.interval}
        # The DC protocols load cantools and the J1939 stack (some 20 MB): only a station with a DC outlet does.
        from controller.charging.chademo.protocol import Chademo
        from controller.charging.gbt.protocol import Gbt

        if isinstance(dc.lines, ChademoLines):
            return Chademo(cid, lines=dc.lines, **common)
        assert isinstance(dc.lines, GbtLines)
        return Gbt(cid, lines=dc.lines, **common)

    def _build_reader(self) -> None:
        self.reader = build_reader(self.config, self.platform)
        if self.reader is None:
            return
        if self.config.rfid.driver == "rdm6300":
            self.station.card_token_type = IdTokenType.LOCAL  # 125 kHz EM4100: no ISO type fits
        self.reader.on_health = self._reader_health
        self._tasks.append(asyncio.create_task(self.reader.run(self.station.on_card), name="card-reader"))

    def _reader_health(self, healthy: bool) -> None:
        # The shared reader is down: charging goes on, but every EVSE reports ReaderFailure (no new
        # card sessions can start; remote starts still work) until it answers again.
        for evse in self.station.evses.values():
            evse.flag(Fault.READER_FAILURE, not healthy)

    async def _start_ocpp(self) -> None:
        url = self.csms_url or await self.platform.csms_url()
        if url == BUILTIN_CSMS:
            url = await self.platform.builtin_csms()
        if not url:
            raise RuntimeError("no CSMS: set ocpp.csms_url (or --csms)")
        assert self.store is not None
        self.ocpp = OcppClient(self.config, self.station, self.store, csms_url=url, clock=self.clock)
        self.ocpp.on_reset = self._on_reset
        self.ocpp.on_firmware_restart = self._on_firmware_restart
        self.ocpp.diagnostics.faults = self._fault_report
        self.ocpp.recover_power_loss()
        self.ocpp.meter_serial = await self._meter_serial()
        for poller in self.meters.values():
            poller.listeners.append(self._persist_reading)
        self._tasks.append(asyncio.create_task(self.ocpp.run(), name="ocpp"))

    async def _meter_serial(self) -> str | None:
        # BootNotification carries the first meter's serial number, where the meter reports one.
        if not self.drivers:
            return None
        meter = self.drivers[min(self.drivers)].meter
        try:
            return await asyncio.wait_for(meter.identify(), METER_IDENTIFY_WAIT)
        except (TimeoutError, HalError, OSError) as exc:
            log.warning("meter serial number not read (%s); BootNotification goes without it", exc)
            return None

    def _persist_reading(self, evse: Evse, reading: MeterReading) -> None:
        # What a PowerLoss stop will report, every station.reading_persist_interval (each write is an fsync).
        # The session's transaction, or the one a protocol opened before it (2.0.1 TxStartPoint EVConnected).
        local_id = evse.transaction.local_id if evse.transaction is not None else evse.next_transaction_id
        if local_id is None or self.store is None:
            return
        now = self.clock.monotonic()
        if now - self._persisted_at.get(evse.id, float("-inf")) >= self.config.station.reading_persist_interval:
            self.store.record_reading(local_id, round(reading.energy_wh), iso_utc(self.clock.utcnow()))
            self._persisted_at[evse.id] = now

    def _start_devices(self) -> None:
        for rcm in self.rcms.values():
            rcm.start()
            self._tasks.append(asyncio.create_task(rcm.run_periodic(), name=f"rcm-{rcm.id}"))
        for cid, lock in self.locks.items():
            lock.start(unlock_if_locked=not isinstance(self.protocols.get(cid), DcOutlet))
        for guard in self.thermometers.values():
            self._tasks.append(asyncio.create_task(guard.run(), name=f"temperature-{guard.evse.id}"))
        for cid, poller in self.meters.items():
            self._tasks.append(asyncio.create_task(poller.run(), name=f"meter-{cid}"))

    def _fault_report(self) -> dict[str, Any]:
        """The supervisor's fault history (with wall times) and the faults active now, for a diagnostics upload."""
        mono, wall = self.clock.monotonic(), self.clock.utcnow()
        history = [{"at": iso_utc(wall - timedelta(seconds=mono - t)), "connector": evse_id, "fault": fault.info.code}
                   for t, evse_id, fault in list(self.supervisor.history)]
        active = {str(e.id): {f.info.code: detail for f, detail in e.faults.items()}
                  for e in self.station.evses.values() if e.faults}
        return {"history": history, "active": active}

    def _on_reset(self, hard: bool) -> None:
        self.restart = "hard" if hard else "soft"
        if self._stop_event is not None:
            self._stop_event.set()

    def _on_firmware_restart(self) -> None:
        self.restart = "firmware"
        if self._stop_event is not None:
            self._stop_event.set()

    def _on_faults(self, evse_id: int, faults: dict[Fault, str]) -> None:
        # Any thread: the supervisor has already acted; the state machine hears about it on the loop.
        self._to_loop(self.station.evses[evse_id].on_faults, faults)

    def _to_loop(self, callback: Callable[..., object], *args: object) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(callback, *args)

    async def _self_test(self) -> None:
        for conn in self.config.connector:
            if not conn.contactor.self_test or conn.contactor.mirror_pin is None:
                continue
            for _ in range(100):  # the first pilot reading: a test only where no vehicle is connected
                if self.supervisor.vehicle(conn.id) is not None:
                    break
                await asyncio.sleep(0.01)
            # The reading's own handling was queued on the loop before the supervisor knew it (its RCM and lock
            # withdraw their conditions for a departed vehicle): let it run first, not in the middle of the test.
            await asyncio.sleep(0)
            await asyncio.to_thread(self.supervisor.self_test, conn.id)

    def status(self, evse_id: int) -> str:
        """An EVSE's status as the controller reports it."""
        return self.station.status(evse_id).value

    # ------------------------------------------------------------- stopping

    async def stop(self) -> None:
        """Shut down safely: contactors open first, then transactions end, then everything else.

        Safe to call more than once (a failed start, then SIGTERM).
        """
        if self._stopped:
            return
        self._stopped = True
        await self._ramp_down_dc()
        self.supervisor.open_all()
        self.supervisor.stop_watch()
        for drivers in self.drivers.values():
            if drivers.rcm is not None:
                drivers.rcm.on_trip = None
        for protocol in self.protocols.values():
            protocol.stop()
        self.station.stop_all(StopReason.OTHER, TriggerReason.ABNORMAL_CONDITION)
        for evse in self.station.evses.values():
            evse.close()
        for drivers in self.drivers.values():
            if drivers.pilot is not None:
                with contextlib.suppress(Exception):
                    drivers.pilot.set_unavailable()  # state F: not available, last of all
        log.info("outputs safe: every contactor open, every pilot in state F, every DC stage off")
        await self._bleed_dc()
        if self.ocpp is not None and self.ocpp.connected.is_set() and len(self.ocpp.queue):
            # Give queued transaction messages a moment to reach the CSMS before the link goes.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.ocpp.queue.drained(), SHUTDOWN_DRAIN)
        if self.api is not None:
            await self.api.stop()
        if self.publisher is not None:
            await self.publisher.stop()
        await cancel_and_wait(self._tasks)
        self._tasks.clear()
        device_tasks = [t for r in self.rcms.values() for t in r.tasks()]
        device_tasks += [t for k in self.locks.values() for t in k.tasks()]
        await cancel_and_wait(device_tasks)
        await self._close_drivers()
        await self.platform.stop()
        if self.store is not None:
            self.store.close()
        self.run_lock.release()
        systemd.notify("STOPPING=1")

    def _dc_outlets(self) -> list[DcOutlet]:
        return [p for p in self.protocols.values() if isinstance(p, DcOutlet)]

    async def _ramp_down_dc(self) -> None:
        # A shutdown is no emergency: DC outlets delivering ask the car to stop and bring the current to 5 A
        # first (bounded by their stop grace); only then does everything open.
        delivering = [p for p in self._dc_outlets() if p.sequence.delivering]
        if not delivering:
            return
        for outlet in delivering:
            outlet.withdraw()
        bound = max(c.dc_power.stop_grace for c in self.config.connector if c.dc)
        if not await until(lambda: all(abs(p.power.reading.current) <= SAFE_CURRENT for p in delivering), bound):
            log.error("shutdown: a DC outlet still delivers more than 5 A after %.1f s; opening anyway", bound)

    async def _bleed_dc(self) -> None:
        # The stages are off and the bleed relays on (the outlets' stop): give the outputs their second to drain.
        outlets = self._dc_outlets()
        if outlets and not await until(lambda: all(p.outlet_voltage() < TOUCH_SAFE_VOLTS for p in outlets), 1.5):
            log.warning("shutdown: a DC outlet is still at 60 V or more (a car's contactors closed?)")

    async def _close_drivers(self) -> None:
        for cid, drivers in self.drivers.items():
            await drivers.close(cid)
        self.drivers.clear()

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
