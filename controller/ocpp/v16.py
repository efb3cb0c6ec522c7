"""OCPP 1.6J client: connection, boot, heartbeat, statuses, transactions, remote start/stop.

The ``ocpp`` package routes and validates messages; reconnecting, the boot
sequence, heartbeats and the ordered transaction outbox are ours. Incoming
CALLs are handled inside the library's receive loop, so handlers only hand
work to the station and never await a CALL of their own (that would deadlock
the loop; see shared/reference/ocpp.md section 3).
"""

from __future__ import annotations

import asyncio
import logging
import random
import uuid
from typing import Any

import websockets
from ocpp.exceptions import OCPPError
from ocpp.routing import on
from ocpp.v16 import ChargePoint, call, call_result
from ocpp.v16.enums import (
    Action,
    AuthorizationStatus,
    Measurand,
    Phase,
    ReadingContext,
    RegistrationStatus,
    RemoteStartStopStatus,
    UnitOfMeasure,
)
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI
from websockets.typing import Subprotocol

from controller.clock import Clock, iso_utc
from controller.config import Config
from controller.connector import Connector
from controller.events import (
    ConnectorStatus,
    Event,
    MeterSample,
    StatusChanged,
    StopReason,
    Transaction,
    TransactionEnded,
    TransactionStarted,
)
from controller.ocpp.outbox import Outbox
from controller.station import AuthResult, Station
from controller.storage import Store, StoredTransaction
from hal.meter import MeterReading

log = logging.getLogger(__name__)
# Every frame, both ways (the ocpp package logs them at INFO); quiet unless debugging.
frame_log = logging.getLogger("controller.ocpp.frames")

SUBPROTOCOL = Subprotocol("ocpp1.6")
# Until the CSMS tells us otherwise (BootNotification.conf interval).
DEFAULT_RETRY_INTERVAL = 10.0
TRANSACTION_MESSAGE_ATTEMPTS = 3
TRANSACTION_MESSAGE_RETRY_INTERVAL = 10.0


