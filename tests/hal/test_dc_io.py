"""DC outlet I/O on gpiozero's mock pins: what the EV side sees, and what the charger reads."""

from __future__ import annotations

import pytest

from hal.dc_io import Bleeder, ChademoLines, EmergencyStop, GbtLines
from hal.errors import HalConfigError
from hil.gpio import MockMcp3008, WatchedPin, make_factory


def test_chademo_lines_drive_d1_d2_and_report_k_and_the_plug_from_gpiozeros_thread() -> None:
    factory = make_factory()
    k_pin, plug_pin = factory.pin(22, pin_class=WatchedPin), factory.pin(23, pin_class=WatchedPin)
    lines = ChademoLines(d1_pin=5, d2_pin=6, k_pin=22, plug_pin=23, pin_factory=factory)
    edges: list[tuple[str, bool]] = []
    lines.on_change = lambda name, value: edges.append((name, value))
    assert not lines.k and not lines.plugged  # nothing drives them: a broken wire means no permission
    plug_pin.drive_high()
    k_pin.drive_high()
    assert lines.k and lines.plugged and edges == [("plug", True), ("k", True)]
    lines.set(d1=True, d2=True)
    assert factory.pin(5).state and factory.pin(6).state
    lines.set(d1=False, d2=True)  # d2 never without d1
    assert not factory.pin(5).state and not factory.pin(6).state
    k_pin.drive_low()
    assert edges[-1] == ("k", False)
    lines.set(d1=True, d2=True)
    lines.close()
    assert not factory.pin(5).state and not factory.pin(6).state  # released with both off


def test_four_lines_need_four_pins() -> None:
    with pytest.raises(HalConfigError, match="four different pins, got d1 5, d2 5"):
        ChademoLines(d1_pin=5, d2_pin=5, k_pin=22, plug_pin=23, pin_factory=make_factory())


@pytest.mark.parametrize(("volts", "connected"), [(12.0, False), (6.0, False), (4.0, True), (3.3, True),
                                                  (4.9, False), (3.0, False), (0.0, False)])
def test_cc1_is_connected_only_near_4_v(volts: float, connected: bool) -> None:
    factory = make_factory()
    adc = MockMcp3008(factory)
    gbt = GbtLines(cc1_channel=3, aux_pin=24, pin_factory=factory)
    adc.inputs[3] = volts / gbt.cc1_scale
    assert gbt.cc1_volts == pytest.approx(volts, abs=0.02)
    assert gbt.connected is connected
    gbt.close()


def test_the_auxiliary_supply_is_off_at_start_and_at_close() -> None:
    factory = make_factory()
    MockMcp3008(factory)
    gbt = GbtLines(cc1_channel=3, aux_pin=24, pin_factory=factory)
    assert not factory.pin(24).state
    gbt.set_aux(True)
    assert factory.pin(24).state and gbt.aux
    gbt.close()
    assert not factory.pin(24).state


def test_the_bleeder_is_left_connected_when_released() -> None:
    factory = make_factory()
    bleed = Bleeder(pin=25, pin_factory=factory)
    assert not bleed.on
    bleed.set(True)
    bleed.set(False)
    assert not factory.pin(25).state
    bleed.close()
    assert factory.pin(25).state


def test_the_emergency_stop_loop_fails_safe() -> None:
    factory = make_factory()
    loop_pin = factory.pin(26, pin_class=WatchedPin)
    estop = EmergencyStop(pin=26, pin_factory=factory)
    assert estop.pressed  # nothing drives the loop: a broken wire is a pressed button
    edges: list[tuple[str, bool]] = []
    estop.on_change = lambda name, value: edges.append((name, value))
    loop_pin.drive_high()
    assert not estop.pressed and edges == [("estop", False)]
    loop_pin.drive_low()
    assert estop.pressed and edges[-1] == ("estop", True)
