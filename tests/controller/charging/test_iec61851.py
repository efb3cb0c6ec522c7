"""IEC 61851 on the pilot, on its own: states to conditions and faults, the diode per PWM run, the PWM offer rules."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from controller.charging.iec61851 import PWM_RAISE_INTERVAL, WAKEUP_PULSE, Iec61851
from controller.clock import Clock
from controller.config import PilotSection
from controller.domain.faults import Fault
from controller.domain.types import PowerLimit
from controller.evse.port import VehicleStatus
from controller.safety.supervisor import SafetySupervisor
from hal.gpio_contactor import GpioContactor
from hal.gpio_pilot import GpioPilot
from hal.meter import MeterReading
from hal.pilot import PilotState
from hil.gpio import MockMcp3008, WatchedPin, WatchedPWMPin, make_factory

A, B, C, D, E, F = (PilotState.A, PilotState.B, PilotState.C, PilotState.D, PilotState.E, PilotState.F)


class StepClock(Clock):
    """Monotonic time the test moves by hand."""

    def __init__(self) -> None:
        super().__init__()
        self.now = 100.0

    def monotonic(self) -> float:
        return self.now


class Link:
    """What the EVSE would hear: vehicle statuses, refreshes and limits, in order with the supervisor's faults."""

    def __init__(self, supervisor: SafetySupervisor) -> None:
        self.heard: list[object] = []
        self.reading: MeterReading | None = None
        supervisor.listeners.append(lambda _evse, faults: self.heard.append(set(faults)))

    def on_vehicle(self, status: VehicleStatus) -> None:
        self.heard.append(status)

    def refresh(self) -> None:
        self.heard.append("refresh")

    def set_limit(self, name: str, limit: PowerLimit | None) -> None:
        self.heard.append((name, limit))


class Outlet:
    def __init__(self, **pilot: object) -> None:
        factory = make_factory()
        MockMcp3008(factory)
        self.pwm = factory.pin(18, pin_class=WatchedPWMPin)
        self.coil = factory.pin(17, pin_class=WatchedPin)
        self.pilot = GpioPilot(pwm_pin=18, adc_channel=0, adc_low_channel=1, pin_factory=factory)
        self.contactor = GpioContactor(pin=17, pin_factory=factory)
        self.supervisor = SafetySupervisor()
        self.supervisor.add(1, self.contactor)
        self.clock = StepClock()
        self.iec = Iec61851(1, self.pilot, self.supervisor, PilotSection(**pilot), phases=3,  # type: ignore[arg-type]
                            to_loop=lambda callback, *args: callback(*args), clock=self.clock)
        self.link = Link(self.supervisor)
        self.iec.attach(self.link)
        self.pilot.stop_offer()

    def amps(self) -> float | None:
        return self.pilot.offered_current

    def close(self) -> None:
        self.contactor.shutdown()
        self.pilot.close()


@pytest.fixture
def outlet() -> Iterator[Outlet]:
    o = Outlet()
    yield o
    o.close()


def test_the_iec_defaults() -> None:
    assert (PWM_RAISE_INTERVAL, WAKEUP_PULSE) == (5.0, 4.0)
    settings = PilotSection()
    assert settings.ev_stop_timeout == 6.0 and settings.wakeup_after == 0.0


async def test_lowering_is_at_once_and_raising_waits_5_s_after_the_last_change(outlet: Outlet) -> None:
    iec, clock = outlet.iec, outlet.clock
    assert iec.offer(PowerLimit(amps=32)) and outlet.amps() == 32
    clock.now += 1.0
    assert iec.offer(PowerLimit(amps=10)) and outlet.amps() == 10  # lower: now
    clock.now += 4.9
    assert iec.offer(PowerLimit(amps=32)) and outlet.amps() == 10  # higher: not before 5 s
    clock.now += 0.1
    iec.offer(PowerLimit(amps=32))
    assert outlet.amps() == 32
    assert [round(d * 100, 2) for d in (outlet.pwm.state,)] == [53.33]
    clock.now += 6.0
    assert iec.offer(PowerLimit(amps=32)) and outlet.amps() == 32  # the same offer again is no change
    clock.now += 1.0
    assert iec.offer(PowerLimit(amps=40)) and outlet.amps() == 40  # so 7 s after the last change, a raise is due


async def test_a_raise_that_must_wait_comes_back_by_itself(outlet: Outlet) -> None:
    iec = outlet.iec
    iec.pwm_raise_interval = 0.05
    iec.offer(PowerLimit(amps=10))
    iec.offer(PowerLimit(amps=16))
    await asyncio.sleep(0.1)
    assert outlet.link.heard.count("refresh") == 1  # the EVSE is asked to look again when the wait is over


