"""IEC 61851 duty/current rules, pilot classification, and the GPIO pilot over mocked pins and SPI."""

from __future__ import annotations

import threading
import time

import pytest

from hal.gpio_pilot import GpioPilot
from hal.pilot import (
    PilotMonitor,
    PilotState,
    classify_pilot_voltage,
    current_for_duty,
    duty_for_current,
    pilot_label,
)
from hil.gpio import MockMcp3008, WatchedPWMPin, make_factory


@pytest.mark.parametrize(
    ("amps", "duty"),
    [(6, 10.0), (10, 16.667), (16, 26.667), (32, 53.333), (51, 85.0), (63, 89.2), (80, 96.0)],
)
def test_duty_for_current_follows_both_iec_ranges(amps: float, duty: float) -> None:
    assert duty_for_current(amps) == pytest.approx(duty, abs=0.001)


@pytest.mark.parametrize("amps", [5.9, 0, 80.1, -6])
def test_duty_for_current_refuses_currents_outside_6_to_80_a(amps: float) -> None:
    with pytest.raises(ValueError, match="6-80 A"):
        duty_for_current(amps)


@pytest.mark.parametrize(
    ("duty", "amps"),
    [(5.0, None), (7.5, None), (7.99, None), (8.0, 6.0), (8.5, 6.0), (10.0, 6.0), (10.5, 6.3), (50.0, 30.0),
     (85.0, 51.0), (85.5, 53.75), (90.0, 65.0), (96.5, 80.0), (97.0, 80.0), (97.5, None), (100.0, None)],
)
def test_current_for_duty_as_an_ev_reads_it(duty: float, amps: float | None) -> None:
    assert current_for_duty(duty) == (pytest.approx(amps) if amps is not None else None)


@pytest.mark.parametrize("amps", [6, 13, 16, 20, 32, 40, 51, 63, 70, 80])
def test_duty_and_current_round_trip(amps: float) -> None:
    assert current_for_duty(duty_for_current(amps)) == pytest.approx(amps)


@pytest.mark.parametrize(
    ("volts", "state"),
    [(12.0, PilotState.A), (11.1, PilotState.A), (9.0, PilotState.B), (8.1, PilotState.B),
     (6.0, PilotState.C), (6.9, PilotState.C), (3.0, PilotState.D), (0.2, PilotState.E),
     (-12.0, PilotState.F), (-11.2, PilotState.F), (10.5, None), (7.5, None), (4.5, None), (-6.0, None)],
)
def test_classification_uses_plus_minus_one_volt_bands(volts: float, state: PilotState | None) -> None:
    assert classify_pilot_voltage(volts) is state


def _bench_pilot() -> tuple[GpioPilot, WatchedPWMPin, MockMcp3008]:
    factory = make_factory()
    adc = MockMcp3008(factory)
    pwm = factory.pin(18, pin_class=WatchedPWMPin)
    return GpioPilot(pwm_pin=18, adc_channel=2, pin_factory=factory), pwm, adc


def test_gpio_pilot_starts_in_state_f_and_writes_the_iec_duty() -> None:
    pilot, pwm, _adc = _bench_pilot()
    try:
        assert pwm.state == 0.0  # steady -12 V until the station is ready
        assert pwm.frequency == 1000
        pilot.offer_current(16)
        assert pwm.state == pytest.approx(0.26667, abs=1e-4)
        assert pilot.offered_current == 16 and pilot.output_level == pwm.state
        pilot.stop_offer()
        assert pwm.state == 1.0 and pilot.offered_current is None
    finally:
        pilot.close()
    assert pwm.state == 0.0  # closing leaves state F


def test_gpio_pilot_reads_the_voltage_through_the_mcp3008_front_end() -> None:
    pilot, _pwm, adc = _bench_pilot()
    try:
        for volts in (12.0, 9.0, 6.0, -12.0):
            adc.inputs[2] = (volts + 15.0) / 30.0
            assert pilot.read_voltage() == pytest.approx(volts, abs=0.05)
    finally:
        pilot.close()


def test_monitor_reports_debounced_changes_and_ignores_glitches() -> None:
    pilot, _pwm, adc = _bench_pilot()
    seen: list[PilotState | None] = []
    got = threading.Event()

    def on_state(state: PilotState | None, _t: float) -> None:
        seen.append(state)
        got.set()

    monitor = PilotMonitor(pilot, on_state, poll_interval=0.001, debounce_samples=3, invalid_samples=200)
    adc.inputs[2] = (12.0 + 15) / 30
    monitor.start()
    try:
        assert got.wait(1.0)
        assert seen == [PilotState.A]
        got.clear()
        adc.inputs[2] = (9.0 + 15) / 30
        assert got.wait(1.0)
        assert seen == [PilotState.A, PilotState.B]
        # A reading between bands never becomes a state; only a lasting one means the pilot is unreadable.
        got.clear()
        adc.inputs[2] = (7.5 + 15) / 30
        time.sleep(0.02)
        assert seen == [PilotState.A, PilotState.B]
        assert got.wait(1.0)
        assert seen == [PilotState.A, PilotState.B, None]
    finally:
        monitor.stop()
        pilot.close()


