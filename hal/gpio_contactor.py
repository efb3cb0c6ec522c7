"""Contactor on a Raspberry Pi: coil on a GPIO output, mirror contact on a GPIO input."""

from __future__ import annotations

import threading
from typing import Any

from gpiozero import DigitalInputDevice, DigitalOutputDevice

from hal.contactor import Contactor
from hal.errors import HalConfigError


class GpioContactor(Contactor):
    """Coil on a GPIO output, optional mirror contact on a GPIO input."""

    def __init__(
        self,
        *,
        pin: int,
        active_high: bool = True,
        mirror_pin: int | None = None,
        mirror_type: str = "nc",
        pin_factory: Any = None,
    ) -> None:
        if mirror_type not in ("nc", "no"):
            raise HalConfigError(f"mirror_type must be 'nc' or 'no', got {mirror_type!r}")
        self._lock = threading.Lock()
        self._coil = DigitalOutputDevice(
            pin, active_high=active_high, initial_value=False, pin_factory=pin_factory
        )
        self._mirror_nc = mirror_type == "nc"
        self._mirror = (
            None
            if mirror_pin is None
            else DigitalInputDevice(mirror_pin, pull_up=True, pin_factory=pin_factory)
        )

    def close(self) -> None:
        with self._lock:
            self._coil.on()

    def open(self) -> None:
        with self._lock:
            self._coil.off()

    @property
    def commanded_closed(self) -> bool:
        return bool(self._coil.value)

    @property
    def feedback_closed(self) -> bool | None:
        if self._mirror is None:
            return None
        active = bool(self._mirror.value)
        return not active if self._mirror_nc else active

    def shutdown(self) -> None:
        try:
            self.open()
        finally:
            self._coil.close()
            if self._mirror is not None:
                self._mirror.close()