async def test_below_6_a_nothing_is_offered_resuming_waits_like_a_raise_and_watts_become_amps(outlet: Outlet) -> None:
    iec = outlet.iec
    assert iec.offer(PowerLimit(amps=32))
    assert not iec.offer(PowerLimit(amps=5.9)) and outlet.amps() is None and outlet.pwm.state == 1.0
    assert not outlet.supervisor.holds(1, "offer")
    outlet.clock.now += 4.9
    assert not iec.offer(PowerLimit(amps=32)) and outlet.amps() is None  # resuming from a pause is a raise
    outlet.clock.now += 0.1
    assert iec.offer(PowerLimit(amps=32, watts=11040)) and outlet.amps() == pytest.approx(16.0)  # 3 x 230 V
    assert iec.offer(PowerLimit(amps=100)) is True and outlet.amps() == pytest.approx(16.0)  # a raise waits
    iec.withdraw()  # the session ends
    assert iec.offer(PowerLimit()) and outlet.amps() == 80.0  # a new one starts at once; no limit: the PWM's most


async def test_watts_become_amps_with_the_measured_volts_and_the_phases_the_ev_draws_on(outlet: Outlet) -> None:
    iec = outlet.iec
    limit = PowerLimit(watts=11040)
    assert iec.offer(limit) and outlet.amps() == pytest.approx(16.0)  # nothing measured yet: 3 x 230 V
    iec.withdraw()
    # A weak supply (207 V) allows more amps for the same watts; a car on one phase takes them all on it.
    outlet.link.reading = MeterReading(0.0, voltage=(207.0, 207.0, 207.0), current=(0.0, 0.0, 0.0))
    assert iec.offer(limit) and outlet.amps() == pytest.approx(11040 / 621)
    iec.withdraw()
    outlet.link.reading = MeterReading(0.0, voltage=(230.0, 230.0, 230.0), current=(10.0, 0.1, 0.0))
    assert iec.offer(PowerLimit(watts=3680)) and outlet.amps() == pytest.approx(16.0)


async def test_each_pwm_run_needs_its_own_diode_check(outlet: Outlet) -> None:
    iec, sup, pilot = outlet.iec, outlet.supervisor, outlet.pilot
    iec.offer(PowerLimit(amps=16))
    assert not sup.holds(1, "diode")
    iec.on_diode(True, pilot.pwm_epoch, 0.0)
    assert sup.holds(1, "diode") and outlet.link.heard[-1] == "refresh"
    iec.withdraw()
    outlet.clock.now += 10
    iec.offer(PowerLimit(amps=16))  # a new run
    assert not sup.holds(1, "diode")
    iec.on_diode(True, pilot.pwm_epoch - 1, 0.0)  # a late result of the old run counts for nothing
    assert not sup.holds(1, "diode")
    iec.on_diode(False, pilot.pwm_epoch, 0.0)
    assert Fault.DIODE_FAULT in sup.faults(1)


async def test_pilot_states_become_conditions_faults_and_vehicle_statuses(outlet: Outlet) -> None:
    iec, sup = outlet.iec, outlet.supervisor
    iec.on_sample(B, 0.0)
    assert outlet.link.heard == [VehicleStatus.CONNECTED] and sup.vehicle(1) is True
    iec.on_sample(C, 0.0)
    assert sup.holds(1, "demand") and outlet.link.heard[-1] == VehicleStatus.REQUESTING
    iec.on_sample(D, 0.0)
    assert Fault.VENTILATION_NOT_AVAILABLE in sup.faults(1)
    iec.on_sample(E, 0.0)
    assert not sup.holds(1, "demand") and Fault.PILOT_FAULT in sup.faults(1)
    assert Fault.VENTILATION_NOT_AVAILABLE not in sup.faults(1)
    iec.on_sample(F, 0.0)  # the station drives no F: the CP is pulled there from outside
    assert Fault.PILOT_FAULT in sup.faults(1) and outlet.link.heard[-1] == VehicleStatus.ERROR
    iec.on_sample(None, 0.0)
    assert set(sup.faults(1)) == {Fault.PILOT_UNREADABLE} and outlet.link.heard[-1] == VehicleStatus.UNKNOWN
    iec.on_sample(A, 0.0)
    assert sup.faults(1) == {} and sup.vehicle(1) is False and outlet.link.heard[-2:] == [VehicleStatus.ABSENT, set()]


async def test_a_fault_reaches_the_evse_before_the_state_and_a_departure_before_a_released_latch(
        outlet: Outlet) -> None:
    iec, sup, heard = outlet.iec, outlet.supervisor, outlet.link.heard
    iec.on_sample(C, 0.0)
    heard.clear()
    iec.on_sample(E, 0.0)  # a short ends the session as a fault, not as an unplug
    assert heard == [{Fault.PILOT_FAULT}, VehicleStatus.ERROR]
    iec.on_sample(B, 0.0)
    sup.raise_fault(1, Fault.CONTACTOR_WELDED)
    sup.clear_fault(1, Fault.CONTACTOR_WELDED)  # latched until the vehicle leaves
    heard.clear()
    iec.on_sample(A, 0.0)
    assert heard == [VehicleStatus.ABSENT, set()]  # no car when the latch goes: no Preparing


