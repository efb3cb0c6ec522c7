"""Control pilot on a Raspberry Pi: PWM out (gpiozero's, or the SoC's hardware PWM), MCP3008 on SPI in.

The PWM pin feeds the +/-12 V pilot driver (an op-amp or comparator stage), so
duty 1.0 is steady +12 V and 0.0 steady -12 V. The MCP3008 channel reads the
pilot's high level through a front end (peak detector and divider) that maps
pilot volts linearly onto 0..Vref: ``volts = adc_fraction * span + offset``.
An optional second channel reads the low half through a negative peak
detector with the same mapping; without it there is no diode check.
"""

from __future__ import annotations

import logging
from typing import Any

from gpiozero import MCP3008, PWMOutputDevice

from hal.errors import HalConfigError
from hal.pilot import ControlPilot
from hal.sysfs_pwm import SysfsPwm

PWM_FREQUENCY_HZ = 1000
#: GPIO -> hardware PWM channel on a Pi 4 or earlier (a Pi 5 names its channels in pilot.pwm_channel).
HARDWARE_PWM_CHANNEL = {12: 0, 18: 0, 13: 1, 19: 1}

log = logging.getLogger(__name__)


class GpioPilot(ControlPilot):
    """Pilot PWM on a GPIO pin (gpiozero's, timed in software), pilot voltage through an MCP3008 channel."""

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
        self._pwm = self._output(pwm_pin, pwm_active_high, pin_factory)
        self._adc = MCP3008(channel=adc_channel, port=spi_port, device=spi_device, pin_factory=pin_factory)
        self._adc_low = None
        if adc_low_channel is not None:
            self._adc_low = MCP3008(channel=adc_low_channel, port=spi_port, device=spi_device,
                                    pin_factory=pin_factory)
            self.measures_low = True

    def _output(self, pin: int, active_high: bool, pin_factory: Any) -> Any:
        """The PWM output, in state F (steady -12 V): the safe output until the station is ready."""
        log.info("pilot PWM on GPIO%d is timed in software (gpiozero): its duty jitters with CPU load; "
                 'pilot.driver = "pwm" on GPIO12/13/18/19 uses the hardware PWM', pin)
        return PWMOutputDevice(pin, active_high=active_high, initial_value=0.0, frequency=PWM_FREQUENCY_HZ,
                               pin_factory=pin_factory)

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


class HardwarePwmPilot(GpioPilot):
    """Pilot PWM from the SoC's PWM block (kernel pwm class), pilot voltage through an MCP3008 channel."""

    def __init__(self, *, pwm_pin: int, pwm_chip: int = 0, pwm_channel: int | None = None,
                 sysfs_root: str = "/sys/class/pwm", **kwargs: Any) -> None:
        if pwm_channel is None and pwm_pin not in HARDWARE_PWM_CHANNEL:
            raise HalConfigError(f"GPIO{pwm_pin} has no hardware PWM; use GPIO12, 13, 18 or 19")
        self._chip = pwm_chip
        self._channel = HARDWARE_PWM_CHANNEL[pwm_pin] if pwm_channel is None else pwm_channel
        self._sysfs_root = sysfs_root
        super().__init__(pwm_pin=pwm_pin, **kwargs)

    def _output(self, pin: int, active_high: bool, pin_factory: Any) -> Any:
        pwm = SysfsPwm(self._chip, self._channel, PWM_FREQUENCY_HZ, active_high=active_high, root=self._sysfs_root)
        log.info("pilot PWM on GPIO%d: hardware PWM %s", pin, pwm.dir)
        return pwm
