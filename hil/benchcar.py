"""A DC car on the bench's own wires: a second Pi (or a laptop with a USB-CAN adapter) is the car for a charger
under test that runs its own ``evse run``.

The car is the same model the simulated charger's bench uses (:class:`~hil.chademo_ev.ChademoEv`, or
:class:`~hil.gbt_bms.GbtBms` with its python-can-j1939 stack) on the same bus runners; only its wiring differs:

- **CAN**: any python-can interface. ``socketcan`` on ``can0`` on a bench Pi (a CAN HAT, or a USB adapter that
  the kernel sees as can0); python-can-remote in the project's tests.
- **Lines** (``[car.lines]`` in ``bench.toml``): gpiozero devices on the bench's GPIO. The car reads the lines the
  charger drives (CHAdeMO d1 and d2, GB/T's 12 V auxiliary supply), through optocouplers, and drives its own
  (CHAdeMO k and the connector-present line, GB/T's R4 on CC1), through relays or transistors.
- **Power**: the bench's car has no battery the model can set. It takes the outlet's voltage and current from the
  charger's own reports on the bus (CHAdeMO 0x109 PresentVoltage/PresentCurrent, GB/T CCS), for its state of
  charge and its contactor logic. A report older than :data:`STALE` counts as a dead cable (the charger stopped
  sending it: GB/T's CCS ends with the charger's CST, which must bring the current down within 100 ms). The EV
  contactor drives an optional relay that connects the bench's DC load (or battery emulator); a bench that stops
  mid-session ends it from the car first, so that relay does not open under load.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from gpiozero import DigitalInputDevice, DigitalOutputDevice

from controller.charging.chademo.frames import CHARGER_STATUS, signals
from controller.charging.gbt.frames import decode, pgn_of
from controller.charging.j1939 import Address
from hal.can import Frame
from hil.benchfile import CAR_LINES, BenchCarSpec, BenchLine
from hil.chademo_ev import ChademoEv, EvSpec
from hil.chademo_ev_bus import ChademoEvOnBus
from hil.dccircuit import DcCircuit
from hil.gbt_bms import BmsSpec, GbtBms
from hil.gbt_bms_bus import GbtBmsOnBus
from hil.timeline import DcSampler, Timeline

log = logging.getLogger(__name__)

#: Seconds after the charger's last report of its output that the car counts the cable as dead. GB/T's CCS ends
#: with the charger's CST, which must bring the current to 5 A within 100 ms: a second is ten times that.
STALE = 1.0
#: How long stopping the bench waits for a charging session to wind down before it unplugs anyway.
WIND_DOWN = 5.0
#: How often the car's phase, voltage and current are looked at for the bench's timeline.
SAMPLE = 0.02
#: Volts on GB/T's CC1 above which the car's R4 counts as off (4 V: connected; 6 V and 12 V: not).
CC1_CONNECTED_BELOW = 5.0


class BenchCarError(OSError):
    """The car's GPIO lines or CAN interface cannot be opened (the message says which and why)."""


class InputLine:
    """A line the charger drives, read on the bench's GPIO (``state``: on, whatever the wiring's level)."""

    def __init__(self, line: BenchLine, pin_factory: Any = None) -> None:
        # An optocoupler's open collector pulls to the level that means on: the pull goes the other way.
        self._device = DigitalInputDevice(line.pin, pull_up=not line.active_high, pin_factory=pin_factory)

    @property
    def state(self) -> bool:
        return bool(self._device.is_active)

    def close(self) -> None:
        self._device.close()


class OutputLine:
    """A line the car drives on the bench's GPIO, off from the start."""

    def __init__(self, line: BenchLine, pin_factory: Any = None) -> None:
        self._device = DigitalOutputDevice(line.pin, active_high=line.active_high, initial_value=False,
                                           pin_factory=pin_factory)

    @property
    def state(self) -> bool:
        return bool(self._device.is_active)

    def drive_high(self) -> None:
        """On (the car closes its switch)."""
        self._device.on()

    def drive_low(self) -> None:
        """Off."""
        self._device.off()

    def close(self) -> None:
        self._device.off()
        self._device.close()