@pytest.mark.parametrize("reading", ["raises", 20.0, -15.0])
def test_a_dead_or_stuck_adc_is_reported_as_no_state(reading: str | float) -> None:
    pilot, _pwm, adc = _bench_pilot()
    seen: list[PilotState | None] = []
    got = threading.Event()
    real_read = pilot.read_voltage
    dead = threading.Event()

    def read() -> float:
        if not dead.is_set():
            return real_read()
        if reading == "raises":
            raise OSError("SPI transfer failed")
        return float(reading)  # +20 V: a broken front end; -15 V: an MCP3008 stuck at 0

    pilot.read_voltage = read  # type: ignore[method-assign]
    monitor = PilotMonitor(pilot, lambda s, t: (seen.append(s), got.set()), poll_interval=0.001,
                           invalid_samples=10)
    adc.inputs[2] = (6.0 + 15) / 30
    monitor.start()
    try:
        assert got.wait(1.0) and seen == [PilotState.C]
        got.clear()
        dead.set()
        assert got.wait(1.0) and seen == [PilotState.C, None]
        time.sleep(0.03)
        assert seen == [PilotState.C, None]  # reported once, not on every poll
    finally:
        monitor.stop()
        pilot.close()


def test_monitor_survives_adc_failures_and_counts_them() -> None:
    pilot, _pwm, adc = _bench_pilot()
    calls = {"n": 0}
    real_read = pilot.read_voltage

    def flaky() -> float:
        calls["n"] += 1
        if calls["n"] <= 5:
            raise OSError("SPI transfer failed")
        return real_read()

    pilot.read_voltage = flaky  # type: ignore[method-assign]
    got = threading.Event()
    monitor = PilotMonitor(pilot, lambda s, t: got.set(), poll_interval=0.001)
    adc.inputs[2] = (9.0 + 15) / 30
    monitor.start()
    try:
        assert got.wait(1.0), "the monitor stopped after ADC errors"
        assert monitor.read_errors == 5
        assert monitor.state is PilotState.B
    finally:
        monitor.stop()
        pilot.close()


@pytest.mark.parametrize(
    ("state", "level", "label"),
    [(PilotState.B, 1.0, "B1"), (PilotState.B, 0.5, "B2"), (PilotState.C, 1.0, "C1"), (PilotState.C, 0.26, "C2"),
     (PilotState.D, 0.5, "D2"), (PilotState.A, 1.0, "A"), (PilotState.F, 0.0, "F"), (None, 1.0, "invalid")],
)
def test_x1_and_x2_tell_a_steady_pilot_from_a_running_pwm(state: PilotState | None, level: float, label: str) -> None:
    assert pilot_label(state, level) == label


def test_the_diode_check_reads_the_low_half_only_while_the_pwm_runs() -> None:
    factory = make_factory()
    adc = MockMcp3008(factory)
    factory.pin(18, pin_class=WatchedPWMPin)
    pilot = GpioPilot(pwm_pin=18, adc_channel=2, adc_low_channel=3, pin_factory=factory)
    diode: list[tuple[bool, int]] = []
    got = threading.Event()

    def on_diode(ok: bool, epoch: int, _t: float) -> None:
        diode.append((ok, epoch))
        got.set()

    monitor = PilotMonitor(pilot, lambda s, t: None, poll_interval=0.001, diode_callback=on_diode)
    adc.inputs[2], adc.inputs[3] = (9.0 + 15) / 30, (9.0 + 15) / 30  # B1: steady, no low half
    monitor.start()
    try:
        time.sleep(0.05)
        assert diode == []  # nothing to check without a PWM
        adc.inputs[3] = (-12.0 + 15) / 30
        pilot.offer_current(16)
        assert got.wait(1.0) and diode == [(True, 1)]
        got.clear()
        adc.inputs[3] = (-9.0 + 15) / 30  # the low half mirrors the high one: no diode
        assert got.wait(1.0) and diode == [(True, 1), (False, 1)]
        got.clear()
        pilot.stop_offer()
        adc.inputs[3] = (-12.0 + 15) / 30
        pilot.offer_current(16)  # a new PWM run needs its own check
        assert got.wait(1.0) and diode[-1] == (True, 2)
    finally:
        monitor.stop()
        pilot.close()


