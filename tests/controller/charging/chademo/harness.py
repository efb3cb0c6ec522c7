"""The CHAdeMO sequence and the bench's CHAdeMO EV on one simulated DC circuit, in fake time (10 ms steps)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from controller.charging.chademo.frames import CHARGER_LIMITS, CHARGER_STATUS, signals
from controller.charging.chademo.model import Inputs, Outputs, Phase
from controller.charging.chademo.sequence import ChademoSequence
from hal.can import Frame
from hal.dc_power import PowerCapabilities
from hil.chademo_ev import ChademoEv, EvSpec
from hil.dccircuit import DcCircuit
from tests.controller.charging.fake_time import FakeTimeHarness

STEP = 0.01
CAPS = PowerCapabilities(min_voltage=50, max_voltage=500, max_current=125, max_power=50_000)


@dataclass
class Sample:
    """What the bench saw at one step."""

    t: float
    phase: Phase
    outlet: float
    stage: float
    current: float
    out: Outputs
    ev_contactor: bool
    k: bool


@dataclass
class Harness(FakeTimeHarness):
    spec: EvSpec = field(default_factory=EvSpec)
    caps: PowerCapabilities = CAPS
    offer: float = 125.0
    ev_talks: bool = True

    def __post_init__(self) -> None:
        self.step_s = STEP
        self.circuit = DcCircuit()
        self.ev = ChademoEv(self.spec, self.circuit)
        self.seq = ChademoSequence(self.caps)
        self.now = 0.0
        self.out = Outputs()
        self.plugged = True
        self.contactors = False
        self.circuit.contactors_closed = lambda: self.contactors
        self.circuit.bleed_on = lambda: self.out.bleed
        self._test_since: float | None = None
        self.samples: list[Sample] = []
        self.ev_frames: list[tuple[float, Frame]] = []
        self.charger_frames: list[tuple[float, Frame]] = []
        self.test_voltages: list[float] = []

    def start(self) -> None:
        self.seq.start(self.now, self.offer)

    def step(self) -> None:
        self.now = round(self.now + STEP, 6)
        self.circuit.step(STEP)
        frames = self.ev.tick(self.now, self.out.d1, self.out.d2) if self.ev_talks else []
        for frame in frames:
            self.ev_frames.append((self.now, frame))
            self.seq.on_frame(frame, self.now)
        io = Inputs(now=self.now, k=self.ev.k, plugged=self.plugged, locked=self.out.lock,
                    contactors_closed=self.contactors, outlet_voltage=self.circuit.outlet_voltage,
                    output_current=self.circuit.current, insulation_ohms=self.imd_reading())
        self.out = self.seq.tick(io)
        for frame in self.out.frames:
            self.charger_frames.append((self.now, frame))
            self.ev.on_frame(frame)
        self.contactors = self.out.contactors
        power = self.out.power
        self.circuit.command(on=power is not None, voltage=power[0] if power else None,
                             current=power[1] if power else None)
        self.samples.append(Sample(self.now, self.seq.phase, self.circuit.outlet_voltage,
                                   self.circuit.stage_voltage, self.circuit.current, self.out,
                                   self.circuit.ev_contactor_closed, self.ev.k))

    # ------------------------------------------------------------- what the EV saw

    def charger_status(self, at: float | None = None) -> dict[str, Any]:
        frames = [(t, f) for t, f in self.charger_frames if f.id == CHARGER_STATUS and (at is None or t <= at)]
        return signals(frames[-1][1])

    def charger_limits(self) -> dict[str, Any]:
        frames = [f for _, f in self.charger_frames if f.id == CHARGER_LIMITS]
        return signals(frames[-1])