class _StationChargePoint(ChargePoint):
    """The CSMS -> station handlers of one connection."""

    def __init__(self, cp_id: str, connection: Any, client: Ocpp16Client, response_timeout: float) -> None:
        super().__init__(cp_id, connection, response_timeout=response_timeout, logger=frame_log)
        self._client = client

    @on(Action.remote_start_transaction)
    def on_remote_start(self, id_tag: str, connector_id: int | None = None, **_: Any) -> Any:
        accepted = self._client.remote_start(id_tag, connector_id)
        status = RemoteStartStopStatus.accepted if accepted else RemoteStartStopStatus.rejected
        return call_result.RemoteStartTransaction(status=status)

    @on(Action.remote_stop_transaction)
    def on_remote_stop(self, transaction_id: int, **_: Any) -> Any:
        accepted = self._client.remote_stop(transaction_id)
        status = RemoteStartStopStatus.accepted if accepted else RemoteStartStopStatus.rejected
        return call_result.RemoteStopTransaction(status=status)


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
        self.outbox = Outbox(store)
        self.heartbeat_interval = float(config.ocpp.heartbeat_interval)
        self.sample_interval = float(config.ocpp.meter_value_sample_interval)
        self.booted = False
        self.connected = asyncio.Event()
        self._cp: _StationChargePoint | None = None
        self._samplers: dict[str, asyncio.Task[None]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        station.subscribe(self._on_event)
        station.authorizer = self

    # ------------------------------------------------------------ connection

    async def run(self) -> None:
        """Connect, boot and serve until cancelled, reconnecting with back-off and jitter."""
        delay = self.config.ocpp.reconnect_min
        while True:
            try:
                async with websockets.connect(
                    self.url,
                    subprotocols=[SUBPROTOCOL],
                    open_timeout=self.config.ocpp.connect_timeout,
                    ping_interval=None,  # OCPP heartbeats and the outbox notice a dead link
                ) as ws:
                    if ws.subprotocol != SUBPROTOCOL:
                        log.error("CSMS at %s did not agree to subprotocol %s; closing", self.url, SUBPROTOCOL)
                        await ws.close()
                    else:
                        log.info("connected to CSMS at %s", self.url)
                        delay = self.config.ocpp.reconnect_min
                        await self._serve(ws)
                        log.warning("connection to CSMS at %s closed", self.url)
            except asyncio.CancelledError:
                raise
            except (OSError, TimeoutError, InvalidHandshake, InvalidURI, ConnectionClosed) as exc:
                log.warning("CSMS at %s unreachable: %s", self.url, exc or type(exc).__name__)
            wait = delay * random.uniform(0.8, 1.2)
            log.info("reconnecting to CSMS in %.1f s", wait)
            await asyncio.sleep(wait)
            delay = min(delay * 2, self.config.ocpp.reconnect_max)

    async def _serve(self, ws: Any) -> None:
        cp = _StationChargePoint(self.cp_id, ws, self, self.config.ocpp.response_timeout)
        reader = asyncio.create_task(cp.start(), name="ocpp-reader")
        workers: list[asyncio.Task[Any]] = []
        try:
            workers.append(asyncio.create_task(self._online(cp), name="ocpp-online"))
            done, _ = await asyncio.wait([reader, *workers], return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                if not task.cancelled() and task.exception() is not None:
                    exc = task.exception()
                    if not isinstance(exc, ConnectionClosed):
                        log.error("OCPP task %s failed: %r", task.get_name(), exc)
        finally:
            self._cp = None
            self.connected.clear()
            for task in [reader, *workers]:
                task.cancel()
            await asyncio.gather(reader, *workers, return_exceptions=True)

    async def _online(self, cp: _StationChargePoint) -> None:
        if not self.booted:
            await self._boot(cp)
        self._cp = cp
        self.connected.set()
        # After every (re)connect the CSMS gets the current status of the station and each connector.
        await self._send_status(cp, StatusChanged(0, self._station_status()))
        for connector in self.station.connectors.values():
            await self._send_status(cp, StatusChanged(connector.id, connector.status))
        await asyncio.gather(self._heartbeat(cp), self._drain_outbox(cp))

    async def _boot(self, cp: _StationChargePoint) -> None:
        station = self.config.station
        while True:
            request = call.BootNotification(
                charge_point_vendor=station.vendor,
                charge_point_model=station.model,
                charge_point_serial_number=station.serial_number or None,
            )
            try:
                result = await cp.call(request, suppress=False)
            except OCPPError as exc:
                log.warning("BootNotification refused with %s; retrying in %.0f s", exc, DEFAULT_RETRY_INTERVAL)
                await asyncio.sleep(DEFAULT_RETRY_INTERVAL)
                continue
            interval = float(result.interval) if result.interval > 0 else DEFAULT_RETRY_INTERVAL
            if result.status == RegistrationStatus.accepted:
                self.heartbeat_interval = interval
                self.booted = True
                log.info("BootNotification accepted; heartbeat every %.0f s", interval)
                return
            log.warning("BootNotification %s; trying again in %.0f s", result.status, interval)
            await asyncio.sleep(interval)

    async def _heartbeat(self, cp: _StationChargePoint) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_interval)
            await cp.call(call.Heartbeat())

    def _station_status(self) -> ConnectorStatus:
        # Station-wide availability and faults arrive with issues 3 and 4.
        return ConnectorStatus.AVAILABLE

    async def _send_status(self, cp: _StationChargePoint, event: StatusChanged) -> None:
        await cp.call(
            call.StatusNotification(
                connector_id=event.connector_id,
                error_code=event.error_code,
                status=event.status.value,
                info=event.info,
                timestamp=iso_utc(self.clock.utcnow()),
            )
        )

    # ----------------------------------------------------- transaction outbox

    async def _drain_outbox(self, cp: _StationChargePoint) -> None:
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
                attempts = self.outbox.store.count_attempt(message.seq)
                if attempts >= TRANSACTION_MESSAGE_ATTEMPTS:
                    log.error("%s for transaction %s given up after %d attempts: %r",
                              message.action, message.tx_local_id, attempts, exc)
                    self.outbox.give_up(message)
                else:
                    wait = TRANSACTION_MESSAGE_RETRY_INTERVAL * attempts
                    log.warning("%s failed (%r); attempt %d in %.0f s", message.action, exc, attempts + 1, wait)
                    await asyncio.sleep(wait)
                continue
            if message.action == "StartTransaction":
                self.outbox.delivered(message, int(result.transaction_id))
                log.info("CSMS gave transaction %s id %d (%s)", message.tx_local_id, result.transaction_id,
                         result.id_tag_info.get("status"))
            else:
                self.outbox.delivered(message)

    # ---------------------------------------------------------------- events

    def _on_event(self, event: Event) -> None:
        if isinstance(event, StatusChanged):
            if self._cp is not None:
                self._spawn(self._send_status(self._cp, event))
        elif isinstance(event, TransactionStarted):
            tx = event.transaction
            started = iso_utc(tx.started_at)
            self.outbox.transaction_started(
                StoredTransaction(tx.local_id, tx.connector_id, tx.id_tag, tx.meter_start_wh, started, None, False,
                                  tx.meter_start_wh, started, True),
                {"connector_id": tx.connector_id, "id_tag": tx.id_tag, "meter_start": tx.meter_start_wh,
                 "timestamp": started},
            )
            if self.sample_interval > 0:
                sampling = self._sample(self.station.connectors[tx.connector_id], tx)
                self._samplers[tx.local_id] = asyncio.get_running_loop().create_task(sampling)
        elif isinstance(event, TransactionEnded):
            tx = event.transaction
            sampler = self._samplers.pop(tx.local_id, None)
            if sampler is not None:
                sampler.cancel()
            assert tx.stopped_at is not None and tx.stop_reason is not None
            stop = {"meter_stop": tx.meter_stop_wh, "timestamp": iso_utc(tx.stopped_at),
                    "reason": tx.stop_reason.value}
            if tx.stop_id_tag is not None:
                stop["id_tag"] = tx.stop_id_tag
            self.outbox.transaction_ended(tx.local_id, stop)
        elif isinstance(event, MeterSample):
            at = iso_utc(event.at)
            payload = {
                "connector_id": event.connector_id,
                "meter_value": [meter_value(event.reading, at, self.station.connectors[event.connector_id].phases)],
            }
            self.outbox.meter_sample(event.transaction.local_id, payload, round(event.reading.energy_wh), at)

    async def _sample(self, connector: Connector, tx: Transaction) -> None:
        # Cancelled when the transaction ends (TransactionEnded).
        while True:
            await asyncio.sleep(self.sample_interval)
            if connector.reading is not None:
                self.station.emit(MeterSample(connector.id, tx, connector.reading, self.clock.utcnow()))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("OCPP send failed: %r", task.exception())

    # ------------------------------------------------------ station commands

    async def authorize(self, id_tag: str) -> AuthResult:
        """Authorize.req to the CSMS; offline is a rejection until issue-3 local authorisation lands."""
        cp = self._cp
        if cp is None:
            return AuthResult(False, "Offline")
        result = await cp.call(call.Authorize(id_tag=id_tag), suppress=False)
        status = result.id_tag_info.get("status", "Invalid")
        return AuthResult(status == AuthorizationStatus.accepted, status)

    def remote_start(self, id_tag: str, connector_id: int | None) -> bool:
        """RemoteStartTransaction.req: authorise without asking the CSMS again."""
        return self.station.remote_start(id_tag, connector_id)

    def remote_stop(self, transaction_id: int) -> bool:
        """RemoteStopTransaction.req for a CSMS transaction id."""
        local_id = self.outbox.local_id_for(transaction_id)
        return local_id is not None and self.station.stop_transaction(local_id, StopReason.REMOTE)


def meter_value(reading: MeterReading, timestamp: str, phases: int) -> dict[str, Any]:
    """A MeterValue with the measurands the skeleton reports (snake_case keys)."""
    ctx = ReadingContext.sample_periodic
    values: list[dict[str, Any]] = [
        {"value": f"{reading.energy_wh:.0f}", "context": ctx, "measurand": Measurand.energy_active_import_register,
         "unit": UnitOfMeasure.wh},
    ]
    if reading.power_w is not None:
        values.append({"value": f"{reading.power_w:.1f}", "context": ctx,
                       "measurand": Measurand.power_active_import, "unit": UnitOfMeasure.w})
    phase_names = [(Phase.l1, Phase.l1_n), (Phase.l2, Phase.l2_n), (Phase.l3, Phase.l3_n)][:phases]
    for i, (phase, phase_n) in enumerate(phase_names):
        amps, volts = reading.current[i], reading.voltage[i]
        if amps is not None:
            values.append({"value": f"{amps:.2f}", "context": ctx, "measurand": Measurand.current_import,
                           "phase": phase, "unit": UnitOfMeasure.a})
        if volts is not None:
            values.append({"value": f"{volts:.1f}", "context": ctx, "measurand": Measurand.voltage,
                           "phase": phase_n, "unit": UnitOfMeasure.v})
    return {"timestamp": timestamp, "sampled_value": values}
