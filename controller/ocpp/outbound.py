"""What the station's events make the CSMS hear, and the drain that delivers the transaction queue.

Every transaction message goes into the queue (:mod:`controller.ocpp.queue`) before it is sent, and the drain
sends the queue's head, one message at a time, in order, with the same message id on every attempt. Statuses,
idle clock-aligned samples and reservation ends go out directly while online.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import TYPE_CHECKING

from controller.clock import iso_utc
from controller.domain.events import (
    AuthorizationWithdrawn,
    Authorized,
    ChargingStateChanged,
    Event,
    LimitChanged,
    MeterSample,
    ReservationEnded,
    StatusChanged,
    TransactionEnded,
    TransactionStarted,
    VehicleConnected,
    VehicleDeparted,
)
from controller.domain.types import AuthDecision
from controller.evse.machine import Evse
from controller.ocpp import device_model as dm
from controller.ocpp.adapter import Connection
from controller.ocpp.queue import STOP
from controller.ocpp.rpc import CallFailed
from controller.ocpp.sampling import PERIODIC, MeterValue, meter_value
from controller.storage import StoredMessage

if TYPE_CHECKING:
    from controller.ocpp.client import OcppClient

log = logging.getLogger(__name__)


class Outbound:
    """The client's outgoing side: events to messages, and the queue's delivery."""

    def __init__(self, client: OcppClient) -> None:
        self.client = client

    async def drain(self, conn: Connection) -> None:
        """Send the queue's head until the connection drops: delivered, retried, or given up, then the next."""
        client = self.client
        while True:
            message = await client.queue.head()
            if message.version != client.adapter.version:
                log.error("%s for transaction %s was queued for OCPP %s; this station now speaks %s: dropped",
                          message.action, message.tx_local_id, message.version, client.adapter.version)
                client.queue.give_up(message)
                continue
            # The same message id on every attempt, across restarts: a CSMS can recognise a retry.
            message_id = message.message_id or str(uuid.uuid4())
            if message.message_id is None:
                client.store.mark_sending(message.seq, message_id)
            try:
                result = await conn.request(message.action, client.adapter.queued(message), unique_id=message_id)
            except CallFailed as exc:
                await self._failed_attempt(message, exc)
                continue
            csms_id, token, decision = client.adapter.queued_answer(message, result)
            client.queue.delivered(message, csms_id)
            if decision is not None and token is not None:
                client.auth.remember(token, decision)
            if decision is not None and message.role != STOP:
                self._decided(message.tx_local_id, csms_id, decision)

    async def _failed_attempt(self, message: StoredMessage, exc: CallFailed) -> None:
        client = self.client
        attempts = client.store.count_attempt(message.seq)
        if attempts >= client.model.number(dm.MESSAGE_ATTEMPTS) or exc.final:
            log.error("%s for transaction %s given up after %d attempt(s): %s", message.action, message.tx_local_id,
                      attempts, exc)
            client.queue.give_up(message)
            return
        wait = client.model.number(dm.MESSAGE_ATTEMPT_INTERVAL) * attempts
        log.warning("%s; attempt %d in %d s", exc, attempts + 1, wait)
        await asyncio.sleep(wait)

    def _decided(self, local_id: str, csms_id: int | None, decision: AuthDecision) -> None:
        """The CSMS's word on a transaction's identifier (with the start's confirmation, or with the event that
        first carried the identifier: 2.0.1 TxStartPoint EVConnected)."""
        if csms_id is not None:
            log.info("CSMS confirmed transaction %s as id %d (%s)", local_id, csms_id, decision.status.value)
        if not decision.accepted:
            model = self.client.model
            self.client.station.deauthorize(local_id, stop=model.flag(dm.STOP_TX_ON_INVALID_ID),
                                            max_energy_wh=model.number(dm.MAX_ENERGY_ON_INVALID_ID))

    def on_event(self, event: Event) -> None:
        """A station event: a status to report, or a transaction message to queue."""
        client, queue, adapter = self.client, self.client.queue, self.client.adapter
        if isinstance(event, StatusChanged):
            if client.connection is not None:  # otherwise sent with every other status after the next connect
                evse = client.station.evses.get(event.evse_id)
                # A status that follows a transaction's end waits for that transaction's queued messages.
                client.statuses.report(event, after_queue=evse is not None and evse.transaction is None)
        elif isinstance(event, TransactionStarted):
            queue.put(adapter.start(event.transaction))
            client.sampler.started(event.transaction)
        elif isinstance(event, TransactionEnded):
            queue.put(adapter.stop(event.transaction, client.sampler.ended(event.transaction)))
        elif isinstance(event, (VehicleConnected, VehicleDeparted, Authorized, AuthorizationWithdrawn)):
            for edge in adapter.around(event):
                queue.put(edge)
        elif isinstance(event, (ChargingStateChanged, LimitChanged)):
            # 2.0.1 tells both in a TransactionEvent of the running transaction; 1.6 has no such message.
            name = "charging_state" if isinstance(event, ChargingStateChanged) else "rate_changed"
            changed = getattr(adapter, name, None)
            evse = client.station.evses[event.evse_id]
            message = changed(event) if changed is not None else None
            if message is not None and evse.transaction is not None:
                action, payload = message
                reading = evse.reading
                queue.updated(evse.transaction.local_id, action, payload,
                              round(reading.energy_wh) if reading else evse.transaction.meter_start_wh,
                              iso_utc(client.clock.utcnow()))
        elif isinstance(event, ReservationEnded):
            ended = getattr(adapter, "reservation_ended", None)  # 2.0.1 reports it; 1.6 does not
            if ended is not None and client.connection is not None:
                client.spawn(client.send(ended(event)))
        elif isinstance(event, MeterSample):
            evse = client.station.evses[event.evse_id]
            value = meter_value(event.reading, event.at, evse.phases, client.model.items(dm.TX_UPDATED_MEASURANDS),
                                PERIODIC)
            action, payload = adapter.sample(evse.id, value)
            queue.updated(event.transaction.local_id, action, payload, round(event.reading.energy_wh),
                          iso_utc(event.at))

    def aligned_sample(self, evse: Evse, value: MeterValue) -> None:
        """A clock-aligned sample: queued with a running transaction, else sent as an idle sample while online."""
        client = self.client
        tx = evse.transaction
        if tx is not None:
            # Part of the transaction: through the queue, in order, with its transactionId.
            action, payload = client.adapter.sample(evse.id, value)
            assert evse.reading is not None
            client.queue.updated(tx.local_id, action, payload, round(evse.reading.energy_wh), iso_utc(value.at))
        elif value.samples and client.connection is not None:
            client.spawn(client.send(client.adapter.idle_sample(evse.id, value)))
