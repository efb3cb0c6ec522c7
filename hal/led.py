"""An RGB status LED on three GPIO outputs (gpiozero ``RGBLED``, on/off per colour)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

from gpiozero import RGBLED

Colour = tuple[int, int, int]


class StatusLed(ABC):
    """An RGB indicator: steady colours and blinking."""

    @abstractmethod
    def show(self, colour: Colour, blink: float | None = None, times: int | None = None) -> None:
        """Light ``colour``; with ``blink`` (s) alternate it with off, ``times`` times or forever."""

    @abstractmethod
    def shown(self) -> Colour:
        """The colour the outputs drive now (each 0 or 1), read back from the pins."""

    def close(self) -> None:
        """Switch off and release the hardware."""


class GpioStatusLed(StatusLed):
    """Three GPIO outputs through gpiozero's ``RGBLED``."""

    def __init__(self, *, red_pin: int, green_pin: int, blue_pin: int, active_high: bool = True,
                 pin_factory: Any = None) -> None:
        # On/off colours only: no PWM, so any GPIO works and nothing flickers at the pilot's 1 kHz.
        self._led = RGBLED(red_pin, green_pin, blue_pin, active_high=active_high, pwm=False,
                           pin_factory=pin_factory)

    def show(self, colour: Colour, blink: float | None = None, times: int | None = None) -> None:
        if blink is None:
            self._led.color = colour
        else:
            self._led.blink(on_time=blink, off_time=blink, on_color=colour, off_color=(0, 0, 0), n=times,
                            background=True)

    def shown(self) -> Colour:
        red, green, blue = (round(v) for v in self._led.value)
        return red, green, blue

    def close(self) -> None:
        try:
            self._led.off()
        finally:
            self._led.close()
