"""DC outlet guards: each raises its catalogue fault through the supervisor, which opens the contactor."""

from __future__ import annotations

import pytest

from controller.domain.faults import Fault
from controller.safety.dc import DcGuards, emergency_limit, insulation_fault_below
from controller.safety.supervisor import PERMIT, SafetySupervisor
from hal.dc_io import EmergencyStop
from hal.dc_power import DcPowerStage, PowerCapabilities, PowerReading
from hal.gpio_contactor import GpioContactor
from hil.gpio import WatchedPin, make_factory


class Stage(DcPowerStage):
    """A stage whose driver callback the test calls (the driver's side is tested in tests/hal)."""

    async def open(self) -> PowerCapabilities:
        return self.capabilities

    @property
    def capabilities(self) -> PowerCapabilities:
        return PowerCapabilities(50, 500, 125, 50_000)

    def set(self, voltage: float, current: float) -> None:
        pass

    def shut_off(self) -> None:
        pass

    @property
    def reading(self) -> PowerReading:
        return PowerReading(0.0, 0.0, False)

    async def close(self) -> None:
        pass


class Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


Rig = tuple[DcGuards, SafetySupervisor, WatchedPin, WatchedPin, Stage, Clock]


@pytest.fixture
def rig() -> Rig:
    factory = make_factory()
    loop_pin, coil = factory.pin(26, pin_class=WatchedPin), factory.pin(17, pin_class=WatchedPin)
    supervisor = SafetySupervisor()
    supervisor.add(1, GpioContactor(pin=17, pin_factory=factory))
    supervisor.set_condition(1, PERMIT, True)
    stage, clock = Stage(), Clock()
    guards = DcGuards(1, supervisor, stage, estop=EmergencyStop(pin=26, pin_factory=factory), clock=clock)
    loop_pin.drive_high()  # the loop is closed: not pressed
    guards.start()
    assert supervisor.request_close(1) and coil.state
    return guards, supervisor, loop_pin, coil, stage, clock


def test_the_emergency_stop_opens_from_the_thread_that_saw_it(rig: Rig) -> None:
    _, supervisor, loop_pin, coil, _, _ = rig
    loop_pin.drive_low()  # gpiozero calls the edge in this thread
    assert not coil.state and Fault.EMERGENCY_STOP in supervisor.faults(1)
    loop_pin.drive_high()
    assert Fault.EMERGENCY_STOP not in supervisor.faults(1)


def test_an_estop_pressed_at_boot_is_a_fault_at_once() -> None:
    factory = make_factory()
    supervisor = SafetySupervisor()
    supervisor.add(1, GpioContactor(pin=17, pin_factory=factory))
    guards = DcGuards(1, supervisor, Stage(), estop=EmergencyStop(pin=26, pin_factory=factory), clock=Clock())
    guards.start()  # nothing drives the loop: open
    assert Fault.EMERGENCY_STOP in supervisor.faults(1)


def test_a_power_stage_fault_opens_and_clears(rig: Rig) -> None:
    _, supervisor, _, coil, stage, _ = rig
    assert stage.on_fault is not None
    stage.on_fault(frozenset({"module 2: output over-voltage"}))
    assert not coil.state
    assert supervisor.faults(1) == {Fault.POWER_STAGE_FAULT: "module 2: output over-voltage"}
    stage.on_fault(frozenset())
    assert supervisor.faults(1) == {}


@pytest.mark.parametrize(("maximum", "limit"), [(410, 550), (500, 550), (600, 825), (800, 935), (950, 1100),
                                                (1200, 1375)])
def test_the_emergency_limits_follow_iec_61851_23(maximum: float, limit: float) -> None:
    assert emergency_limit(maximum) == limit


def test_above_the_emergency_limit_opens_at_once(rig: Rig) -> None:
    guards, supervisor, _, coil, _, _ = rig
    guards.check_voltage(551.0, 435.0)
    assert not coil.state and "above the emergency limit 550 V" in supervisor.faults(1)[Fault.OVER_VOLTAGE]


def test_above_the_maximum_opens_after_400_ms(rig: Rig) -> None:
    guards, supervisor, _, coil, _, clock = rig
    guards.check_voltage(440.0, 435.0)
    clock.now = 0.39
    guards.check_voltage(440.0, 435.0)
    assert coil.state
    clock.now = 0.41
    guards.check_voltage(440.0, 435.0)
    assert not coil.state and Fault.OVER_VOLTAGE in supervisor.faults(1)


def test_a_dip_below_the_maximum_restarts_the_400_ms(rig: Rig) -> None:
    guards, _, _, coil, _, clock = rig
    guards.check_voltage(440.0, 435.0)
    clock.now = 0.3
    guards.check_voltage(430.0, 435.0)
    clock.now = 0.5
    guards.check_voltage(440.0, 435.0)
    clock.now = 0.8
    guards.check_voltage(440.0, 435.0)
    assert coil.state


def test_insulation_below_the_fault_level_while_charging_opens(rig: Rig) -> None:
    guards, supervisor, _, coil, _, _ = rig
    assert insulation_fault_below(400.0) == 100_000.0 and insulation_fault_below(1500.0) == 150_000.0
    guards.check_insulation(120_000.0, 400.0)
    assert coil.state
    guards.check_insulation(80_000.0, 400.0)
    assert not coil.state and Fault.INSULATION_FAULT in supervisor.faults(1)
