"""GB/T 27930 on a DC outlet: the sequence driven from the CAN bus, its J1939 transport, CC1 and auxiliary power.

The shared DC machinery is :class:`~controller.charging.dcoutlet.DcOutlet`'s. GB/T adds the transport
receiver for the BMS's long messages (BRM, BCP, BCS), CC1 as the connection (3.2-4.8 V, read every
control step: its loss cuts the current within 50 ms) and the auxiliary 12 V supply. The ``link``
condition is BCL's freshness while charging (1 s).
"""

from __future__ import annotations

from typing import Any

from controller.charging.dcoutlet import DcOutlet
from controller.charging.gbt.frames import CHARGER
from controller.charging.gbt.model import BCL_TIMEOUT, BLED_VOLTAGE, Inputs, Outputs, Phase
from controller.charging.gbt.sequence import GbtSequence
from controller.charging.j1939 import Message, TransportReceiver
from hal.can import Frame
from hal.dc_io import GbtLines
from hal.dc_power import PowerReading


class Gbt(DcOutlet):
    """One GB/T outlet."""

    name = "GB/T"
    unlock_below = BLED_VOLTAGE

    def __init__(self, evse_id: int, *, lines: GbtLines, charger_number: int = 1, **outlet: Any) -> None:
        super().__init__(evse_id, **outlet)
        self.lines = lines
        self.sequence = GbtSequence(self.power.capabilities, charger_number=charger_number)
        self.transport = TransportReceiver(CHARGER, send=self.bus.send, deliver=self._message,
                                           clock=self.clock.monotonic)

    def _message(self, message: Message) -> None:
        self.sequence.on_message(message)

    # ---------------------------------------------------------------- DcOutlet

    def plugged(self) -> bool:
        return self.lines.connected

    def poll(self, now: float) -> None:
        self.transport.poll()

    def inputs(self, now: float, reading: PowerReading) -> Inputs:
        out: Outputs | None = self.out
        return Inputs(now=now, connected=self.connected,
                      locked=self.lock.locked if self.lock is not None else bool(out and out.lock),
                      contactors_closed=self.supervisor.closed(self.id), outlet_voltage=self.outlet_voltage(),
                      stage_voltage=reading.voltage, output_current=reading.current,
                      insulation_ohms=self.insulation_ohms)

    def apply_lines(self, out: Outputs) -> None:
        self.lines.set_aux(out.aux)

    def safe_lines(self) -> None:
        self.lines.set_aux(False)

    def on_frame(self, frame: Frame) -> None:
        if not self.transport.on_frame(frame):
            self.sequence.on_frame(frame, frame.at or self.clock.monotonic())

    def link_fresh(self, now: float) -> bool:
        if self.sequence.phase != Phase.CHARGING:
            return True  # before and after charging the sequence's own timeouts hold
        return now - self.sequence.last_seen("BCL") <= BCL_TIMEOUT

    def maximum_voltage(self) -> float | None:
        return self.sequence.bcp.max_voltage if self.sequence.bcp is not None else None

    def soc(self) -> float | None:
        seq = self.sequence  # BCS while charging; BCP's before it
        if not self.connected:
            return None
        return float(seq.bcs.soc) if seq.bcs is not None else seq.bcp.soc if seq.bcp is not None else None

    @property
    def next_due(self) -> float:
        return self.sequence.next_due
