"""The DC output circuit of a simulated charger: power stage, contactors, bleed resistor, cable and battery.

The bench's power-module simulators, DC meter, IMD and EV simulators all look at one
:class:`DcCircuit`, so what the controller commands has physical consequences it can measure: a
stage slews its voltage and current (it does not jump), the output capacitance holds its charge
after the stage switches off and drains through the bleed resistor, a closed pair of contactors
connects the stage to the cable and a closed EV contactor connects the cable to the battery.

Two nodes: the stage side (behind the charger's DC contactors) and the outlet side (the cable and
the EV inlet). Time advances in :meth:`DcCircuit.step` (the simulators call it from one thread).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class StageModel:
    """The rectifier: a voltage target, a current limit, and how fast it follows them."""

    max_voltage: float = 500.0
    min_voltage: float = 50.0
    max_current: float = 125.0
    max_power: float = 50_000.0
    voltage_slew: float = 1000.0  # V/s towards the target with no load
    current_slew: float = 200.0  # A/s up towards the limit (modules ramp; they do not step)
    current_fall: float = 1000.0  # A/s down when told less: a module regulates down in about 0.1 s
    off_fall: float = 10_000.0  # A/s when switched off: 100 A gone in 10 ms
    #: Output capacitance and the stage's own internal discharge (slow), as an RC time constant (s).
    self_discharge_tau: float = 8.0
    on: bool = False
    target_voltage: float = 0.0
    current_limit: float = 0.0


class DcCircuit:
    """Both nodes of one outlet and what connects them; thread-safe."""

    def __init__(self, stage: StageModel | None = None, *, bleed_tau: float = 0.12,
                 cable_resistance: float = 0.05) -> None:
        self.stage = stage or StageModel()
        self.bleed_tau = bleed_tau  # with the bleed resistor on: 60 V from 500 V in about 0.25 s
        self.cable_resistance = cable_resistance
        self.lock = threading.RLock()
        self.stage_voltage = 0.0
        self.outlet_voltage = 0.0
        self.current = 0.0  # into the outlet (A, positive charges the battery)
        self.contactors_closed: Callable[[], bool] = lambda: False
        self.bleed_on: Callable[[], bool] = lambda: False
        #: The EV side: the battery's open-circuit voltage and internal resistance, and its contactor.
        self.battery_voltage = 0.0
        self.battery_resistance = 0.08
        self.ev_contactor_closed = False
        #: Insulation resistance from either pole to PE (ohms); a fault injection lowers it.
        self.insulation_ohms = 10e6
        #: Added to the stage's voltage target (a stage regulating above its set point).
        self.overshoot = 0.0
        #: A surge the charger's sensors see on the output while the stage is on: the stage's own measurement
        #: and, through closed contactors, the DC meter's (the bench's over-voltage injection).
        self.surge = 0.0
        self.failed = False  # a power stage fault: the stage stops delivering

    # ------------------------------------------------------------------ commands (the stage simulator)

    def command(self, *, on: bool | None = None, voltage: float | None = None, current: float | None = None) -> None:
        """What the module was told over its bus."""
        with self.lock:
            if on is not None:
                self.stage.on = on
            if voltage is not None:
                self.stage.target_voltage = max(0.0, min(voltage, self.stage.max_voltage))
            if current is not None:
                self.stage.current_limit = max(0.0, min(current, self.stage.max_current))

    # ------------------------------------------------------------------ time

    def step(self, dt: float) -> None:
        """Advance the circuit by ``dt`` seconds."""
        with self.lock:
            closed = self.contactors_closed()
            ev_closed = self.ev_contactor_closed and self.battery_voltage > 0
            delivering = self.stage.on and not self.failed
            limit = min(self.stage.current_limit, self.stage.max_current)
            if delivering and self.stage_voltage > 1:
                limit = min(limit, self.stage.max_power / self.stage_voltage)
            target = self.stage.target_voltage + self.overshoot
            if closed and ev_closed:
                # Stage, cable and battery are one node: the stage pushes current up to its limit while
                # its voltage target is above the battery's; the battery holds the voltage.
                wanted = (target - self.battery_voltage) / (self.battery_resistance + self.cable_resistance)
                wanted = max(0.0, min(wanted, limit)) if delivering else 0.0
                rate = self.stage.current_slew if wanted > self.current else self.stage.current_fall
                if not delivering:
                    rate = self.stage.off_fall  # switched off: the output stage stops, the current collapses
                self.current = _towards(self.current, wanted, rate * dt)
                self.stage_voltage = self.battery_voltage + self.current * (self.battery_resistance
                                                                            + self.cable_resistance)
                self.outlet_voltage = self.battery_voltage + self.current * self.battery_resistance
                return
            self.current = 0.0
            if delivering:
                self.stage_voltage = _towards(self.stage_voltage, target, self.stage.voltage_slew * dt)
            else:
                self.stage_voltage *= math.exp(-dt / self.stage.self_discharge_tau)
            if closed:
                self._bleed(dt)
                self.outlet_voltage = self.stage_voltage
            elif ev_closed:
                self.outlet_voltage = self.battery_voltage  # the EV's contactor puts its battery on the cable
            else:
                tau = self.bleed_tau if self.bleed_on() else 30.0  # an open cable keeps its charge a long time
                self.outlet_voltage *= math.exp(-dt / tau)

    def measured(self) -> tuple[float, float, float]:
        """(stage volts, outlet volts, amps) as the charger's sensors read them now, with any surge."""
        with self.lock:
            surge = self.surge if self.stage.on else 0.0
            outlet = self.outlet_voltage + (surge if self.contactors_closed() else 0.0)
            return self.stage_voltage + surge, outlet, self.current

    def _bleed(self, dt: float) -> None:
        if self.bleed_on() and not self.stage.on:
            self.stage_voltage *= math.exp(-dt / self.bleed_tau)


def _towards(value: float, target: float, step: float) -> float:
    if value < target:
        return min(target, value + step)
    return max(target, value - step)
