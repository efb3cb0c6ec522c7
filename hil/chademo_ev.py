"""A CHAdeMO EV (protocol 0.9, 1.x or 2.0) as the car side of the bench, written from the references.

The car waits for d1, then sends 0x100/0x101/0x102 (and 0x110 for 2.0) every 100 ms; after a
while it closes k and sets 0x102.5.0 (a Leaf takes 3.9 s: dc.md 1.1). Once d2 is on and its inlet
is dead it closes its contactors (0x102.5.3 -> 0) and ramps its request by 2 A per 100 ms (the
Leaf's 20 A/s) up to the least of its own limit and what the charger makes available. Its battery's
voltage follows its state of charge. At its target, or when the charger stops (0x109.5.0 cleared with
0x109.5.5 set), it clears 0x102.5.0 and opens k; once the
charger's current is at 5 A it opens its contactors and checks the inlet voltage falls (welding
detection) before it reports them open (0x102.5.3 = 1).

Misbehaviours for fault tests: ``silent`` (stops sending), ``drop_k`` (opens k, CAN says nothing),
``over_request`` (asks above what is available), ``welded`` (a contactor that never opens),
``slow_open`` (opens its contactors late), ``live_inlet`` (claims its contactors closed from the start).

The core is a step machine (:meth:`ChademoEv.tick`): charger frames and d1/d2 in, EV frames and k out,
the battery on a :class:`~hil.dccircuit.DcCircuit`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from controller.charging.chademo.frames import CHARGER_LIMITS, CHARGER_STATUS, database, signals
from hal.can import Frame
from hil.dccircuit import DcCircuit


@dataclass
class EvSpec:
    """The car: its protocol, battery and habits."""

    protocol: int = 2  # 1 = 0.9, 2 = 1.x, 3 = 2.0
    max_voltage: int = 435
    min_voltage: int = 250
    target_voltage: int = 410
    capacity_kwh: float = 24.0
    empty_voltage: float = 320.0  # battery open-circuit voltage at 0 % and 100 %
    full_voltage: float = 400.0
    soc: float = 50.0
    target_soc: float = 80.0
    max_current: int = 125
    max_charging_s: int = 3600
    permission_delay: float = 3.9  # d1 -> k and 0x102.5.0
    contactor_delay: float = 1.3  # d2 (inlet dead) -> contactors closed
    ramp: float = 2.0  # A per 100 ms
    dynamic_control: bool = True
    misbehaviours: set[str] = field(default_factory=set)


class ChademoEv:
    """The car side of one CHAdeMO session."""

    def __init__(self, spec: EvSpec, circuit: DcCircuit) -> None:
        self.spec = spec
        self.circuit = circuit
        self.soc = spec.soc
        self.new_session()

    def new_session(self) -> None:
        """Plugged in again: the sequence starts over (the battery keeps its charge)."""
        self.k = False
        self.charging_enabled = False
        self.request = 0.0
        self.contactor_closed = False
        self.stopping = False
        self.weld_checked = False
        self.available_current = 0
        self.charger_charging = False
        self._d1_at: float | None = None
        self._d2_at: float | None = None
        self._open_at: float | None = None
        self._next = 0.0
        self._last = 0.0
        self.sent = 0
        self.battery_voltage()

    # ---------------------------------------------------------------- battery

    def battery_voltage(self) -> float:
        """Open-circuit voltage at the present SoC; it also goes to the circuit."""
        s = self.spec
        volts = s.empty_voltage + (s.full_voltage - s.empty_voltage) * self.soc / 100
        self.circuit.battery_voltage = volts
        return volts

    @property
    def phase(self) -> str:
        """Where the car's side of the session is, as a bench report names it."""
        if self._d1_at is None:
            return "idle"
        if self.stopping:
            return "ended" if self.weld_checked else "stopping"
        if not self.k:
            return "handshake"
        if not self.contactor_closed:
            return "contactors" if self._d2_at is not None else "insulation test"
        return "charging" if self.request > 0 else "wait for current"

    def stop(self) -> None:
        """The driver ends charging from the car (0x102.5.0 cleared, k opened)."""
        self.stopping = True

    # ---------------------------------------------------------------- time

    def on_frame(self, frame: Frame) -> None:
        """A charger frame."""
        if frame.extended:
            return
        if frame.id == CHARGER_LIMITS:
            self.available_current = int(signals(frame)["AvailableCurrent"])
        elif frame.id == CHARGER_STATUS:
            fields = signals(frame)
            was_charging, self.charger_charging = self.charger_charging, bool(fields["Charging"])
            if was_charging and not self.charger_charging and fields["StopControl"]:
                self.stopping = True  # the charger ended the session: the car ends its side

    def tick(self, now: float, d1: bool, d2: bool) -> list[Frame]:
        """Advance to ``now`` with the charger's d1 and d2; returns the frames the car sends now."""
        dt, self._last = (now - self._last if self._last else 0.0), now
        s, bad = self.spec, self.spec.misbehaviours
        if not d1:
            self._d1_at = None
            self._release()
            return []
        if self._d1_at is None:
            self._d1_at, self._next = now, now + 0.1
        self._charge(dt)
        if not self.stopping and now - self._d1_at >= s.permission_delay and self.soc < s.target_soc:
            self.k = self.charging_enabled = True
        if self.soc >= s.target_soc and self.charging_enabled:
            self.stopping = True
        if self.stopping:
            self.k = self.charging_enabled = False
            self.request = 0.0
        if "drop_k" in bad and self.request > 0:
            self.k = False  # the switch opens; the CAN side goes on as if nothing happened
        self._contactors(now, d2)
        if self.contactor_closed and self.charging_enabled and not self.stopping:
            ceiling = float(s.max_current if "over_request" in bad else min(s.max_current, self.available_current))
            self.request = min(ceiling, self.request + s.ramp * dt * 10)
        if ("silent" in bad and self.request > 0) or now < self._next:
            return []
        self._next += 0.1
        self.sent += 1
        return self._frames()

    def _contactors(self, now: float, d2: bool) -> None:
        s, bad = self.spec, self.spec.misbehaviours
        circuit = self.circuit
        if "live_inlet" in bad:
            self.contactor_closed = True
        elif not d2 and "welded" not in bad:
            self.contactor_closed = False  # d2 feeds the contactor relay: no d2, no contactor
            self._d2_at = None
        elif d2 and not self.stopping and not self.contactor_closed:
            if self._d2_at is None:
                self._d2_at = now
            if now - self._d2_at >= s.contactor_delay and circuit.outlet_voltage < 10:
                self.contactor_closed = True
        elif self.stopping and self.contactor_closed and abs(circuit.current) <= 5 and not self.charger_charging:
            if self._open_at is None:
                self._open_at = now + (5.0 if "slow_open" in bad else 0.2)
            if now >= self._open_at and "welded" not in bad:
                self.contactor_closed = False
        if self.stopping and not self.contactor_closed and self._open_at is not None and circuit.outlet_voltage <= 10:
            self.weld_checked = True  # the inlet fell: no welded contactor
        circuit.ev_contactor_closed = self.contactor_closed

    def _charge(self, dt: float) -> None:
        if self.contactor_closed and self.circuit.current > 0:
            self.soc = min(100.0, self.soc + self.circuit.current * self.circuit.outlet_voltage * dt
                           / 3600 / (self.spec.capacity_kwh * 1000) * 100)
        self.battery_voltage()

    def _release(self) -> None:
        self.k = self.charging_enabled = False
        self.request = 0.0
        self._d2_at = None
        if "welded" not in self.spec.misbehaviours:  # d2 feeds the contactor relay: without d1 it is gone too
            self.contactor_closed = self.circuit.ev_contactor_closed = False

    def _frames(self) -> list[Frame]:
        s, db = self.spec, database()
        reported_open = not self.contactor_closed and (self.weld_checked or not self.stopping)
        request = self.request
        frames = [
            Frame(0x100, bytes(db.encode_message(0x100, {
                "MinChargeCurrent": 0, "MaxChargeCurrentHint": 0, "MinBatteryVoltage": s.min_voltage,
                "MaxBatteryVoltage": s.max_voltage, "ChargedRateReference": 100}))),
            Frame(0x101, bytes(db.encode_message(0x101, {
                "MaxChargingTime10s": 2550, "MaxChargingTimeMin": s.max_charging_s // 60,
                "EstimatedChargingTime": 30, "BatteryCapacity": s.capacity_kwh}))),
            Frame(0x102, bytes(db.encode_message(0x102, {
                "ProtocolNumber": s.protocol, "TargetVoltage": s.target_voltage,
                "CurrentRequest": min(255, round(request)), "FaultOverVoltage": 0, "FaultUnderVoltage": 0,
                "FaultCurrentDeviation": 0, "FaultHighTemperature": 0, "FaultVoltageDeviation": 0,
                "ChargingEnabled": int(self.charging_enabled), "ShiftNotPark": 0, "SystemFault": 0,
                "ContactorOpen": int(reported_open and s.protocol >= 2), "NormalStopRequest": 0,
                "LegacyDynamicControl": 0, "DischargeCapable": 0, "ChargedRate": round(self.soc)}))),
        ]
        if s.protocol >= 3:
            frames.append(Frame(0x110, bytes(db.encode_message(0x110, {
                "DynamicControl": int(s.dynamic_control), "HighCurrentControl": 0, "HighVoltageControl": 0,
                "ExtendedCurrentRequest": 0}))))
        return frames