def test_monitor_polls_slowly_only_while_nothing_can_be_energised() -> None:
    pilot, _pwm, adc = _bench_pilot()
    seen: list[PilotState | None] = []
    monitor = PilotMonitor(pilot, lambda state, _t: seen.append(state), poll_interval=0.002, debounce_samples=2,
                           idle_interval=0.05)
    adc.inputs[2] = (12.0 + 15) / 30
    pilot.stop_offer()  # steady +12 V: no PWM
    monitor.start()
    try:
        time.sleep(0.3)
        before = adc.reads
        time.sleep(0.5)
        idle = adc.reads - before
        assert seen == [PilotState.A] and idle <= 15  # about 10 at 50 ms, not 250 at 2 ms
        pilot.offer_current(16)  # PWM running: the fast period
        before = adc.reads
        time.sleep(0.5)
        assert adc.reads - before >= 100
        pilot.stop_offer()
        adc.inputs[2] = (9.0 + 15) / 30  # a vehicle arrives while idle: seen within two slow periods and a bit
        started = time.monotonic()
        while PilotState.B not in seen and time.monotonic() - started < 1.0:
            time.sleep(0.005)
        assert PilotState.B in seen and time.monotonic() - started < 0.2
    finally:
        monitor.stop()
        pilot.close()


def test_monitor_polls_at_the_steady_rate_once_state_and_diode_are_confirmed() -> None:
    factory = make_factory()
    adc = MockMcp3008(factory)
    factory.pin(18, pin_class=WatchedPWMPin)
    pilot = GpioPilot(pwm_pin=18, adc_channel=2, adc_low_channel=3, pin_factory=factory)
    seen: list[tuple[PilotState | None, float]] = []
    diode: list[tuple[bool, int, float]] = []
    monitor = PilotMonitor(pilot, lambda state, t: seen.append((state, t)), poll_interval=0.002,
                           steady_interval=0.05, idle_interval=0.05,
                           diode_callback=lambda ok, epoch, t: diode.append((ok, epoch, t)))
    adc.inputs[2], adc.inputs[3] = (6.0 + 15) / 30, (-12.0 + 15) / 30  # C with a diode
    pilot.offer_current(16)
    started = time.monotonic()
    monitor.start()
    try:
        time.sleep(0.3)
        # The diode check and the state were confirmed at the fast rate, within a few 2 ms polls.
        assert diode[0][:2] == (True, 1) and diode[0][2] - started < 0.05
        assert seen[0][0] is PilotState.C and seen[0][1] - started < 0.05
        before = adc.reads
        time.sleep(0.5)
        assert adc.reads - before <= 2 * 14  # two channels every 50 ms, not every 2 ms (500)
        adc.inputs[2] = (9.0 + 15) / 30  # the EV stops: seen within one steady period, confirmed fast
        changed = time.monotonic()
        while seen[-1][0] is not PilotState.B and time.monotonic() - changed < 1.0:
            time.sleep(0.002)
        assert seen[-1][0] is PilotState.B and seen[-1][1] - changed < 0.05 + 0.02
        pilot.offer_current(20)  # the same PWM run: nothing to check again, still steady
        pilot.stop_offer()
        adc.inputs[3] = (9.0 + 15) / 30  # B1: no low half to read
        pilot.offer_current(16)  # a new PWM run, without a diode now: checked at the fast rate
        adc.inputs[3] = (-9.0 + 15) / 30
        rerun = time.monotonic()
        while len(diode) < 2 and time.monotonic() - rerun < 1.0:
            time.sleep(0.002)
        assert diode[1][:2] == (False, 2) and diode[1][2] - rerun < 0.05 + 0.02
    finally:
        monitor.stop()
        pilot.close()


class _ScriptedPilot:
    """A pilot in C with a diode whose PWM stops right after one low-half sample that read no diode."""

    measures_low = True

    def __init__(self) -> None:
        self.output_level, self.pwm_epoch = 16 / 60, 1  # 26.7 % duty: 16 A offered
        self.reads = 0
        self.glitch_at: float | None = None

    def read_voltage(self) -> float:
        self.reads += 1
        return 6.0

    def read_low_voltage(self) -> float:
        if self.glitch_at is not None and self.output_level < 1.0 and time.monotonic() >= self.glitch_at:
            self.output_level = 1.0  # the offer ends (steady +12 V) after this very sample
            return -9.0  # the low half mirrors the high one: one sample that says "no diode"
        return -12.0


def test_a_half_confirmed_diode_result_is_forgotten_when_the_pwm_stops() -> None:
    # A lone "no diode" sample is one of three needed; had the monitor kept it once the PWM stopped (no check to
    # finish), it would poll at the fast rate for good: 500 reads a second instead of 20.
    pilot = _ScriptedPilot()
    diode: list[bool] = []
    monitor = PilotMonitor(pilot, lambda s, t: None, poll_interval=0.002, steady_interval=0.05,  # type: ignore[arg-type]
                           idle_interval=0.05, debounce_samples=3, diode_callback=lambda ok, e, t: diode.append(ok))
    monitor.start()
    try:
        started = time.monotonic()
        while not diode and time.monotonic() - started < 2.0:
            time.sleep(0.005)
        assert diode == [True]
        pilot.glitch_at = time.monotonic()
        time.sleep(0.2)
        assert pilot.output_level == 1.0  # the lone sample was taken, then the PWM stopped
        before = pilot.reads
        time.sleep(0.5)
        assert diode == [True] and pilot.reads - before <= 50  # steady: about 10 at 50 ms; kept, about 250
    finally:
        monitor.stop()
