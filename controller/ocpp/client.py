"""The OCPP client, for every version: the online lifecycle, the boot gate, heartbeats, the queue, authorisation.

What is sent and when is decided here; how it is spelt is the version adapter's business (``ocpp/v16/``). On each
connection the station boots (nothing but BootNotification until it is Accepted; Pending answers the CSMS,
Rejected answers nothing until the interval ends; a triggered BootNotification goes out at once), then reports
every status, and runs the heartbeat, the status reports and the queue's drain (:mod:`controller.ocpp.outbound`,
with what each station event puts in the queue) until the link drops.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

from websockets.exceptions import ConnectionClosed

from controller.clock import Clock, parse_time
from controller.config import Config
from controller.domain.events import StatusChanged
from controller.domain.types import AuthDecision, IdToken
from controller.ocpp import device_model as dm
from controller.ocpp.adapter import Connection, Message, Registration, adapter_for
from controller.ocpp.auth import LocalAuthorization
from controller.ocpp.certificates import CertificateStore
from controller.ocpp.commands import Commands
from controller.ocpp.device_model import DeviceModel, Ref
from controller.ocpp.diagnostics import Diagnostics
from controller.ocpp.firmware import Firmware
from controller.ocpp.link import Backoff, Link
from controller.ocpp.network import NetworkProfile, NetworkProfiles, configured_profile
from controller.ocpp.outbound import Outbound
from controller.ocpp.queue import Queue
from controller.ocpp.rpc import CallFailed
from controller.ocpp.sampling import Sampler
from controller.ocpp.security import Security
from controller.ocpp.security_events import SecurityEvents
from controller.ocpp.smart_charging import SmartCharging
from controller.ocpp.statuses import StatusReporter, current_status
from controller.ocpp.variables import certificates_in, standard_variables
from controller.station import Station
from controller.storage import Store
from controller.tasks import cancel_and_wait

log = logging.getLogger(__name__)

# When the CSMS gives no usable interval with a non-Accepted BootNotification.
DEFAULT_RETRY_INTERVAL = 10.0
#: The setting where a run leaves why the next start happens.
BOOT_CAUSE = "boot.cause"


class OcppClient:
    """Keeps the station connected to its CSMS and speaks OCPP for it."""

    def __init__(self, config: Config, station: Station, store: Store, *, csms_url: str,
                 clock: Clock | None = None) -> None:
        self.config = config
        self.station = station
        self.store = store
        self.clock = clock or Clock()
        self.cp_id = config.station.id
        self.model = DeviceModel(store, standard_variables(config, station, self.clock, store))
        self.auth = LocalAuthorization(store, self.model, self.clock)
        self.certificates = CertificateStore(store.path.parent, client_cert_file=config.ocpp.client_cert_file,
                                             client_key_file=config.ocpp.client_key_file)
        self.commands = Commands(self)
        self.security = Security(self)
        self.diagnostics = Diagnostics(self)
        self.firmware = Firmware(self)
        self.adapter = adapter_for(config.ocpp.version, self)
        self.queue = Queue(store, self.adapter.version, getattr(self.adapter, "stamp", None))
        security = configured_profile(csms_url, config.ocpp)
        self.network = NetworkProfiles(store, self.model,
                                       NetworkProfile(1, csms_url, security, config.ocpp.response_timeout))
        self.model.provide(dm.SECURITY_PROFILE, lambda: str(self.network.active.security_profile))
        ca_file = certificates_in(config.ocpp.ca_file)
        self.model.provide(dm.CERTIFICATE_ENTRIES, lambda: str(ca_file + len(self.certificates.installed())))
        self.link = Link(self.network.order, self.cp_id, self.adapter.subprotocol, config.ocpp,
                         lambda: self.model.number(dm.WEBSOCKET_PING_INTERVAL), self._backoff,
                         password=lambda: self.model.get(dm.BASIC_AUTH_PASSWORD), on_connected=self.network.connected,
                         on_security_event=self.security_event, certificates=self.certificates)
        self.outbound = Outbound(self)
        self.sampler = Sampler(station, self.model, self.clock, self.outbound.aligned_sample)
        self.smart = SmartCharging(station, store, self.clock, ZoneInfo(config.station.timezone))
        self.model.provide(dm.SMART_ENTRIES, lambda: str(len(self.smart.profiles)))
        # 2.0.1 and the 1.6 security whitepaper spell SecurityEventNotification.
        self.security_events = SecurityEvents(store, self.clock, getattr(self.adapter, "security_event", None),
                                              self.send)
        self.statuses = StatusReporter(self.model, self.queue, self._send_status)
        #: The meter serial number BootNotification reports (the app reads it from the first meter).
        self.meter_serial: str | None = None
        #: Called with hard=True/False once a Reset has ended the transactions: the app restarts.
        self.on_reset: Callable[[bool], None] | None = None
        #: Called when a firmware update (or its rollback) needs the station started anew through the guard.
        self.on_firmware_restart: Callable[[], None] | None = None
        #: The last BootNotification answer (None before one).
        self.registration: Registration | None = None
        self.connected = asyncio.Event()
        self._conn: Connection | None = None  # the connection, once booted
        self._booting: Connection | None = None  # the connection while it boots
        self._boot_now = asyncio.Event()
        self._heartbeat_changed = asyncio.Event()
        #: When the last online connection dropped (monotonic; None: never online yet), and the statuses told.
        self._offline_since: float | None = None
        self._told: dict[int, StatusChanged] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        station.subscribe(self.outbound.on_event)
        station.authorizer = self
        self._apply_policy()
        self.model.on_change(self._variable_changed)

    @property
    def display_url(self) -> str:
        """The CSMS URL as logs and reports show it (without a password)."""
        return self.link.display_url

    @property
    def connection(self) -> Connection | None:
        """The CSMS connection once booted; None while offline or booting."""
        return self._conn

    def silenced(self) -> bool:
        """After a Rejected BootNotification the station answers nothing until the interval ends."""
        return self.registration == Registration.REJECTED

    def _variable_changed(self, ref: Ref, _value: str) -> None:
        self._apply_policy()
        if ref == dm.HEARTBEAT_INTERVAL:
            self._heartbeat_changed.set()
        elif ref == dm.BASIC_AUTH_PASSWORD:
            log.info("the CSMS set a new BasicAuthPassword: reconnecting with it")
            self.security_event("ReconfigurationOfSecurityParameters")
            self.link.reconnect()

    def _backoff(self) -> Backoff:
        # ocpp.reconnect_min is the least wait whatever the CSMS sets: no tight reconnect loop against it.
        return Backoff(max(float(self.model.number(dm.RETRY_WAIT_MINIMUM)), self.config.ocpp.reconnect_min),
                       float(self.model.number(dm.RETRY_RANDOM_RANGE)), self.model.number(dm.RETRY_REPEAT_TIMES),
                       self.model.number(dm.NETWORK_PROFILE_ATTEMPTS), self.config.ocpp.reconnect_max)

    def _apply_policy(self) -> None:
        self.station.master_pass_group = self.model.get(dm.MASTER_PASS_GROUP_ID) or None
        for evse in self.station.evses.values():
            evse.policy.connection_timeout = float(self.model.number(dm.EV_CONNECTION_TIMEOUT))
            evse.policy.stop_on_ev_disconnect = self.model.flag(dm.STOP_TX_ON_EV_SIDE_DISCONNECT)
            evse.policy.unlock_on_ev_disconnect = self.model.flag(dm.UNLOCK_ON_EV_SIDE_DISCONNECT)

    # -------------------------------------------------------------- lifecycle

    def recover_power_loss(self) -> None:
        """Before anything is sent: transactions a dead process left open end as PowerLoss."""
        self.queue.recover_power_loss(self.adapter.power_loss)

    async def run(self) -> None:
        """Connect, boot and serve until cancelled."""
        aligned = asyncio.create_task(self.sampler.run_aligned(), name="ocpp-clock-aligned")
        limits = asyncio.create_task(self.smart.run(), name="ocpp-smart-charging")
        self.firmware.start()
        try:
            await self.link.run(self._session)
        finally:
            await cancel_and_wait([aligned, limits, *self._tasks])
            await self.diagnostics.close()
            await self.firmware.close()
            await self.sampler.close()

    async def _session(self, ws: Any) -> None:
        conn = self.adapter.connection(ws)
        reader = asyncio.create_task(conn.start(), name="ocpp-reader")
        online = asyncio.create_task(self._online(conn), name="ocpp-online")
        try:
            done, _ = await asyncio.wait([reader, online], return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                exc = None if task.cancelled() else task.exception()
                if exc is not None and not isinstance(exc, ConnectionClosed):
                    log.error("OCPP task %s failed: %r", task.get_name(), exc)
        finally:
            if self._conn is not None:
                self._offline_since = self.clock.monotonic()
            self._conn = self._booting = None
            self.connected.clear()
            await cancel_and_wait([reader, online])

    async def _online(self, conn: Connection) -> None:
        if self.registration != Registration.ACCEPTED:
            await self._boot(conn)
        self._conn = conn
        self.connected.set()
        booted = getattr(self.adapter, "booted", None)  # 2.0.1: what a boot means for its reports
        if booted is not None:
            booted()
        await self.security_events.deliver()
        # After the first connect and an outage longer than OfflineThreshold the CSMS gets every status; after a
        # shorter one, those that changed (B04).
        offline = None if self._offline_since is None else self.clock.monotonic() - self._offline_since
        every = offline is None or offline > self.model.number(dm.OFFLINE_THRESHOLD)
        for status in (StatusChanged(0, self.station.station_status()),
                       *(current_status(e) for e in self.station.evses.values())):
            if every or self._told.get(status.evse_id) != status:
                await self._send_status(status)
        await self.firmware.booted()  # after the statuses, as L01 orders Installed
        await asyncio.gather(self._heartbeat(conn), self.outbound.drain(conn), self.statuses.run(self.station.evses))

    async def _boot(self, conn: Connection) -> None:
        """BootNotification until Accepted: nothing else is sent before that (unless the CSMS triggers it)."""
        self._booting = conn
        while True:
            self._boot_now.clear()
            try:
                result = await conn.request(*self.adapter.boot())
            except CallFailed as exc:
                log.warning("BootNotification failed (%s); retrying in %.0f s", exc, DEFAULT_RETRY_INTERVAL)
                await self._wait_boot(DEFAULT_RETRY_INTERVAL)
                continue
            status, interval, current_time = self.adapter.boot_answer(result)
            self._follow_clock(current_time)
            self.registration = status
            if status == Registration.ACCEPTED:
                if interval > 0:
                    self.model.set_runtime(dm.HEARTBEAT_INTERVAL, str(interval))
                log.info("BootNotification accepted; heartbeat every %d s", self.model.number(dm.HEARTBEAT_INTERVAL))
                self._booting = None
                return
            wait = float(interval) if interval > 0 else DEFAULT_RETRY_INTERVAL
            if status == Registration.PENDING:
                log.warning("BootNotification pending: answering the CSMS, asking again in %.0f s", wait)
            else:
                log.warning("BootNotification rejected: silent for %.0f s, then asking again", wait)
            await self._wait_boot(wait)

    async def _wait_boot(self, seconds: float) -> None:
        # A TriggerMessage(BootNotification) while Pending cuts the wait short.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._boot_now.wait(), seconds)

    def boot_now(self) -> bool:
        """TriggerMessage(BootNotification): send one at once (True), or none is due (False: already Accepted)."""
        if self._booting is None:
            return False
        self._boot_now.set()
        return True

    def _follow_clock(self, current_time: str) -> None:
        if self.model.items(dm.TIME_SOURCE)[:1] != ["Heartbeat"]:
            return  # ClockCtrlr.TimeSource puts the system clock first
        try:
            correction = self.clock.follow(parse_time(current_time))
            self.smart.changed()  # every boundary moved with the clock
        except ValueError:
            log.warning("CSMS sent an unreadable currentTime %r; keeping the local clock", current_time)
            return
        if abs(correction) > timedelta(seconds=1):
            log.info("clock follows the CSMS: corrected by %.1f s", correction.total_seconds())
            self.security_event("SettingSystemTime")

    async def _heartbeat(self, conn: Connection) -> None:
        while True:
            self._heartbeat_changed.clear()
            try:
                # A new HeartbeatInterval takes effect at once, not after the old one runs out.
                await asyncio.wait_for(self._heartbeat_changed.wait(), self.model.number(dm.HEARTBEAT_INTERVAL))
                continue
            except TimeoutError:
                pass
            try:
                result = await conn.request(*self.adapter.heartbeat())
            except CallFailed as exc:
                log.warning("Heartbeat failed (%s); the next one in %d s", exc, self.model.number(
                    dm.HEARTBEAT_INTERVAL))
                continue
            self._follow_clock(self.adapter.heartbeat_answer(result))

    # ---------------------------------------------------------------- sending

    async def send(self, message: Message) -> dict[str, Any] | None:
        """Send one message now (not through the queue); None when offline or it failed (logged)."""
        conn = self._conn or self._booting
        if conn is None:
            return None
        try:
            return await conn.request(*message)
        except CallFailed as exc:
            log.warning("%s", exc)
        except ConnectionClosed:
            log.warning("%s not sent: the connection closed", message[0])
        return None

    def spawn(self, coro: Any) -> None:
        """Run a send in the background (handlers never await a CALL of their own: it would block the reader)."""
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send_status(self, event: StatusChanged) -> None:
        message = self.adapter.status(event)
        if message is None or await self.send(message) is not None:
            self._told[event.evse_id] = event  # told: after a short outage it is not told again
        notices = getattr(self.adapter, "notices", None)  # 2.0.1 reports a fault in a NotifyEvent of its own
        for notice in notices(event) if notices is not None else []:
            await self.send(notice)

    # ---------------------------------------------------------- authorisation

    async def authorize(self, id_token: IdToken) -> AuthDecision:
        """May ``id_token`` charge? Local pre-authorisation, the CSMS, or the offline rules, in that order."""
        conn = self._conn
        if conn is not None:
            pre = self.auth.pre_authorized(id_token)
            if pre is not None:
                return pre
            try:
                result = await conn.request(*self.adapter.authorize(id_token))
            except (CallFailed, ConnectionClosed) as exc:
                log.warning("Authorize for %s failed (%s); deciding offline", id_token.value, exc)
            else:
                decision = self.adapter.authorize_answer(result)
                self.auth.remember(id_token, decision)
                return decision
        decision = self.auth.decide_offline(id_token)
        log.info("offline authorisation of %s: %s (%s, %s)", id_token.value,
                 "accepted" if decision.accepted else "refused", decision.status.value, decision.source.value)
        return decision

    async def data_transfer(self, vendor_id: str, message_id: str | None = None,
                            data: str | None = None) -> tuple[str, str | None]:
        """A DataTransfer to the CSMS; returns (status, data). ConnectionError when offline, CallFailed on failure."""
        conn = self._conn
        if conn is None:
            raise ConnectionError("not connected to the CSMS")
        result = await conn.request(*self.adapter.data_transfer(vendor_id, message_id, data))
        return str(result["status"]), result.get("data")

    def security_event(self, kind: str) -> None:
        """A security event: kept on disk until the CSMS has it (:mod:`controller.ocpp.security_events`)."""
        if self.security_events.keep(kind) and self._conn is not None:
            self.spawn(self.security_events.deliver())

    def reset(self, hard: bool, *, scheduled: bool = False) -> None:
        """Restart after a Reset (transactions already ended and their messages given a moment); ``scheduled``:
        one that waited for the transactions to end (OnIdle)."""
        # The next BootNotification says why (2.0.1 RemoteReset or ScheduledReset).
        self.store.set_setting(BOOT_CAUSE, "scheduled_reset" if scheduled else "reset")
        if self.on_reset is not None:
            self.on_reset(hard)

    def restart_for_firmware(self) -> None:
        """Start anew through the release guard: into a new release, or back from one on trial."""
        self.store.set_setting(BOOT_CAUSE, "firmware")  # the next BootNotification says FirmwareUpdate
        if self.on_firmware_restart is not None:
            self.on_firmware_restart()

    def take_boot_cause(self) -> str | None:
        """Why this start happened, as the last run recorded it ("reset", "scheduled_reset"), once; None: a
        power-up."""
        cause = self.store.get_setting(BOOT_CAUSE)
        if cause is not None:
            with self.store.atomic() as db:
                self.store.drop_setting(db, BOOT_CAUSE)
        return cause

    def send_all(self, messages: list[Message]) -> None:
        """Send these one after another in the background (a report in parts, after the request's answer)."""
        async def run() -> None:
            for message in messages:
                await self.send(message)

        self.spawn(run())
