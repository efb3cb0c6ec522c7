"""One channel of the SoC's hardware PWM through the kernel's pwm class (``/sys/class/pwm/pwmchipN/pwmM``).

The timing is the PWM block's, not Python's: a 1 kHz pilot keeps its duty to the clock's resolution whatever the
CPU does, which gpiozero's software PWM cannot promise. The pins need the overlay (``dtoverlay=pwm,pin=18,func=2``
for one channel, ``dtoverlay=pwm-2chan`` for GPIO18/19) and the files need write access: the kernel makes them
root's; Raspberry Pi OS's udev rules give the ``gpio`` group the export files and every pwmM that appears.

The kernel's rules, which the writes here follow: a channel exists only after its number is written to
``export``; ``period`` must be set before ``duty_cycle`` and never below it; values are nanoseconds.
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

from hal.errors import HalError

#: How long the kernel and udev may take to make an exported channel's files writable.
EXPORT_TIMEOUT = 2.0


class SysfsPwm:
    """A hardware PWM channel: ``value`` is the high fraction (0.0-1.0), as gpiozero's PWMOutputDevice has it."""

    def __init__(self, chip: int, channel: int, frequency: float, *, active_high: bool = True,
                 root: str | Path = "/sys/class/pwm") -> None:
        self.chip_dir = Path(root) / f"pwmchip{chip}"
        self.dir = self.chip_dir / f"pwm{channel}"
        self.channel = channel
        self.active_high = active_high
        self.period_ns = round(1e9 / frequency)
        self._value = 0.0
        if not self.chip_dir.is_dir():
            raise HalError(f"no hardware PWM at {self.chip_dir}: add dtoverlay=pwm-2chan (or dtoverlay=pwm) to "
                           "/boot/firmware/config.txt and reboot, or set pilot.pwm_chip (a Pi 5 on a kernel "
                           "before 6.12 has it at 2)")
        if not self.dir.is_dir():
            self._write(self.chip_dir / "export", channel)
        self._wait_ready()
        # Off while the period changes (a duty above a new period is refused), then the period, then the duty.
        self._write(self.dir / "enable", 0)
        self._write(self.dir / "duty_cycle", 0)
        self._write(self.dir / "period", self.period_ns)
        self.value = 0.0
        self._write(self.dir / "enable", 1)

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + EXPORT_TIMEOUT
        files = [self.dir / name for name in ("enable", "period", "duty_cycle")]
        while not all(f.exists() for f in files):
            if time.monotonic() > deadline:
                raise HalError(f"hardware PWM channel {self.dir} did not appear after export: is channel "
                               f"{self.channel} on this chip (pilot.pwm_channel)?")
            time.sleep(0.01)

    def _write(self, path: Path, value: int) -> None:
        try:
            path.write_text(f"{value}\n")
        except PermissionError as exc:
            raise HalError(f"cannot write {path}: the service user needs the gpio group (Raspberry Pi OS's "
                           "udev rules give it the PWM files)") from exc
        except OSError as exc:
            raise HalError(f"hardware PWM: writing {value} to {path} failed: {exc.strerror or exc}") from exc

    @property
    def value(self) -> float:
        """The fraction of each period the pin is at its active level."""
        return self._value

    @value.setter
    def value(self, fraction: float) -> None:
        if not 0.0 <= fraction <= 1.0:
            raise ValueError(f"PWM value must be 0.0-1.0, got {fraction}")
        high = fraction if self.active_high else 1.0 - fraction
        self._write(self.dir / "duty_cycle", round(high * self.period_ns))
        self._value = fraction

    def close(self) -> None:
        """Leave the pin at its inactive level, stop the channel and give it back to the kernel.

        The channel would otherwise keep running after the process ends: the last duty would stay on the pilot.
        A stopped channel idles low: state F (-12 V) with an active-high driver stage; with an active-low one it
        is steady +12 V, no PWM, on which no car charges either.
        """
        try:
            self.value = 0.0
        finally:
            with contextlib.suppress(HalError):
                self._write(self.dir / "enable", 0)
            with contextlib.suppress(HalError):
                self._write(self.chip_dir / "unexport", self.channel)