async def test_a_vehicle_leaving_from_d_is_heard_before_the_fault_it_clears(outlet: Outlet) -> None:
    outlet.iec.on_sample(D, 0.0)  # no ventilation: a fault
    outlet.link.heard.clear()
    outlet.iec.on_sample(A, 0.0)
    assert outlet.link.heard == [VehicleStatus.ABSENT, set()]  # the EVSE knows there is no car when it recovers


async def test_an_offer_back_within_the_stop_grace_keeps_the_contactor_closed(outlet: Outlet) -> None:
    iec, sup, pilot = outlet.iec, outlet.supervisor, outlet.pilot
    sup.set_permit(1, True)
    iec.offer(PowerLimit(amps=16))
    iec.on_diode(True, pilot.pwm_epoch, 0.0)
    iec.on_sample(C, 0.0)
    assert sup.request_close(1) and outlet.coil.state
    assert not iec.offer(PowerLimit(amps=5))  # the site share drops below 6 A: PWM off, the grace runs
    outlet.clock.now += 1
    assert not iec.offer(PowerLimit(amps=16))  # resuming is a raise: not within 5 s of the pause
    outlet.clock.now += 4
    assert iec.offer(PowerLimit(amps=16))  # back within the 6 s grace: a new PWM run, the EV still drawing
    assert outlet.coil.state  # not cut under load for a diode it already showed
    assert not sup.holds(1, "diode")  # but a next close waits for this run's check
    iec.on_diode(True, pilot.pwm_epoch, 0.0)
    assert sup.blocked_by(1) == []


async def test_d_charges_where_the_site_ventilates() -> None:
    outlet = Outlet(ventilation=True)
    try:
        outlet.iec.on_sample(D, 0.0)
        assert outlet.supervisor.faults(1) == {} and outlet.supervisor.holds(1, "demand")
    finally:
        outlet.close()


async def test_the_wake_up_pulse_is_the_stations_own_f(outlet: Outlet) -> None:
    iec = outlet.iec
    iec.wakeup_after, iec.wakeup_pulse = 0.05, 0.05
    iec.on_sample(B, 0.0)
    iec.offer(PowerLimit(amps=16))
    await asyncio.sleep(0.07)
    assert outlet.pwm.state == 0.0 and not outlet.supervisor.holds(1, "offer")  # state F: the pulse
    iec.on_sample(F, 0.0)
    assert outlet.supervisor.faults(1) == {}  # our own F is no fault and no unplug
    await asyncio.sleep(0.07)
    assert outlet.pwm.state == 1.0 and outlet.link.heard[-1] == "refresh"  # back to B1; the EVSE offers again
    iec.on_sample(B, 0.0)  # the car sleeps on
    iec.offer(PowerLimit(amps=16))
    await asyncio.sleep(0.1)  # timers run in deadline order: a second pulse would be due within this wait
    assert outlet.pwm.state not in (0.0, 1.0)  # once per session: the PWM stands
    iec.on_sample(F, 0.0)  # F the station is not driving: a pilot fault again
    assert Fault.PILOT_FAULT in outlet.supervisor.faults(1)


async def test_a_session_ended_takes_its_wake_up_timer_with_it(outlet: Outlet) -> None:
    iec = outlet.iec
    iec.wakeup_after = 0.1
    iec.on_sample(B, 0.0)
    iec.offer(PowerLimit(amps=16))
    await asyncio.sleep(0.05)
    iec.withdraw()
    iec.release(unlock=True)  # the session ends; the car stays, asleep in B
    iec.offer(PowerLimit(amps=16))  # the next session: its own full wait before a pulse
    await asyncio.sleep(0.08)  # past the first session's deadline, short of the second's
    assert outlet.pwm.state not in (0.0, 1.0)
    await asyncio.sleep(0.05)
    assert outlet.pwm.state == 0.0


async def test_a_session_ended_during_the_pulse_hears_f_as_a_fault_again(outlet: Outlet) -> None:
    iec = outlet.iec
    iec.wakeup_after, iec.wakeup_pulse = 0.02, 10.0
    iec.on_sample(B, 0.0)
    iec.offer(PowerLimit(amps=16))
    await asyncio.sleep(0.05)
    assert outlet.pwm.state == 0.0  # the pulse
    iec.withdraw()
    iec.release(unlock=True)  # e.g. a remote stop: the station drives +12 V again
    assert outlet.pwm.state == 1.0
    iec.on_sample(F, 0.0)
    assert Fault.PILOT_FAULT in outlet.supervisor.faults(1)


async def test_no_wake_up_pulse_once_the_vehicle_left_b(outlet: Outlet) -> None:
    iec = outlet.iec
    iec.wakeup_after = 0.05
    iec.on_sample(B, 0.0)
    iec.offer(PowerLimit(amps=16))
    iec.on_sample(E, 0.0)  # a short before the EVSE withdrew the offer: the PWM still runs
    await asyncio.sleep(0.1)
    assert outlet.pwm.state not in (0.0, 1.0) and Fault.PILOT_FAULT in outlet.supervisor.faults(1)
