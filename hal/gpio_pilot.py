"""Control pilot on a Raspberry Pi: gpiozero PWM out, MCP3008 on SPI in.

The PWM pin feeds the +/-12 V pilot driver (an op-amp or comparator stage), so
duty 1.0 is steady +12 V and 0.0 steady -12 V. The MCP3008 channel reads the
pilot's high level through a front end (peak detector and divider) that maps
pilot volts linearly onto 0..Vref: ``volts = adc_fraction * span + offset``.
An optional second channel reads the low half through a negative peak
detector with the same mapping; without it there is no diode check.
"""

from __future__ import annotations

from typing import Any

from gpiozero import MCP3008, PWMOutputDevice

from hal.errors import HalConfigError
from hal.pilot import ControlPilot

PWM_FREQUENCY_HZ = 1000


class GpioPilot(ControlPilot):
    """Pilot PWM on a GPIO pin, pilot voltage through an MCP3008 channel."""

    def __init__(
        self,
        *,
        pwm_pin: int,
        adc_channel: int,
        adc_low_channel: int | None = None,
        spi_port: int = 0,
        spi_device: int = 0,
        pwm_active_high: bool = True,
        adc_volts_at_zero: float = -15.0,
        adc_volts_at_full: float = 15.0,
        pin_factory: Any = None,
    ) -> None:
        super().__init__()
        if not 0 <= adc_channel <= 7:
            raise HalConfigError(f"MCP3008 channel must be 0-7, got {adc_channel}")
        if adc_low_channel is not None and (not 0 <= adc_low_channel <= 7 or adc_low_channel == adc_channel):
            raise HalConfigError(f"MCP3008 low-half channel must be 0-7 and not {adc_channel}, got {adc_low_channel}")
        self._offset = adc_volts_at_zero
        self._span = adc_volts_at_full - adc_volts_at_zero
        if self._span <= 0:
            raise HalConfigError("adc_volts_at_full must be above adc_volts_at_zero")
        # Start in state F (steady -12 V): the safe output until the station is ready.
        self._pwm = PWMOutputDevice(
            pwm_pin,
            active_high=pwm_active_high,
            initial_value=0.0,
            frequency=PWM_FREQUENCY_HZ,
            pin_factory=pin_factory,
        )
        self._adc = MCP3008(channel=adc_channel, port=spi_port, device=spi_device, pin_factory=pin_factory)
        self._adc_low = None
        if adc_low_channel is not None:
            self._adc_low = MCP3008(channel=adc_low_channel, port=spi_port, device=spi_device,
                                    pin_factory=pin_factory)
            self.measures_low = True

    def _write_duty(self, fraction: float) -> None:
        self._pwm.value = fraction

    def read_voltage(self) -> float:
        return float(self._adc.value) * self._span + self._offset

    def read_low_voltage(self) -> float:
        if self._adc_low is None:
            return super().read_low_voltage()
        return float(self._adc_low.value) * self._span + self._offset

    def close(self) -> None:
        try:
            self._pwm.value = 0.0
        finally:
            self._pwm.close()
            self._adc.close()
            if self._adc_low is not None:
                self._adc_low.close()
