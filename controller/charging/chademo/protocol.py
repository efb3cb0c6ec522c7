"""CHAdeMO on a DC outlet: the sequence driven from the CAN bus and the connector's sequence lines.

The shared DC machinery (power stage, IMD, bleed, lock, contactors through the supervisor, faults)
is :class:`~controller.charging.dcoutlet.DcOutlet`'s; CHAdeMO adds its lines: d1 and d2 out, k and
the connector-present line in. k is the supervisor's ``ev_permission`` condition, graceful like the
``link``: losing it starts the stop grace while the sequence brings the current to 5 A in 0.5 s.
"""

from __future__ import annotations

from typing import Any

from controller.charging.chademo.model import COMM_TIMEOUT, Inputs, Outputs
from controller.charging.chademo.sequence import ChademoSequence
from controller.charging.dcoutlet import DcOutlet
from hal.can import Frame
from hal.dc_io import ChademoLines
from hal.dc_power import PowerReading

EV_PERMISSION = "ev_permission"


class Chademo(DcOutlet):
    """One CHAdeMO outlet."""

    name = "CHAdeMO"

    def __init__(self, evse_id: int, *, lines: ChademoLines, **outlet: Any) -> None:
        super().__init__(evse_id, **outlet)
        self.lines = lines
        self.sequence = ChademoSequence(self.power.capabilities)
        self.supervisor.require(evse_id, EV_PERMISSION, graceful=True)

    def start(self) -> None:
        """Also hear k and the connector line from gpiozero's thread."""
        self.lines.on_change = self._line_changed
        super().start()

    def _line_changed(self, _name: str, _value: bool) -> None:
        self._to_loop(self.edge)  # gpiozero's thread: the sequence runs on the loop

    def edge(self) -> None:
        self.supervisor.set_condition(self.id, EV_PERMISSION, self.lines.k)
        super().edge()

    # ---------------------------------------------------------------- DcOutlet

    def plugged(self) -> bool:
        return self.lines.plugged

    def inputs(self, now: float, reading: PowerReading) -> Inputs:
        out: Outputs | None = self.out
        return Inputs(now=now, k=self.lines.k, plugged=self.connected,
                      locked=self.lock.locked if self.lock is not None else bool(out and out.lock),
                      contactors_closed=self.supervisor.closed(self.id), outlet_voltage=self.outlet_voltage(),
                      output_current=reading.current, insulation_ohms=self.insulation_ohms)

    def apply_lines(self, out: Outputs) -> None:
        self.lines.set(d1=out.d1, d2=out.d2)

    def safe_lines(self) -> None:
        self.lines.set(d1=False, d2=False)

    def on_frame(self, frame: Frame) -> None:
        self.sequence.on_frame(frame, frame.at or self.clock.monotonic())

    def link_fresh(self, now: float) -> bool:
        return self.sequence.ev is not None and now - self.sequence.last_ev_frame <= COMM_TIMEOUT

    def maximum_voltage(self) -> float | None:
        return float(self.sequence.threshold) or None

    def soc(self) -> float | None:
        ev = self.sequence.ev
        return float(ev.charged_rate) if ev is not None and self.connected else None

    @property
    def next_due(self) -> float:
        return self.sequence.next_frame_at
