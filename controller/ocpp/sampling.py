"""Meter values: what a reading says, per measurand and phase, and when the CSMS gets one.

A sample is neutral (measurand, phase, value, unit, how many decimals it is worth); each version's adapter
spells it (1.6 sends the value as text, 2.0.1 as a number). Measurand lists come from the device model: a name
means every phase the EVSE has, ``Current.Import.L2`` only that phase. :class:`Sampler` runs the clocks:
``TxUpdatedInterval`` per transaction (periodic), ``AlignedDataCtrlr.Interval`` since midnight UTC for every EVSE
(clock-aligned, stamped with the boundary it belongs to), and keeps what a transaction's end must carry.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from controller.clock import Clock
from controller.domain.events import MeterSample, Transaction
from controller.evse.machine import Evse
from controller.ocpp import device_model as dm
from controller.ocpp.device_model import DeviceModel
from controller.station import Station
from controller.tasks import cancel_and_wait
from hal.meter import MeterReading

_PHASES = ("L1", "L2", "L3")
PERIODIC, CLOCK, BEGIN, END, TRIGGER = "Sample.Periodic", "Sample.Clock", "Transaction.Begin", "Transaction.End", \
    "Trigger"


@dataclass(frozen=True)
class Sample:
    """One sampled value."""

    measurand: str
    value: float
    unit: str
    context: str
    phase: str | None = None
    decimals: int = 0
    #: Where it was measured, when not at the outlet (the car's SoC: "EV").
    location: str | None = None


@dataclass(frozen=True)
class MeterValue:
    """Samples taken at one moment."""

    at: datetime
    samples: list[Sample]


def _wanted(measurands: list[str]) -> dict[str, set[str] | None]:
    """measurand -> phases asked for (None: all the EVSE has)."""
    wanted: dict[str, set[str] | None] = {}
    for item in measurands:
        name, dot, phase = item.rpartition(".L")
        if dot and phase in ("1", "2", "3", "1-N", "2-N", "3-N"):
            current = wanted.get(name, set())
            if current is not None:
                current.add("L" + phase.removesuffix("-N"))
                wanted[name] = current
        else:
            wanted[item] = None
    return wanted


def meter_value(reading: MeterReading, at: datetime, phases: int, measurands: list[str], context: str) -> MeterValue:
    """What ``reading`` says about ``measurands``; ``phases`` 0 is a DC outlet (one unphased voltage and current)."""
    wanted = _wanted(measurands)
    samples: list[Sample] = []
    if "Energy.Active.Import.Register" in wanted:
        samples.append(Sample("Energy.Active.Import.Register", reading.energy_wh, "Wh", context))
    if "Power.Active.Import" in wanted and reading.power_w is not None:
        samples.append(Sample("Power.Active.Import", reading.power_w, "W", context, decimals=1))
    if "Power.Offered" in wanted and reading.offered_w is not None:
        samples.append(Sample("Power.Offered", reading.offered_w, "W", context, decimals=1))
    if "SoC" in wanted and reading.soc is not None:
        samples.append(Sample("SoC", reading.soc, "Percent", context, location="EV"))
    if phases == 0:
        if "Current.Import" in wanted and reading.current[0] is not None:
            samples.append(Sample("Current.Import", reading.current[0], "A", context, decimals=2))
        if "Voltage" in wanted and reading.voltage[0] is not None:
            samples.append(Sample("Voltage", reading.voltage[0], "V", context, decimals=1))
    for i, phase in enumerate(_PHASES[:phases]):
        amps_phases, volt_phases = wanted.get("Current.Import", set()), wanted.get("Voltage", set())
        amps, volts = reading.current[i], reading.voltage[i]
        if "Current.Import" in wanted and (amps_phases is None or phase in amps_phases) and amps is not None:
            samples.append(Sample("Current.Import", amps, "A", context, phase, 2))
        if "Voltage" in wanted and (volt_phases is None or phase in volt_phases) and volts is not None:
            samples.append(Sample("Voltage", volts, "V", context, f"{phase}-N", 1))
    return MeterValue(at, samples)


class Sampler:
    """The periodic and clock-aligned sample clocks, and the clock-aligned values a transaction's end carries."""

    def __init__(self, station: Station, model: DeviceModel, clock: Clock,
                 aligned: Callable[[Evse, MeterValue], None]) -> None:
        self.station = station
        self.model = model
        self.clock = clock
        self._aligned = aligned
        self._periodic: dict[str, list[asyncio.Task[None]]] = {}
        #: What each running transaction's end carries between its first and last reading: TxEndedMeasurands
        #: every SampledDataCtrlr.TxEndedInterval, AlignedDataCtrlr.TxEndedMeasurands at its TxEndedInterval.
        self.for_end: dict[str, list[MeterValue]] = {}

    def started(self, tx: Transaction) -> None:
        """A transaction began: sample it every TxUpdatedInterval (and TxEndedInterval for its end)."""
        self.for_end[tx.local_id] = []
        evse = self.station.evses[tx.evse_id]
        loop = asyncio.get_running_loop()
        self._periodic[tx.local_id] = [loop.create_task(self._sample(evse, tx)),
                                       loop.create_task(self._sample_for_end(evse, tx))]

    def ended(self, tx: Transaction) -> list[MeterValue]:
        """A transaction ended: stop its clocks; returns the values its end carries, in the order taken."""
        for task in self._periodic.pop(tx.local_id, []):
            task.cancel()
        return self.for_end.pop(tx.local_id, [])

    async def close(self) -> None:
        """Stop every clock."""
        await cancel_and_wait([t for tasks in self._periodic.values() for t in tasks])
        self._periodic.clear()

    async def _sample(self, evse: Evse, tx: Transaction) -> None:
        # Cancelled when the transaction ends; the interval is read afresh each time.
        while True:
            interval = self.model.number(dm.TX_UPDATED_INTERVAL)
            await asyncio.sleep(interval if interval > 0 else 1.0)
            if interval > 0 and evse.reading is not None:
                self.station.emit(MeterSample(evse.id, tx, evse.reading, self.clock.utcnow()))

    async def _sample_for_end(self, evse: Evse, tx: Transaction) -> None:
        while True:
            interval = self.model.number(dm.TX_ENDED_INTERVAL)
            await asyncio.sleep(interval if interval > 0 else 1.0)
            wanted = self.model.items(dm.TX_ENDED_MEASURANDS)
            if interval > 0 and wanted and evse.reading is not None and tx.local_id in self.for_end:
                self.for_end[tx.local_id].append(meter_value(evse.reading, self.clock.utcnow(), evse.phases,
                                                             wanted, PERIODIC))

    async def run_aligned(self) -> None:
        """Clock-aligned values at every multiple of AlignedDataCtrlr.Interval since midnight UTC, and those for
        a transaction's end at every multiple of its TxEndedInterval."""
        while True:
            every, for_end = self.model.number(dm.ALIGNED_INTERVAL), self.model.number(dm.ALIGNED_TX_ENDED_INTERVAL)
            if every <= 0 and for_end <= 0:
                await asyncio.sleep(1.0)
                continue
            now = self.clock.utcnow()
            midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
            since = (now - midnight).total_seconds()
            # Whole seconds since midnight: the next multiple of either interval.
            due = min(int(since // i + 1) * i for i in (every, for_end) if i > 0)
            boundary = midnight + timedelta(seconds=due)
            await asyncio.sleep((boundary - now).total_seconds())
            for evse in self.station.evses.values():
                if evse.reading is None:
                    continue
                # Stamped with the boundary the sample belongs to, however late the loop woke up for it.
                if every > 0 and due % every == 0:
                    self._aligned(evse, meter_value(evse.reading, boundary, evse.phases,
                                                    self.model.items(dm.ALIGNED_MEASURANDS), CLOCK))
                tx, wanted = evse.transaction, self.model.items(dm.ALIGNED_TX_ENDED_MEASURANDS)
                if for_end > 0 and due % for_end == 0 and tx is not None and wanted and tx.local_id in self.for_end:
                    self.for_end[tx.local_id].append(meter_value(evse.reading, boundary, evse.phases, wanted, CLOCK))