class ReportedCircuit(DcCircuit):
    """The car's view of the power cable when the charger is real: what the charger reports of its output.

    The model's battery voltage stays here (the bench's DC load has its own); its contactor drives the EV
    contactor's relay where there is one.
    """

    def __init__(self, kind: str, contactor: OutputLine | None = None) -> None:
        super().__init__()
        self.kind, self.contactor = kind, contactor
        self.reported_at = float("-inf")
        self._ccs = pgn_of("CCS")

    def heard(self, frame: Frame) -> None:
        """A charger frame: its output's voltage and current, where it carries them."""
        try:
            if self.kind == "chademo" and not frame.extended and frame.id == CHARGER_STATUS:
                fields = signals(frame)
                volts, amps = float(fields["PresentVoltage"]), float(fields["PresentCurrent"])
            elif self.kind == "gbt" and frame.extended and Address.of(frame.id).pgn == self._ccs:
                fields = decode("CCS", frame.data)
                volts, amps = float(fields["OutputVoltage"]), -float(fields["OutputCurrent"])
            else:
                return
        except Exception as exc:  # a malformed frame from the charger under test: noted, not fatal to the car
            log.warning("bench car: the charger's frame %s does not decode: %s", frame, exc)
            return
        with self.lock:
            self.outlet_voltage, self.current, self.reported_at = volts, amps, time.monotonic()

    def forget(self) -> None:
        """A new session: nothing is known of the cable until the charger reports it."""
        with self.lock:
            self.outlet_voltage = self.current = 0.0
            self.reported_at = float("-inf")

    def step(self, dt: float) -> None:
        """No physics here: the charger's reports go stale, and the EV contactor's relay follows the model."""
        with self.lock:
            if time.monotonic() - self.reported_at > STALE:
                self.outlet_voltage = self.current = 0.0
            closed = self.ev_contactor_closed
        if self.contactor is not None and self.contactor.state != closed:
            (self.contactor.drive_high if closed else self.contactor.drive_low)()


