"""OCPP 1.6J client: connection, boot, heartbeat, statuses, the durable transaction outbox, meter values.

The ``ocpp`` package routes and validates messages; reconnecting, the boot
sequence, heartbeats, the ordered outbox and the configuration keys are ours.
Requests from the CSMS are answered in :mod:`controller.ocpp.v16_handlers`.
"""

from __future__ import annotations

import asyncio
import logging
import random
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import websockets
from ocpp.exceptions import OCPPError
from ocpp.v16 import call
from ocpp.v16.enums import AuthorizationStatus, RegistrationStatus
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI
from websockets.typing import Subprotocol

from controller.clock import Clock, iso_utc, parse_time
from controller.config import Config
from controller.domain.events import (
    Event,
    MeterSample,
    StatusChanged,
    Transaction,
    TransactionEnded,
    TransactionStarted,
)
from controller.domain.types import (
    Answer,
    AuthDecision,
    AuthSource,
    AuthStatus,
    EvseStatus,
    IdToken,
    StopReason,
    TriggerReason,
)
from controller.evse.machine import Evse
from controller.evse.reservation import Reservation
from controller.ocpp.auth import IdTagInfo, LocalAuthorization
from controller.ocpp.keys import ConfigurationKeys
from controller.ocpp.link import redact
from controller.ocpp.metervalues import meter_value
from controller.ocpp.outbox import Outbox
from controller.ocpp.v16.codes import CSMS_TOKEN, ERROR_CODES, REASONS, auth_status
from controller.ocpp.v16.handlers import StationChargePoint
from controller.station import Station
from controller.storage import Store, StoredMessage, StoredTransaction
from controller.tasks import cancel_and_wait

log = logging.getLogger(__name__)

SUBPROTOCOL = Subprotocol("ocpp1.6")
# When the CSMS gives no usable interval with a non-Accepted BootNotification.
DEFAULT_RETRY_INTERVAL = 10.0
# How long a reset waits for the StopTransactions to reach the CSMS before restarting (they stay on disk).
SOFT_RESET_DRAIN = 10.0
# websockets' default wait for the peer's answer to a close frame.
CLOSE_TIMEOUT = 10.0
HARD_RESET_DRAIN = 2.0


