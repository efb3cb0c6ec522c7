"""The pilot on the SoC's hardware PWM, against a fake /sys/class/pwm that exports as the kernel does."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from hal.errors import HalConfigError, HalError
from hal.gpio_pilot import HardwarePwmPilot
from hal.sysfs_pwm import SysfsPwm
from hil.gpio import MockMcp3008, make_factory


class FakePwmChip:
    """pwmchip0 with two channels: writing N to ``export`` makes ``pwmN/`` with its files, a moment later."""

    def __init__(self, root: Path, npwm: int = 2) -> None:
        self.chip = root / "pwmchip0"
        self.chip.mkdir(parents=True)
        (self.chip / "npwm").write_text(f"{npwm}\n")
        for name in ("export", "unexport"):
            (self.chip / name).write_text("")
        self.npwm = npwm
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._kernel, daemon=True)
        self._thread.start()

    def _kernel(self) -> None:
        while not self._stop.wait(0.005):
            text = (self.chip / "export").read_text().strip()
            if text and int(text) < self.npwm and not (self.chip / f"pwm{text}").exists():
                channel = self.chip / f"pwm{text}"
                channel.mkdir()
                for name, value in (("period", "0"), ("duty_cycle", "0"), ("enable", "0")):
                    (channel / name).write_text(value + "\n")

    def read(self, channel: int, name: str) -> int:
        return int((self.chip / f"pwm{channel}" / name).read_text())

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


@pytest.fixture
def chip(tmp_path: Path) -> Iterator[FakePwmChip]:
    fake = FakePwmChip(tmp_path)
    yield fake
    fake.stop()


def test_a_channel_is_exported_and_runs_at_1_khz_with_the_duty_in_nanoseconds(chip: FakePwmChip) -> None:
    pwm = SysfsPwm(0, 1, 1000, root=chip.chip.parent)
    assert chip.read(1, "period") == 1_000_000 and chip.read(1, "enable") == 1
    assert chip.read(1, "duty_cycle") == 0  # state F until told otherwise
    pwm.value = 0.26667
    assert chip.read(1, "duty_cycle") == 266_670
    pwm.close()
    assert chip.read(1, "duty_cycle") == 0 and chip.read(1, "enable") == 0
    assert (chip.chip / "unexport").read_text().strip() == "1"  # the channel stops with the process


def test_an_active_low_stage_gets_the_complement(chip: FakePwmChip) -> None:
    pwm = SysfsPwm(0, 0, 1000, active_high=False, root=chip.chip.parent)
    pwm.value = 0.1
    assert chip.read(0, "duty_cycle") == 900_000
    with pytest.raises(ValueError, match=r"0\.0-1\.0"):
        pwm.value = 1.5


def test_no_chip_and_no_channel_say_what_to_fix(chip: FakePwmChip) -> None:
    with pytest.raises(HalError, match=r"add dtoverlay=pwm-2chan .* set pilot\.pwm_chip"):
        SysfsPwm(3, 0, 1000, root=chip.chip.parent)
    with pytest.raises(HalError, match=r"did not appear after export: is channel 2 on this chip"):
        SysfsPwm(0, 2, 1000, root=chip.chip.parent)


def test_the_pilot_writes_the_iec_duty_to_the_pins_channel(chip: FakePwmChip) -> None:
    factory = make_factory()
    adc = MockMcp3008(factory)
    pilot = HardwarePwmPilot(pwm_pin=19, adc_channel=2, sysfs_root=str(chip.chip.parent), pin_factory=factory)
    try:
        assert chip.read(1, "duty_cycle") == 0  # GPIO19 is PWM1; steady -12 V first
        pilot.offer_current(16)
        assert chip.read(1, "duty_cycle") == 266_667
        pilot.stop_offer()
        assert chip.read(1, "duty_cycle") == 1_000_000  # steady +12 V
        adc.inputs[2] = (9.0 + 15) / 30
        assert pilot.read_voltage() == pytest.approx(9.0, abs=0.03)  # 10-bit ADC
    finally:
        pilot.close()
    assert chip.read(1, "enable") == 0


def test_a_pin_without_hardware_pwm_is_refused() -> None:
    with pytest.raises(HalConfigError, match="GPIO17 has no hardware PWM"):
        HardwarePwmPilot(pwm_pin=17, adc_channel=0)
