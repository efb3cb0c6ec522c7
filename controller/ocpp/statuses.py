"""Status reports while online: per EVSE, in order, after the transaction messages they follow.

A status is sent once it has lasted MinimumStatusDuration (a newer one for the same EVSE replaces it). A status
that follows a transaction's end goes out only after every message of that EVSE queued before it has reached
the CSMS: the Available of an unplug never overtakes the StopTransaction of the same unplug (and a status
within a transaction does not wait for a backlog of meter values).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from controller.domain.events import StatusChanged
from controller.domain.types import EvseStatus
from controller.evse.machine import Evse
from controller.ocpp import device_model as dm
from controller.ocpp.device_model import DeviceModel
from controller.ocpp.queue import Queue
from controller.tasks import cancel_and_wait

Send = Callable[[StatusChanged], Awaitable[None]]


def current_status(evse: Evse) -> StatusChanged:
    """An EVSE's status now, with the fault (Faulted) or warning it carries."""
    fault = next(iter(evse.faults), None) if evse.status == EvseStatus.FAULTED else None
    fault = fault or (evse.warnings[0] if evse.warnings else None)
    return StatusChanged(evse.id, evse.status, fault, evse.faults.get(fault) if fault else None)


class StatusReporter:
    """One ordered inbox per EVSE (0 is the station), drained while a connection is online."""

    def __init__(self, model: DeviceModel, queue: Queue, send: Send) -> None:
        self.model = model
        self.queue = queue
        self._send = send
        self._inboxes: dict[int, asyncio.Queue[tuple[StatusChanged, int]]] = {}

    def report(self, event: StatusChanged, *, after_queue: bool) -> None:
        """A status changed (loop thread); ``after_queue``: only after the EVSE's transaction messages queued so far."""
        barrier = self.queue.last_seq(event.evse_id) if after_queue and event.evse_id else 0
        self._inbox(event.evse_id).put_nowait((event, barrier))

    def _inbox(self, evse_id: int) -> asyncio.Queue[tuple[StatusChanged, int]]:
        return self._inboxes.setdefault(evse_id, asyncio.Queue())

    async def run(self, evses: Mapping[int, Any]) -> None:
        """Report until cancelled (the connection dropped); what is left is stale, the next connect re-sends."""
        workers = [asyncio.create_task(self._worker(evse_id), name=f"ocpp-status-{evse_id}")
                   for evse_id in (0, *evses)]
        try:
            await asyncio.gather(*workers)
        finally:
            await cancel_and_wait(workers)
            self._inboxes.clear()

    async def _worker(self, evse_id: int) -> None:
        inbox = self._inbox(evse_id)
        while True:
            event, barrier = await inbox.get()
            minimum = self.model.number(dm.MINIMUM_STATUS_DURATION)
            while minimum > 0:
                try:
                    event, barrier = await asyncio.wait_for(inbox.get(), minimum)  # a newer one: it must last too
                except TimeoutError:
                    break
            if barrier:
                await self.queue.through(barrier)
            await self._send(event)
