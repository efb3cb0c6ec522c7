"""The GB/T sequence and the bench's BMS on one simulated DC circuit, in fake time (5 ms steps)."""

from __future__ import annotations

from dataclasses import dataclass, field

from controller.charging.gbt.model import Inputs, Outputs, Phase
from controller.charging.gbt.sequence import GbtSequence
from controller.charging.j1939 import Message
from hal.can import Frame
from hal.dc_power import PowerCapabilities
from hil.dccircuit import DcCircuit
from hil.gbt_bms import BmsSpec, GbtBms
from tests.controller.charging.fake_time import FakeTimeHarness

STEP = 0.005
CAPS = PowerCapabilities(min_voltage=150, max_voltage=750, max_current=200, max_power=120_000)


@dataclass
class Sample:
    t: float
    phase: Phase
    outlet: float
    stage: float
    current: float
    out: Outputs
    relays: bool


@dataclass
class Harness(FakeTimeHarness):
    spec: BmsSpec = field(default_factory=BmsSpec)
    offer: float = 200.0
    #: Seconds the outlet voltage the sequence sees lags the circuit's (a DC meter polled every so often).
    meter_lag: float = 0.0
    #: A stage current reading the sequence sees instead of the circuit's (a reply not in yet); None: the circuit's.
    stale_current: float | None = None
    #: The supervisor holds K1/K2 open whatever the sequence asks (a fault opened them).
    forced_open: bool = False

    def __post_init__(self) -> None:
        self.step_s = STEP
        self.circuit = DcCircuit()
        self.circuit.stage.max_voltage, self.circuit.stage.max_current = 750.0, 200.0
        self.circuit.stage.max_power = 120_000.0
        self.bms = GbtBms(self.spec, self.circuit)
        self.seq = GbtSequence(CAPS)
        self.now = 0.0
        self.out = Outputs()
        self.connected = True
        self.contactors = False
        self.circuit.contactors_closed = lambda: self.contactors
        self.circuit.bleed_on = lambda: self.out.bleed
        self.samples: list[Sample] = []
        self.sent: list[tuple[float, Frame]] = []
        self.test_voltages: list[float] = []
        self._test_since: float | None = None
        self._outlet_history: list[tuple[float, float]] = []

    def start(self) -> None:
        self.seq.start(self.now, self.offer)

    def step(self) -> None:
        self.now = round(self.now + STEP, 6)
        self.circuit.step(STEP)
        for item in self.bms.tick(self.now, self.out.aux):
            if isinstance(item, Frame):
                self.seq.on_frame(item, self.now)
            else:
                pgn, data = item
                self.seq.on_message(Message(pgn, 0xF4, data, self.now))
        self._outlet_history.append((self.now, self.circuit.outlet_voltage))
        cutoff = self.now - self.meter_lag + 1e-9
        seen = next((v for t, v in reversed(self._outlet_history) if t <= cutoff), self._outlet_history[0][1])
        io = Inputs(now=self.now, connected=self.connected, locked=self.out.lock, contactors_closed=self.contactors,
                    outlet_voltage=seen, stage_voltage=self.circuit.stage_voltage,
                    output_current=self.circuit.current if self.stale_current is None else self.stale_current,
                    insulation_ohms=self.imd_reading())
        self.out = self.seq.tick(io)
        for frame in self.out.frames:
            self.sent.append((self.now, frame))
            self.bms.on_frame(frame)
        self.contactors = self.out.contactors and not self.forced_open
        power = self.out.power
        self.circuit.command(on=power is not None, voltage=power[0] if power else None,
                             current=power[1] if power else None)
        self.samples.append(Sample(self.now, self.seq.phase, self.circuit.outlet_voltage, self.circuit.stage_voltage,
                                   self.circuit.current, self.out, self.bms.relays))

    def sent_ids(self, pf: int) -> list[float]:
        return [t for t, f in self.sent if (f.id >> 16) & 0xFF == pf]
