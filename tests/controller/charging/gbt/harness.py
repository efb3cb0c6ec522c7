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

STEP = 0.005
CAPS = PowerCapabilities(min_voltage=150, max_voltage=750, max_current=200, max_power=120_000)
IMD_MEASURE = 1.0


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
class Harness:
    spec: BmsSpec = field(default_factory=BmsSpec)
    offer: float = 200.0

    def __post_init__(self) -> None:
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
        self.received: list[tuple[float, str]] = []
        self.test_voltages: list[float] = []
        self._test_since: float | None = None

    def start(self) -> None:
        self.seq.start(self.now, self.offer)

    def step(self) -> None:
        self.now = round(self.now + STEP, 6)
        self.circuit.step(STEP)
        for item in self.bms.tick(self.now, self.out.aux):
            if isinstance(item, Frame):
                self.received.append((self.now, f"frame {item.id:08X}"))
                self.seq.on_frame(item, self.now)
            else:
                pgn, data = item
                self.received.append((self.now, f"message {pgn:04X}"))
                self.seq.on_message(Message(pgn, 0xF4, data, self.now))
        io = Inputs(now=self.now, connected=self.connected, locked=self.out.lock, contactors_closed=self.contactors,
                    outlet_voltage=self.circuit.outlet_voltage, stage_voltage=self.circuit.stage_voltage,
                    output_current=self.circuit.current, insulation_ohms=self._imd())
        self.out = self.seq.tick(io)
        for frame in self.out.frames:
            self.sent.append((self.now, frame))
            self.bms.on_frame(frame)
        self.contactors = self.out.contactors
        power = self.out.power
        self.circuit.command(on=power is not None, voltage=power[0] if power else None,
                             current=power[1] if power else None)
        self.samples.append(Sample(self.now, self.seq.phase, self.circuit.outlet_voltage, self.circuit.stage_voltage,
                                   self.circuit.current, self.out, self.bms.relays))

    def _imd(self) -> float | None:
        voltage = self.out.insulation_test
        if voltage is None:
            self._test_since = None
            return None
        if self._test_since is None:
            self._test_since = self.now
            self.test_voltages.append(voltage)
        if self.now - self._test_since < IMD_MEASURE or self.circuit.stage_voltage < 0.95 * voltage:
            return None
        return self.circuit.insulation_ohms

    def run(self, seconds: float) -> None:
        for _ in range(round(seconds / STEP)):
            self.step()

    def run_until(self, test: object, timeout: float) -> float:
        end = self.now + timeout
        while self.now < end:
            self.step()
            if test():  # type: ignore[operator]
                return self.now
        raise AssertionError(f"not reached within {timeout} s (phase {self.seq.phase.value})")

    def first(self, test: object, after: float = 0.0) -> Sample:
        return next(s for s in self.samples if s.t > after and test(s))  # type: ignore[operator]

    def sent_ids(self, pf: int) -> list[float]:
        return [t for t, f in self.sent if (f.id >> 16) & 0xFF == pf]
