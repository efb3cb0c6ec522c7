"""Meter polling: one loop per EVSE that reads its meter, hands each reading on, and notices a lost meter.

A read never blocks the loop (the drivers are async). A meter silent for ``meter.loss_timeout`` is lost: with
the policy ``stop`` that is a fault (the session ends), with ``continue`` charging goes on and every status
carries the fault as a warning until the meter answers again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from controller.clock import Clock
from controller.config import MeterSection
from controller.domain.faults import Fault
from controller.evse.machine import Evse
from controller.safety.supervisor import SafetySupervisor
from hal.errors import HalError
from hal.meter import EnergyMeter, MeterReading

log = logging.getLogger(__name__)

ReadingListener = Callable[[Evse, MeterReading], None]


class MeterPoller:
    """Polls one EVSE's meter every ``poll_interval`` and tells the EVSE and every listener."""

    def __init__(self, evse: Evse, meter: EnergyMeter, settings: MeterSection, supervisor: SafetySupervisor,
                 clock: Clock, annotate: Callable[[MeterReading], MeterReading] | None = None) -> None:
        self.evse = evse
        #: Adds what the charging protocol knows to each reading (a DC car's SoC, the power offered).
        self.annotate = annotate
        self.meter = meter
        self.settings = settings
        self.supervisor = supervisor
        self.clock = clock
        self.listeners: list[ReadingListener] = []
        self.failing = False
        self.lost = False

    async def run(self) -> None:
        """Poll until cancelled."""
        cid, interval = self.evse.id, self.settings.poll_interval
        last_ok = self.clock.monotonic()
        while True:
            try:
                reading = await self.meter.read()
            except (HalError, OSError) as exc:
                if not self.failing:
                    log.warning("connector %d: meter read failed (%s); retrying every %.1f s", cid, exc, interval)
                    self.failing = True
                if not self.lost and self.clock.monotonic() - last_ok >= self.settings.loss_timeout:
                    self._lost(True)
            else:
                last_ok = self.clock.monotonic()
                if self.failing:
                    log.info("connector %d: meter answers again", cid)
                    self.failing = False
                if self.lost:
                    self._lost(False)
                if self.annotate is not None:
                    reading = self.annotate(reading)
                self.evse.on_meter(reading)
                for listener in list(self.listeners):
                    listener(self.evse, reading)
            await asyncio.sleep(interval)

    def _lost(self, lost: bool) -> None:
        self.lost = lost
        cid = self.evse.id
        if self.settings.loss_policy == "stop":
            if lost:
                self.supervisor.raise_fault(cid, Fault.METER_COMM_LOST)
            else:
                self.supervisor.clear_fault(cid, Fault.METER_COMM_LOST)
            return
        log.warning("connector %d: meter %s; charging continues (policy continue)", cid, "lost" if lost else "back")
        self.evse.flag(Fault.METER_COMM_LOST, lost)