class Ocpp16Client:
    """Keeps the station connected to its CSMS and speaks OCPP 1.6J for it."""

    def __init__(
        self, config: Config, station: Station, store: Store, *, csms_url: str, clock: Clock | None = None
    ) -> None:
        self.config = config
        self.station = station
        self.clock = clock or Clock()
        self.cp_id = config.station.id
        self.url = csms_url.rstrip("/") + "/" + self.cp_id
        #: The URL as logs and reports show it: never with a password.
        self.display_url = redact(self.url)
        self.store = store
        self.outbox = Outbox(store)
        #: Called with hard=True/False once a Reset has ended the transactions: the app restarts.
        self.on_reset: Callable[[bool], None] | None = None
        self.keys = ConfigurationKeys(config, store)
        self.auth = LocalAuthorization(store, self.keys, self.clock)
        #: The last BootNotification answer: None before one, then Accepted, Pending or Rejected.
        self.registration: str | None = None
        self.connected = asyncio.Event()
        self._cp: StationChargePoint | None = None
        self._samplers: dict[str, asyncio.Task[None]] = {}
        self._aligned: dict[str, list[dict[str, Any]]] = {}  # StopTxnAlignedData per open transaction
        self._pending_status: dict[int, asyncio.TimerHandle] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        station.subscribe(self._on_event)
        station.authorizer = self
        self._heartbeat_changed = asyncio.Event()
        self._apply_connector_keys()
        self.keys.on_change(self._key_changed)

    def _key_changed(self, key: str, _value: str) -> None:
        self._apply_connector_keys()
        if key == "HeartbeatInterval":
            self._heartbeat_changed.set()

    def _apply_connector_keys(self) -> None:
        for evse in self.station.evses.values():
            evse.policy.connection_timeout = float(self.keys.number("ConnectionTimeOut"))
            evse.policy.stop_on_ev_disconnect = self.keys.flag("StopTransactionOnEVSideDisconnect")
            evse.policy.unlock_on_ev_disconnect = self.keys.flag("UnlockConnectorOnEVSideDisconnect")

    # ------------------------------------------------------------ connection

    async def run(self) -> None:
        """Connect, boot and serve until cancelled, reconnecting with back-off and jitter."""
        aligned = asyncio.create_task(self._clock_aligned(), name="ocpp-clock-aligned")
        delay = self.config.ocpp.reconnect_min
        try:
            while True:
                ping = self.keys.number("WebSocketPingInterval") or None
                try:
                    async with websockets.connect(
                        self.url,
                        subprotocols=[SUBPROTOCOL],
                        open_timeout=self.config.ocpp.connect_timeout,
                        ping_interval=ping,
                        ping_timeout=ping,  # no pong within the interval: the link is dead, reconnect
                        # A dead peer never answers the close handshake either: wait no longer than a ping.
                        close_timeout=min(ping, CLOSE_TIMEOUT) if ping else CLOSE_TIMEOUT,
                    ) as ws:
                        if ws.subprotocol != SUBPROTOCOL:
                            log.error("CSMS at %s did not agree to subprotocol %s; closing", self.display_url,
                                      SUBPROTOCOL)
                            await ws.close()
                        else:
                            log.info("connected to CSMS at %s", self.display_url)
                            delay = self.config.ocpp.reconnect_min
                            await self._serve(ws)
                            log.warning("connection to CSMS at %s closed", self.display_url)
                except asyncio.CancelledError:
                    raise
                except (OSError, TimeoutError, InvalidHandshake, InvalidURI, ConnectionClosed) as exc:
                    log.warning("CSMS at %s unreachable: %s", self.display_url, exc or type(exc).__name__)
                wait = delay * random.uniform(0.8, 1.2)
                log.info("reconnecting to CSMS in %.1f s", wait)
                await asyncio.sleep(wait)
                delay = min(delay * 2, self.config.ocpp.reconnect_max)
        finally:
            await cancel_and_wait([aligned])

    async def _serve(self, ws: Any) -> None:
        cp = StationChargePoint(self.cp_id, ws, self, self.config.ocpp.response_timeout)
        reader = asyncio.create_task(cp.start(), name="ocpp-reader")
        online = asyncio.create_task(self._online(cp), name="ocpp-online")
        try:
            done, _ = await asyncio.wait([reader, online], return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                exc = None if task.cancelled() else task.exception()
                if exc is not None and not isinstance(exc, ConnectionClosed):
                    log.error("OCPP task %s failed: %r", task.get_name(), exc)
        finally:
            self._cp = None
            self.connected.clear()
            await cancel_and_wait([reader, online])

    async def _online(self, cp: StationChargePoint) -> None:
        if self.registration != RegistrationStatus.accepted:
            await self._boot(cp)
        self._cp = cp
        self.connected.set()
        # After every (re)connect the CSMS gets the current status of the station and each connector.
        await self._send_status(cp, StatusChanged(0, self._station_status()))
        for evse in self.station.evses.values():
            await self._send_status(cp, self._current_status(evse))
        await asyncio.gather(self._heartbeat(cp), self._drain_outbox(cp))

    async def _boot(self, cp: StationChargePoint) -> None:
        """BootNotification until Accepted: nothing else is sent before that."""
        while True:
            try:
                result = await cp.call(self._boot_request(), suppress=False)
            except OCPPError as exc:
                log.warning("BootNotification answered with %s; retrying in %.0f s", exc, DEFAULT_RETRY_INTERVAL)
                await asyncio.sleep(DEFAULT_RETRY_INTERVAL)
                continue
            self._follow_clock(result.current_time)
            self.registration = str(result.status)
            interval = float(result.interval) if result.interval > 0 else DEFAULT_RETRY_INTERVAL
            if result.status == RegistrationStatus.accepted:
                if result.interval > 0:
                    self.keys.set_runtime("HeartbeatInterval", str(result.interval))
                log.info("BootNotification accepted; heartbeat every %d s", self.keys.number("HeartbeatInterval"))
                return
            if result.status == RegistrationStatus.pending:
                log.warning("BootNotification pending: answering the CSMS, asking again in %.0f s", interval)
            else:
                log.warning("BootNotification rejected: silent for %.0f s, then asking again", interval)
            await asyncio.sleep(interval)

    def _boot_request(self) -> Any:
        station = self.config.station
        return call.BootNotification(
            charge_point_vendor=station.vendor,
            charge_point_model=station.model,
            charge_point_serial_number=station.serial_number or None,
        )

    def _follow_clock(self, current_time: str) -> None:
        try:
            correction = self.clock.follow(parse_time(current_time))
        except ValueError:
            log.warning("CSMS sent an unreadable currentTime %r; keeping the local clock", current_time)
            return
        if abs(correction) > timedelta(seconds=1):
            log.info("clock follows the CSMS: corrected by %.1f s", correction.total_seconds())

    async def _heartbeat(self, cp: StationChargePoint) -> None:
        while True:
            self._heartbeat_changed.clear()
            try:
                # A new HeartbeatInterval takes effect at once, not after the old one runs out.
                await asyncio.wait_for(self._heartbeat_changed.wait(), self.keys.number("HeartbeatInterval"))
                continue
            except TimeoutError:
                pass
            result = await cp.call(call.Heartbeat())
            if result is not None:
                self._follow_clock(result.current_time)

    def _station_status(self) -> EvseStatus:
        return self.station.station_status()

    @staticmethod
    def _current_status(evse: Evse) -> StatusChanged:
        fault = next(iter(evse.faults), None) if evse.status == EvseStatus.FAULTED else None
        fault = fault or (evse.warnings[0] if evse.warnings else None)
        return StatusChanged(evse.id, evse.status, fault, evse.faults.get(fault) if fault else None)

    async def _send_status(self, cp: StationChargePoint, event: StatusChanged) -> None:
        fault = event.fault
        detail = event.detail or (fault.info.description if fault else None)
        await cp.call(
            call.StatusNotification(
                connector_id=event.evse_id,
                error_code=ERROR_CODES[fault] if fault else "NoError",
                status=event.status.value,
                info=detail[:50] if fault and detail else None,
                vendor_error_code=fault.info.code if fault else None,
                timestamp=iso_utc(self.clock.utcnow()),
            )
        )

    def _status_changed(self, event: StatusChanged) -> None:
        """Report a status, unless MinimumStatusDuration says it has not lasted long enough yet."""
        pending = self._pending_status.pop(event.evse_id, None)
        if pending is not None:
            pending.cancel()
        if self._cp is None:
            return  # sent with every other status after the next (re)connect
        minimum = self.keys.number("MinimumStatusDuration")
        if minimum <= 0:
            self._spawn(self._send_status(self._cp, event))
            return

        def settled() -> None:
            self._pending_status.pop(event.evse_id, None)
            if self._cp is not None:
                self._spawn(self._send_status(self._cp, event))

        self._pending_status[event.evse_id] = asyncio.get_running_loop().call_later(minimum, settled)

    # ----------------------------------------------------- transaction outbox

    async def _drain_outbox(self, cp: StationChargePoint) -> None:
        while True:
            message = await self.outbox.head()
            payload = dict(message.payload)
            if message.action != "StartTransaction":
                # A start the CSMS never confirmed leaves its later messages with transactionId -1.
                payload["transaction_id"] = self.outbox.transaction_id(message.tx_local_id)
            request = getattr(call, message.action)(**payload)
            # The same message id on every attempt, across restarts: a CSMS can recognise a retry.
            message_id = message.message_id or str(uuid.uuid4())
            if message.message_id is None:
                self.outbox.store.mark_sending(message.seq, message_id)
            try:
                result = await cp.call(request, suppress=False, unique_id=message_id)
            except (OCPPError, TimeoutError) as exc:
                await self._failed_attempt(message, exc)
                continue
            if message.action == "StartTransaction":
                self.outbox.delivered(message, int(result.transaction_id))
                self.auth.remember(payload["id_tag"], IdTagInfo.from_ocpp(result.id_tag_info))
                self._start_confirmed(message.tx_local_id, result.id_tag_info)
            else:
                self.outbox.delivered(message)
                if message.action == "StopTransaction" and result.id_tag_info and "id_tag" in payload:
                    self.auth.remember(payload["id_tag"], IdTagInfo.from_ocpp(result.id_tag_info))

    async def _failed_attempt(self, message: StoredMessage, exc: Exception) -> None:
        attempts = self.outbox.store.count_attempt(message.seq)
        if attempts >= self.keys.number("TransactionMessageAttempts"):
            log.error("%s for transaction %s given up after %d attempts: %r",
                      message.action, message.tx_local_id, attempts, exc)
            self.outbox.give_up(message)
            return
        wait = self.keys.number("TransactionMessageRetryInterval") * attempts
        log.warning("%s failed (%r); attempt %d in %d s", message.action, exc, attempts + 1, wait)
        await asyncio.sleep(wait)

    def _start_confirmed(self, local_id: str, id_tag_info: dict[str, Any]) -> None:
        status = id_tag_info.get("status", AuthorizationStatus.invalid)
        log.info("CSMS confirmed transaction %s as id %d (%s)", local_id, self.outbox.transaction_id(local_id), status)
        if status == AuthorizationStatus.accepted:
            return
        self.station.deauthorize(
            local_id,
            stop=self.keys.flag("StopTransactionOnInvalidId"),
            max_energy_wh=self.keys.number("MaxEnergyOnInvalidId"),
        )

    # ---------------------------------------------------------------- events

    def _on_event(self, event: Event) -> None:
        if isinstance(event, StatusChanged):
            self._status_changed(event)
        elif isinstance(event, TransactionStarted):
            self._transaction_started(event.transaction)
        elif isinstance(event, TransactionEnded):
            self._transaction_ended(event.transaction)
        elif isinstance(event, MeterSample):
            at = iso_utc(event.at)
            phases = self.station.evses[event.evse_id].phases
            payload = {
                "connector_id": event.evse_id,
                "meter_value": [meter_value(event.reading, at, phases, self.keys.items("MeterValuesSampledData"))],
            }
            self.outbox.meter_sample(event.transaction.local_id, payload, round(event.reading.energy_wh), at)

    def _transaction_started(self, tx: Transaction) -> None:
        started = iso_utc(tx.started_at)
        self.outbox.transaction_started(
            StoredTransaction(tx.local_id, tx.evse_id, tx.id_token.value, tx.meter_start_wh, started, None, False,
                              tx.meter_start_wh, started, True),
            {"connector_id": tx.evse_id, "id_tag": tx.id_token.value, "meter_start": tx.meter_start_wh,
             "timestamp": started, **({"reservation_id": tx.reservation_id} if tx.reservation_id is not None else {})},
        )
        self._aligned[tx.local_id] = []
        evse = self.station.evses[tx.evse_id]
        self._samplers[tx.local_id] = asyncio.get_running_loop().create_task(self._sample(evse, tx))

    def _transaction_ended(self, tx: Transaction) -> None:
        sampler = self._samplers.pop(tx.local_id, None)
        if sampler is not None:
            sampler.cancel()
        assert tx.stopped_at is not None and tx.stop_reason is not None
        stop: dict[str, Any] = {"meter_stop": tx.meter_stop_wh, "timestamp": iso_utc(tx.stopped_at),
                                "reason": REASONS[tx.stop_reason]}
        if tx.stop_id_token is not None:
            stop["id_tag"] = tx.stop_id_token.value
        data = self._transaction_data(tx)
        if data:
            stop["transaction_data"] = data
        self.outbox.transaction_ended(tx.local_id, stop)

    def _transaction_data(self, tx: Transaction) -> list[dict[str, Any]]:
        """StopTxnSampledData at the start and end, and the StopTxnAlignedData samples taken in between."""
        phases = self.station.evses[tx.evse_id].phases
        data: list[dict[str, Any]] = []
        sampled = self.keys.items("StopTxnSampledData")
        if sampled and tx.start_reading is not None:
            data.append(meter_value(tx.start_reading, iso_utc(tx.started_at), phases, sampled, "Transaction.Begin"))
        data.extend(self._aligned.pop(tx.local_id, []))
        if sampled and tx.stop_reading is not None and tx.stopped_at is not None:
            data.append(meter_value(tx.stop_reading, iso_utc(tx.stopped_at), phases, sampled, "Transaction.End"))
        return data

    async def _sample(self, connector: Evse, tx: Transaction) -> None:
        # Cancelled when the transaction ends (TransactionEnded); the interval is read afresh each time.
        while True:
            interval = self.keys.number("MeterValueSampleInterval")
            await asyncio.sleep(interval if interval > 0 else 1.0)
            if interval > 0 and connector.reading is not None:
                self.station.emit(MeterSample(connector.id, tx, connector.reading, self.clock.utcnow()))

    async def _clock_aligned(self) -> None:
        """MeterValues at every multiple of ClockAlignedDataInterval since midnight UTC (context Sample.Clock)."""
        while True:
            interval = self.keys.number("ClockAlignedDataInterval")
            if interval <= 0:
                await asyncio.sleep(1.0)
                continue
            now = self.clock.utcnow()
            midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
            periods = (now - midnight).total_seconds() // interval + 1
            boundary = midnight + timedelta(seconds=periods * interval)
            await asyncio.sleep((boundary - now).total_seconds())
            # Stamped with the boundary the sample belongs to, however late the loop woke up for it.
            at = iso_utc(boundary)
            for evse in self.station.evses.values():
                self._aligned_sample(evse, at)

    def _aligned_sample(self, connector: Evse, at: str) -> None:
        reading = connector.reading
        if reading is None:
            return
        tx = connector.transaction
        value = meter_value(reading, at, connector.phases, self.keys.items("MeterValuesAlignedData"), "Sample.Clock")
        if tx is not None:
            # Part of the transaction: through the outbox, in order, with its transactionId.
            self.outbox.meter_sample(tx.local_id, {"connector_id": connector.id, "meter_value": [value]},
                                     round(reading.energy_wh), at)
            stop_aligned = self.keys.items("StopTxnAlignedData")
            if stop_aligned and tx.local_id in self._aligned:
                self._aligned[tx.local_id].append(
                    meter_value(reading, at, connector.phases, stop_aligned, "Sample.Clock"))
        elif value["sampled_value"] and self._cp is not None:
            self._spawn(self._cp.call(call.MeterValues(connector_id=connector.id, meter_value=[value])))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("OCPP send failed: %r", task.exception())

    # ------------------------------------------------------ station commands

    async def authorize(self, id_token: IdToken) -> AuthDecision:
        """May ``id_token`` charge? Local pre-authorisation, the CSMS, or the offline rules, in that order."""
        id_tag = id_token.value
        cp = self._cp
        if cp is not None:
            pre = self.auth.pre_authorized(id_tag)
            if pre is not None:
                return _decision(pre, AuthSource.LOCAL_LIST)
            try:
                result = await cp.call(call.Authorize(id_tag=id_tag), suppress=False)
            except (OCPPError, TimeoutError, ConnectionClosed) as exc:
                log.warning("Authorize for %s failed (%r); deciding offline", id_tag, exc)
            else:
                info = IdTagInfo.from_ocpp(result.id_tag_info)
                self.auth.remember(id_tag, info)
                return _decision(info, AuthSource.CSMS)
        allowed, known = self.auth.decide_offline(id_tag)
        log.info("offline authorisation of %s: %s (%s)", id_tag, "accepted" if allowed else "refused",
                 known.status if known else "unknown idTag")
        if known is None:
            return AuthDecision(AuthStatus.ACCEPTED if allowed else AuthStatus.UNKNOWN, AuthSource.OFFLINE_RULE)
        decision = _decision(known, AuthSource.OFFLINE_RULE)
        return decision if allowed or not decision.accepted else AuthDecision(AuthStatus.UNKNOWN, AuthSource.NONE)

    def remote_start(self, id_tag: str, connector_id: int | None) -> bool:
        """RemoteStartTransaction.req: refused while the boot is Pending.

        With AuthorizeRemoteTxRequests the idTag is authorised like a card first (local list, cache or
        Authorize.req); the answer is Accepted when a connector can take it, and the session follows
        only if the authorisation succeeds.
        """
        if self.registration != RegistrationStatus.accepted:
            return False
        token = IdToken(id_tag, CSMS_TOKEN)
        if not self.keys.flag("AuthorizeRemoteTxRequests"):
            return self.station.remote_start(token, connector_id)
        if not self.station.can_start(token, connector_id):
            return False
        self._spawn(self._authorized_remote_start(token, connector_id))
        return True

    async def _authorized_remote_start(self, token: IdToken, connector_id: int | None) -> None:
        decision = await self.authorize(token)
        if not decision.accepted:
            log.info("remote start for %s not authorised (%s)", token.value, decision.status.value)
            return
        if not self.station.remote_start(token, connector_id, decision):
            log.info("remote start for %s: the connector is no longer free", token.value)

    def reserve(self, connector_id: int, expiry_date: str, id_tag: str, reservation_id: int,
                parent_id_tag: str | None) -> Answer:
        """ReserveNow.req: reserve a connector (0 = any, when ReserveConnectorZeroSupported) until expiry."""
        try:
            expires = parse_time(expiry_date)
        except ValueError:
            return Answer.REJECTED
        if expires <= self.clock.utcnow():
            return Answer.REJECTED
        group = IdToken(parent_id_tag, CSMS_TOKEN) if parent_id_tag else None
        reservation = Reservation(reservation_id, IdToken(id_tag, CSMS_TOKEN), group, expires)
        return self.station.reserve(connector_id, reservation, self.keys.flag("ReserveConnectorZeroSupported"))

    def trigger(self, message: str, connector_id: int | None) -> None:
        """TriggerMessage.req (already answered): send the requested message now."""
        cp = self._cp
        if cp is None:
            return
        connectors = [c for c in self.station.evses.values() if connector_id in (None, 0, c.id)]
        if message == "BootNotification":
            self._spawn(cp.call(self._boot_request()))
        elif message == "Heartbeat":
            self._spawn(cp.call(call.Heartbeat()))
        elif message == "StatusNotification":
            if connector_id in (None, 0):
                self._spawn(self._send_status(cp, StatusChanged(0, self._station_status())))
            for c in connectors:
                self._spawn(self._send_status(cp, self._current_status(c)))
        elif message == "MeterValues":
            for c in connectors:
                if c.reading is not None:
                    self._spawn(self._triggered_meter_values(cp, c))
        elif message == "DiagnosticsStatusNotification":
            self._spawn(cp.call(call.DiagnosticsStatusNotification(status="Idle")))
        elif message == "FirmwareStatusNotification":
            self._spawn(cp.call(call.FirmwareStatusNotification(status="Idle")))

    async def _triggered_meter_values(self, cp: StationChargePoint, connector: Evse) -> None:
        assert connector.reading is not None
        value = meter_value(connector.reading, iso_utc(self.clock.utcnow()), connector.phases,
                            self.keys.items("MeterValuesSampledData"), "Trigger")
        tx = connector.transaction
        tx_id = self.outbox.transaction_id(tx.local_id) if tx is not None else None
        await cp.call(call.MeterValues(connector_id=connector.id, meter_value=[value], transaction_id=tx_id))

    def reset(self, *, hard: bool) -> None:
        """Reset.req (already answered Accepted): end transactions, let them reach the CSMS, restart."""
        self._spawn(self._reset(hard))

    async def _reset(self, hard: bool) -> None:
        stopped = self.station.stop_all(StopReason.HARD_RESET if hard else StopReason.SOFT_RESET,
                                        TriggerReason.RESET_COMMAND)
        log.warning("%s reset requested by the CSMS: %d transaction(s) stopped; restarting",
                    "hard" if hard else "soft", stopped)
        try:
            await asyncio.wait_for(self.outbox.drained(), HARD_RESET_DRAIN if hard else SOFT_RESET_DRAIN)
        except TimeoutError:
            log.warning("restarting with %d message(s) still queued (they are kept on disk)", len(self.outbox))
        if self.on_reset is not None:
            self.on_reset(hard)

    async def data_transfer(self, vendor_id: str, message_id: str | None = None,
                            data: str | None = None) -> tuple[str, str | None]:
        """DataTransfer.req to the CSMS; returns (status, data). Raises ConnectionError when offline."""
        cp = self._cp
        if cp is None:
            raise ConnectionError("not connected to the CSMS")
        result = await cp.call(call.DataTransfer(vendor_id=vendor_id, message_id=message_id, data=data),
                               suppress=False)
        return str(result.status), result.data

    def remote_stop(self, transaction_id: int) -> bool:
        """RemoteStopTransaction.req for a CSMS transaction id."""
        local_id = self.outbox.local_id_for(transaction_id)
        return local_id is not None and self.station.stop_transaction(local_id, StopReason.REMOTE,
                                                                      TriggerReason.REMOTE_STOP)


def _decision(info: IdTagInfo, source: AuthSource) -> AuthDecision:
    group = IdToken(info.parent_id_tag, CSMS_TOKEN) if info.parent_id_tag else None
    return AuthDecision(auth_status(info.status), source, group)