class BenchCar:
    """One DC car the bench plays for a charger elsewhere; ``plug``/``unplug`` are a script's steps."""

    def __init__(self, spec: BenchCarSpec, *, timeline: Timeline | None = None, pin_factory: Any = None) -> None:
        self.spec, self.timeline = spec, timeline
        self.lines: dict[str, InputLine | OutputLine] = {}
        try:
            self._build(spec, pin_factory)
        except Exception as exc:  # gpiozero's, lgpio's (a GPIO in use), python-can's, the OS's: all one line
            self._close_lines()
            raise BenchCarError(f"[[car]] for connector {spec.connector} ({spec.kind} on {spec.interface} "
                                f"{spec.channel}): {exc or type(exc).__name__}") from exc
        self._stop = threading.Event()
        self._sampler: threading.Thread | None = None

    def _build(self, spec: BenchCarSpec, pin_factory: Any) -> None:
        for name, line in spec.lines.items():  # each line as the car sees it: read, or driven
            self.lines[name] = (InputLine if CAR_LINES[spec.kind][name] == "in" else OutputLine)(line, pin_factory)
        contactor = self.lines.get("ev_contactor")
        self.circuit = ReportedCircuit(spec.kind, contactor if isinstance(contactor, OutputLine) else None)
        self.car: ChademoEvOnBus | GbtBmsOnBus
        self.model: ChademoEv | GbtBms
        self._cc1_loose = False
        if spec.kind == "chademo":
            ev_spec = EvSpec(soc=spec.soc, target_soc=spec.target_soc)
            if spec.quick:
                ev_spec.permission_delay, ev_spec.contactor_delay = 0.5, 0.3
            self.model = ChademoEv(ev_spec, self.circuit)
            self.car = ChademoEvOnBus(self.model, d1=self.lines["d1"], d2=self.lines["d2"], k=self.lines["k"],
                                      plug=self.lines["plug"], interface=spec.interface, channel=spec.channel)
        else:
            bms_spec = BmsSpec(soc=spec.soc, target_soc=spec.target_soc)
            if spec.quick:
                bms_spec.relay_delay = 0.3
            self.model = GbtBms(bms_spec, self.circuit)
            self.car = GbtBmsOnBus(self.model, cc1=self._set_cc1, aux=self.lines["aux"], interface=spec.interface,
                                   channel=spec.channel)
        self.car.listeners.append(self.circuit.heard)

    def _output(self, name: str) -> OutputLine:
        line = self.lines[name]
        assert isinstance(line, OutputLine)
        return line

    def _set_cc1(self, volts: float) -> None:
        # The bench switches the car's R4 onto CC1: the charger reads 4 V with it, the cable's own level without.
        cc1 = self._output("cc1")
        (cc1.drive_high if volts < CC1_CONNECTED_BELOW and not self._cc1_loose else cc1.drive_low)()

    def _close_lines(self) -> None:
        for line in self.lines.values():
            try:
                line.close()
            except Exception as exc:  # one line that will not close must not keep the others on
                log.error("bench car: a line would not close: %s", exc)

    # ---------------------------------------------------------------- lifecycle

    def start(self) -> None:
        """The car's bus and thread, and the sampler for the timeline."""
        self.car.start()
        self._sampler = threading.Thread(target=self._sample, name=f"bench-car-{self.spec.connector}", daemon=True)
        self._sampler.start()
        log.info("bench car: a %s car for connector %d on %s %s", self.spec.kind, self.spec.connector,
                 self.spec.interface, self.spec.channel)

    def stop(self) -> None:
        """Unplugged, every line off, the bus released. A session still carrying current is ended from the car
        first (up to :data:`WIND_DOWN` s), so the EV contactor's relay does not open under load."""
        try:
            if self.car.plugged and self.circuit.ev_contactor_closed:
                self.model.stop()
                deadline = time.monotonic() + WIND_DOWN
                while self.circuit.ev_contactor_closed and time.monotonic() < deadline:
                    time.sleep(0.02)
                if self.circuit.ev_contactor_closed:
                    log.error("bench car: the session did not wind down in %g s (%.0f A reported); unplugging",
                              WIND_DOWN, self.circuit.current)
            if self.car.plugged:
                self.car.unplug()
            time.sleep(0.05)  # the car's thread drives k and the relay off once more
        finally:
            self._stop.set()
            if self._sampler is not None:
                self._sampler.join(1.0)
            try:
                self.car.stop()
            finally:
                self._close_lines()

    def _sample(self) -> None:
        if self.timeline is None:
            return  # nobody to tell
        phase, dc = None, DcSampler(self.timeline, self.spec.connector)
        while not self._stop.wait(SAMPLE):
            now = time.monotonic()
            if self.model.phase != phase:
                phase = self.model.phase
                self.timeline.record("phase", self.spec.connector, phase, now)
            dc.sample(self.circuit.outlet_voltage, self.circuit.current, now)

    def summary(self) -> dict[str, Any]:
        """What a report says of the car: which it was, on which bus, where its battery ended, what it heard."""
        spec = self.spec
        return {"connector": spec.connector, "kind": spec.kind, "bus": f"{spec.interface} {spec.channel}",
                "soc_start": spec.soc, "soc": round(self.model.soc, 2), "phase": self.model.phase,
                "frames_heard": len(self.car.heard), "frames_said": len(self.car.said)}

    # ---------------------------------------------------------------- script steps

    def plug(self) -> None:
        """The connector goes into the inlet (its present line or R4 on)."""
        self._record("plug")
        self.circuit.forget()
        self.car.plug_in()

    def unplug(self) -> None:
        """The connector comes out (a person takes it out; a locked one is for them to notice)."""
        self._record("unplug")
        self.car.unplug()

    def inject(self, kind: str, active: bool) -> None:
        """A car-side fault: ``evsilent`` (the car stops sending) or ``cc1`` (its connector line drops while in)."""
        if kind == "evsilent":
            misbehaviours = self.model.spec.misbehaviours
            (misbehaviours.add if active else misbehaviours.discard)("silent")
        elif kind == "cc1":
            if isinstance(self.car, ChademoEvOnBus):
                present = self._output("plug")
                (present.drive_low if active or not self.car.plugged else present.drive_high)()
            else:
                self._cc1_loose = active
                self._set_cc1(4.0 if self.car.plugged else 12.0)
        else:
            raise ValueError(f"fault {kind} is not one the bench's car can make")

    def _record(self, what: str) -> None:
        if self.timeline is not None:
            self.timeline.record("car", self.spec.connector, what)
