"""A DC outlet's insulation monitor: the boot self-test, the cable check at the test voltage, the watch while charging.

Mixed into :class:`~controller.charging.dcoutlet.DcOutlet`; the supervisor's ``insulation`` condition follows
the self-test, the sequence gets the cable check's reading, and the guards each reading while current flows.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from controller.safety.dc import DcGuards, insulation_fault_below
from controller.safety.supervisor import SafetySupervisor
from hal.imd import InsulationMonitor

log = logging.getLogger(__name__)

INSULATION = "insulation"
WARNING_OHMS_PER_VOLT = 500.0  # GB/T's warning level; the fault level is the guards'


class ImdChecks:
    """The IMD's part of a DC outlet."""

    id: int
    imd: InsulationMonitor | None
    guards: DcGuards | None
    supervisor: SafetySupervisor
    outlet_voltage: Callable[[], float]
    imd_interval: float
    insulation_ohms: float | None
    out: Any
    sequence: Any
    evse: Any
    _wake: asyncio.Event

    async def _imd_boot(self) -> None:
        assert self.imd is not None
        try:
            await self.imd.open()
            passed = await self.imd.self_test()
        except Exception as exc:  # an IMD that cannot be reached is an IMD that failed
            log.error("connector %d: IMD: %s", self.id, exc)
            passed = False
        if not passed:
            log.error("connector %d: IMD self-test failed: no DC session until it passes", self.id)
        else:
            log.info("connector %d: IMD self-test passed", self.id)
        self.supervisor.set_condition(self.id, INSULATION, passed)
        if passed and self.evse is not None:
            self.evse.refresh()  # a car plugged in during the self-test was refused its contactors: ask again

    async def _cable_check(self, voltage: float) -> None:
        """Measure at the test voltage; the reading goes to the sequence on its next tick."""
        if self.imd is None:
            self.insulation_ohms = float("inf")
            return
        try:
            # Measuring starts once the test voltage stands, so the device's own "valid" is a value at it.
            while abs(self.outlet_voltage() - voltage) >= 0.05 * voltage:
                if self._test_abandoned():
                    return
                await asyncio.sleep(0.02)
            await self.imd.start()
            while True:
                if self._test_abandoned():
                    return
                reading = await self.imd.read()
                if reading.resistance is not None:
                    break
                await asyncio.sleep(0.2)
        except Exception as exc:  # the sequence's own timeout ends a check that never finishes
            log.error("connector %d: IMD during the insulation test: %s", self.id, exc)
            return
        ohms = reading.resistance
        threshold = insulation_fault_below(voltage)
        log.info("connector %d: insulation %.0f kOhm at %.0f V (fault below %.0f kOhm): %s", self.id, ohms / 1000,
                 voltage, threshold / 1000, "pass" if ohms > threshold else "FAIL")
        if threshold < ohms <= WARNING_OHMS_PER_VOLT * voltage:
            log.warning("connector %d: insulation %.0f kOhm is below the warning level (%.0f ohm/V)", self.id,
                        ohms / 1000, WARNING_OHMS_PER_VOLT)
        self.insulation_ohms = ohms
        self._wake.set()

    def _test_abandoned(self) -> bool:
        # The task starts after the step that asked for the test: ``out`` is that step's outputs or a later one's.
        return self.out is None or self.out.insulation_test is None

    async def _imd_watch(self) -> None:
        """While current flows: every ``imd_interval`` s, a valid reading goes to the insulation guard."""
        assert self.imd is not None and self.guards is not None
        while self.sequence.delivering:
            try:
                reading = await self.imd.read()
            except Exception as exc:  # a reading lost now and then is logged; the IMD's own alarm relay stays
                log.warning("connector %d: IMD read while charging: %s", self.id, exc)
            else:
                if reading.resistance is not None:
                    self.guards.check_insulation(reading.resistance, self.outlet_voltage())
            await asyncio.sleep(self.imd_interval)
