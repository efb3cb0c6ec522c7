"""Temperature: derate above one threshold, stop above another, both with hysteresis; a failing sensor derates."""

from __future__ import annotations

import asyncio
import logging

from controller.config import TemperatureSection
from controller.domain.faults import Fault
from controller.domain.types import PowerLimit
from controller.evse.machine import Evse
from controller.safety.supervisor import SafetySupervisor
from hal.errors import HalError
from hal.temperature import Thermometer

log = logging.getLogger(__name__)

TEMPERATURE = "temperature"


class TemperatureGuard:
    """Derates and stops one connector by temperature, with hysteresis."""

    def __init__(self, evse: Evse, supervisor: SafetySupervisor, sensor: Thermometer,
                 settings: TemperatureSection) -> None:
        self.evse = evse
        self.supervisor = supervisor
        self.sensor = sensor
        self.settings = settings
        self.celsius: float | None = None

    def update(self, celsius: float) -> None:
        """Apply one reading."""
        s, cid = self.settings, self.evse.id
        self.celsius = celsius
        if celsius >= s.stop_at:
            self.supervisor.raise_fault(cid, Fault.OVER_TEMPERATURE, f"{celsius:.1f} C (stop at {s.stop_at:g} C)")
        elif celsius <= s.stop_at - s.hysteresis:
            self.supervisor.clear_fault(cid, Fault.OVER_TEMPERATURE)
        if celsius >= s.derate_at:
            self.evse.set_limit(TEMPERATURE, PowerLimit(amps=s.derate_current))
        elif celsius <= s.derate_at - s.hysteresis:
            self.evse.set_limit(TEMPERATURE, None)

    async def run(self) -> None:
        """Poll the sensor; a sensor that stops answering derates the connector (better safe than hot)."""
        failing = False
        while True:
            try:
                celsius = await self.sensor.read()
            except HalError as exc:
                if not failing:
                    log.warning("connector %d: temperature sensor failed (%s); derating", self.evse.id, exc)
                    failing = True
                self.evse.set_limit(TEMPERATURE, PowerLimit(amps=self.settings.derate_current))
            else:
                if failing:
                    log.info("connector %d: temperature sensor answers again", self.evse.id)
                    failing = False
                self.update(celsius)
            await asyncio.sleep(self.settings.poll_interval)
