"""The safety-device drivers on mock pins: PP ratings, RCM edges, the lock's H-bridge, 1-Wire files."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from hal.lock import GpioCableLock
from hal.proximity import AdcProximity, ProximityError, cable_rating
from hal.rcm import GpioRcm
from hal.temperature import SensorError, W1Thermometer, parse_w1
from hil.gpio import MockMcp3008, WatchedPin, make_factory


@pytest.mark.parametrize(
    ("ohms", "amps"),
    [(75.0, 63.0), (100.0, 63.0), (149.0, 63.0), (150.0, 32.0), (220.0, 32.0), (330.0, 20.0), (680.0, 20.0),
     (1000.0, 13.0), (1500.0, 13.0), (2199.0, 13.0)],
)
def test_pp_resistance_gives_the_cable_rating(ohms: float, amps: float) -> None:
    assert cable_rating(ohms) == amps


@pytest.mark.parametrize(("ohms", "message"), [(10.0, "shorted"), (74.0, "shorted"), (2200.0, "no cable"),
                                               (math.inf, "no cable")])
def test_pp_out_of_range_is_an_error_that_says_why(ohms: float, message: str) -> None:
    with pytest.raises(ProximityError, match=message):
        cable_rating(ohms)


def test_pp_is_read_through_the_divider() -> None:
    factory = make_factory()
    adc = MockMcp3008(factory)
    pp = AdcProximity(adc_channel=5, pullup_ohms=1000.0, pin_factory=factory)
    try:
        adc.inputs[5] = 220.0 / 1220.0
        assert pp.read_ohms() == pytest.approx(220.0, rel=0.02)  # 10-bit ADC
        adc.inputs[5] = 1.0
        assert pp.read_ohms() == math.inf
    finally:
        pp.close()


def test_rcm_reports_trip_edges_and_drives_its_test_input() -> None:
    factory = make_factory()
    fault = factory.pin(5, pin_class=WatchedPin)
    test = factory.pin(6, pin_class=WatchedPin)
    rcm = GpioRcm(fault_pin=5, test_pin=6, pin_factory=factory)
    edges: list[bool] = []
    rcm.on_trip = edges.append
    try:
        assert not rcm.tripped and not test.state
        fault.drive_high()
        fault.drive_low()
        assert edges == [True, False]
        rcm.set_test(True)
        assert test.state
    finally:
        rcm.close()
    assert not test.state  # closing leaves the test input released


def test_the_lock_bridge_never_drives_both_sides() -> None:
    factory = make_factory()
    a = factory.pin(12, pin_class=WatchedPin)
    b = factory.pin(13, pin_class=WatchedPin)
    switch = factory.pin(16, pin_class=WatchedPin)
    both: list[bool] = []
    for pin in (a, b):
        pin.observers.append(lambda _t, _v: both.append(bool(a.state and b.state)))
    lock = GpioCableLock(lock_pin=12, unlock_pin=13, feedback_pin=16, pin_factory=factory)
    seen: list[bool] = []
    lock.on_feedback = seen.append
    try:
        lock.drive(True)
        assert a.state and not b.state
        lock.drive(False)
        assert b.state and not a.state
        lock.drive(None)
        assert not a.state and not b.state
        assert not any(both)
        switch.drive_high()
        assert lock.locked and seen == [True]
    finally:
        lock.close()


def test_w1_files_in_both_kernel_formats() -> None:
    assert parse_w1("23125\n") == 23.125
    assert parse_w1("72 01 4b 46 7f ff 0e 10 57 : crc=57 YES\n72 01 4b 46 7f ff 0e 10 57 t=-1250\n") == -1.25
    with pytest.raises(SensorError, match="CRC"):
        parse_w1("72 01 4b 46 7f ff 0e 10 57 : crc=00 NO\n72 01 4b 46 7f ff 0e 10 57 t=23125\n")
    with pytest.raises(SensorError, match="no temperature"):
        parse_w1("garbage")


async def test_a_missing_sensor_file_is_a_sensor_error(tmp_path: Path) -> None:
    with pytest.raises(SensorError, match="temperature"):
        await W1Thermometer(tmp_path / "temperature").read()
