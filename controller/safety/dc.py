"""Guards of a DC outlet: the emergency stop, the power stage's faults, over-voltage and insulation while charging.

They raise catalogue faults through the supervisor and switch nothing themselves: the supervisor
opens the DC contactors, its hook switches the stage off first. Budgets (``dc.md`` 5 and 6):

- e-stop: raised from the thread that saw the loop open, at once;
- over-voltage: above the emergency limit for the negotiated maximum (IEC 61851-23 Table 103:
  550 V up to a 500 V maximum, 825 / 935 / 1100 / 1375 V above) at once; above the negotiated
  maximum itself for 400 ms (EVerest's software monitor);
- insulation while charging: a valid reading below the fault level (100 ohm/V, 100 kOhm at least);
- a power stage that reports a fault, or whose modules all went silent.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable

from controller.domain.faults import Fault
from controller.safety.supervisor import SafetySupervisor
from hal.dc_io import EmergencyStop
from hal.dc_power import DcPowerStage

log = logging.getLogger(__name__)

#: (negotiated maximum up to, emergency over-voltage limit) in volts.
EMERGENCY_LIMITS = ((500.0, 550.0), (750.0, 825.0), (850.0, 935.0), (1000.0, 1100.0), (math.inf, 1375.0))
OVER_VOLTAGE_HOLD = 0.4
FAULT_OHMS_PER_VOLT, FAULT_FLOOR_OHMS = 100.0, 100_000.0


def emergency_limit(maximum: float) -> float:
    """The voltage that ends a session at once for a negotiated ``maximum``."""
    return next(limit for upto, limit in EMERGENCY_LIMITS if maximum <= upto)


def insulation_fault_below(voltage: float) -> float:
    """The resistance (ohms) under which the insulation of an output at ``voltage`` is a fault."""
    return max(FAULT_OHMS_PER_VOLT * voltage, FAULT_FLOOR_OHMS)


class DcGuards:
    """The guards of one DC outlet."""

    def __init__(self, evse_id: int, supervisor: SafetySupervisor, power: DcPowerStage, *,
                 estop: EmergencyStop | None = None, clock: Callable[[], float]) -> None:
        self.id = evse_id
        self.supervisor = supervisor
        self.estop = estop
        self._clock = clock
        self._above_since: float | None = None
        power.on_fault = self._stage_faults
        if estop is not None:
            estop.on_change = self._estop_edge

    def start(self) -> None:
        """Take the inputs as they are now (an e-stop pressed at boot)."""
        if self.estop is not None:
            self._estop_edge("estop", self.estop.pressed)

    def _estop_edge(self, _name: str, pressed: bool) -> None:
        # gpiozero's thread: the fault (and the supervisor's opening) happens here.
        if pressed:
            self.supervisor.raise_fault(self.id, Fault.EMERGENCY_STOP, "emergency stop pressed (or its loop open)")
        else:
            self.supervisor.clear_fault(self.id, Fault.EMERGENCY_STOP)

    def _stage_faults(self, faults: frozenset[str]) -> None:
        if faults:
            self.supervisor.raise_fault(self.id, Fault.POWER_STAGE_FAULT, "; ".join(sorted(faults)))
        else:
            self.supervisor.clear_fault(self.id, Fault.POWER_STAGE_FAULT)

    def check_voltage(self, volts: float, maximum: float) -> None:
        """The output's voltage against the session's negotiated ``maximum`` (call at every control step)."""
        now = self._clock()
        if volts > emergency_limit(maximum):
            self._over(f"{volts:.0f} V is above the emergency limit {emergency_limit(maximum):.0f} V")
        elif volts > maximum:
            if self._above_since is None:
                self._above_since = now
            elif now - self._above_since >= OVER_VOLTAGE_HOLD:
                self._over(f"{volts:.0f} V has been above the maximum {maximum:.0f} V for "
                           f"{OVER_VOLTAGE_HOLD * 1000:.0f} ms")
        else:
            self._above_since = None

    def _over(self, detail: str) -> None:
        self._above_since = None
        if Fault.OVER_VOLTAGE not in self.supervisor.faults(self.id):
            self.supervisor.raise_fault(self.id, Fault.OVER_VOLTAGE, detail)

    def check_insulation(self, ohms: float, voltage: float) -> None:
        """A valid IMD reading while the output is at ``voltage``."""
        threshold = insulation_fault_below(voltage)
        if ohms < threshold and Fault.INSULATION_FAULT not in self.supervisor.faults(self.id):
            self.supervisor.raise_fault(self.id, Fault.INSULATION_FAULT,
                                        f"{ohms / 1000:.0f} kOhm at {voltage:.0f} V (fault below "
                                        f"{threshold / 1000:.0f} kOhm)")
