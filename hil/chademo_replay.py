"""A replay EV: a recorded car's own CHAdeMO frames, sent back to a live charger the way that car did.

The EV side of a log (0x100, 0x101, 0x102, 0x110) is replayed byte for byte at its recorded pace,
held at the three points where the car waited for its charger:

1. after its permission it waits for d2 and a dead inlet, and closes its contactors (0x102.5.3 -> 0) as long
   after that as it did in the log;
2. it keeps charging (repeating its last request) until the charger stops (0x109.5.5 with 0x109.5.0
   cleared), then goes on from where it ended its side;
3. it reports its contactors open (0x102.5.3 -> 1) only once the inlet has fallen to 10 V or less
   after it opened them (its welding check).

The car's contactor and battery are on the bench's DC circuit; k follows 0x102.5.0 as recorded.
With the Leaf ZE0 log (``hil/canlogs``) that is a real car's timing against this charger.
"""

from __future__ import annotations

from controller.charging.chademo.frames import CHARGER_STATUS, EV_STATUS, EvStatus, signals
from hal.can import Frame
from hil.canlog import LoggedFrame, bundled_log
from hil.dccircuit import DcCircuit

EV_IDS = (0x100, 0x101, 0x102, 0x110)
#: After its permission the car waits for its charger (the insulation test, d2); how long a replay plays on
#: before holding, and how long after d2 with a dead inlet the Leaf closed its contactors (dc.md 2.3: 1.3 s).
SETTLE, CLOSE_REACTION = 0.2, 1.3


class ReplayEv:
    """Replays the EV frames of ``log`` (default: the Leaf ZE0 session) against a charger."""

    def __init__(self, circuit: DcCircuit, log: list[LoggedFrame] | None = None, *,
                 battery_voltage: float = 370.0) -> None:
        entries = [e for e in (log or bundled_log()) if e.frame.id in EV_IDS and not e.frame.extended]
        t0 = entries[0].t
        self.frames = [(e.t - t0, e.frame) for e in entries]
        self.circuit = circuit
        circuit.battery_voltage = battery_voltage
        statuses = [(t, EvStatus.decode(f)) for t, f in self.frames if f.id == EV_STATUS]
        self.permission_at = next(t for t, s in statuses if s.charging_enabled)
        self.close_at = next(t for t, s in statuses if not s.contactor_open)
        self.stop_at = next(t for t, s in statuses if t > self.close_at and not s.charging_enabled)
        self.opened_at = next(t for t, s in statuses if t > self.stop_at and s.contactor_open)
        self.k = False
        self.contactor_closed = False
        self.charger_stopped = False
        self._charger_charging = False
        self._cursor = 0
        self._clock: float | None = None  # log time
        self._last: float | None = None
        self._d1_seen = False
        self._closing_done = self._stop_done = self._open_done = False
        self.sent = 0

    def on_frame(self, frame: Frame) -> None:
        """A charger frame: only its stop matters to the replay."""
        if frame.id == CHARGER_STATUS and not frame.extended:
            fields = signals(frame)
            was, self._charger_charging = self._charger_charging, bool(fields["Charging"])
            if was and not self._charger_charging and fields["StopControl"]:
                self.charger_stopped = True

    def tick(self, now: float, d1: bool, d2: bool) -> list[Frame]:
        """Frames due at ``now``: log time advances with real time except while a hold applies."""
        if not d1:
            self._last = None
            if not self._d1_seen:
                return []
            self.k = False
            return []  # d1 off after the session: the car is done
        self._d1_seen = True
        if self._last is None:
            self._last, self._clock = now, 0.0
        assert self._clock is not None
        step, self._last = now - self._last, now
        held = self._hold(self._clock + step, d2)
        target = held if held is not None else self._clock + step
        out: list[Frame] = []
        while self._cursor < len(self.frames) and self.frames[self._cursor][0] <= target:
            _, frame = self.frames[self._cursor]
            self._cursor += 1
            out.append(frame)
            self._apply(frame)
        self._clock = target
        if held is not None and not out and int(now * 10) != int((now - step) * 10):
            out = self._repeat()  # held: the car goes on sending its last frames every 100 ms
        self.sent += len(out)
        return out

    def _hold(self, target: float, d2: bool) -> float | None:
        """The log time to stay at, if a hold applies before ``target``; a released stop hold jumps ahead."""
        circuit = self.circuit
        if not self._closing_done and target >= self.permission_at + SETTLE:
            if not (d2 and circuit.outlet_voltage < 10):
                return self.permission_at + SETTLE
            # d2 and a dead inlet: the car closes as long after that as it did in the log.
            self._skip_to(self.close_at - CLOSE_REACTION)
            self._closing_done = True
            return None
        if self._closing_done and not self._stop_done and (target >= self.stop_at or self.charger_stopped):
            if not self.charger_stopped:
                return self.stop_at - 1e-6
            self._stop_done = True
            self._skip_to(self.stop_at)  # the car goes on from its own stop, whatever charging the log had left
            return None
        if self._stop_done and not self._open_done and target >= self.opened_at - 1.0:
            if self.contactor_closed and abs(circuit.current) <= 5 and not self._charger_charging:
                self.contactor_closed = False  # the car opens; its welding check watches the inlet fall
                circuit.ev_contactor_closed = False
            if target >= self.opened_at:
                if self.contactor_closed or circuit.outlet_voltage > 10:
                    return self.opened_at - 1e-6
                self._open_done = True
        return None

    def _skip_to(self, log_time: float) -> None:
        while self._cursor < len(self.frames) and self.frames[self._cursor][0] < log_time:
            self._cursor += 1
        self._clock = log_time - 1e-6

    def _apply(self, frame: Frame) -> None:
        if frame.id != EV_STATUS:
            return
        status = EvStatus.decode(frame)
        self.k = status.charging_enabled
        if not status.contactor_open and not self.contactor_closed and not self._stop_done:
            self.contactor_closed = True
            self.circuit.ev_contactor_closed = True

    def _repeat(self) -> list[Frame]:
        last: dict[int, Frame] = {}
        for _, frame in self.frames[:self._cursor]:
            last[frame.id] = frame
        return [last[i] for i in EV_IDS if i in last]
