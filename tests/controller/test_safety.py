"""The safety supervisor on its own: every closing condition, the IEC stop grace at its default, bounded records."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from controller.config import default_config
from controller.safety import SafetySupervisor
from hal.gpio_contactor import GpioContactor
from hal.gpio_pilot import GpioPilot
from hal.pilot import PilotState
from hil.gpio import MockMcp3008, WatchedPin, WatchedPWMPin, make_factory

C, B = PilotState.C, PilotState.B


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Channel:
    """One supervised connector on mock pins: a pilot that reads the low half, a contactor, a fake clock."""

    def __init__(self) -> None:
        factory = make_factory()
        MockMcp3008(factory)
        factory.pin(18, pin_class=WatchedPWMPin)
        self.coil = factory.pin(17, pin_class=WatchedPin)
        self.pilot = GpioPilot(pwm_pin=18, adc_channel=0, adc_low_channel=1, pin_factory=factory)
        self.contactor = GpioContactor(pin=17, pin_factory=factory)
        self.clock = FakeClock()
        self.supervisor = SafetySupervisor(self.clock)
        defaults = default_config().connector[0]
        # The IEC C1 timeout as shipped: no test override.
        self.supervisor.add(1, self.contactor, self.pilot, defaults.contactor.feedback_delay,
                            ev_stop_timeout=defaults.pilot.ev_stop_timeout)

    def charging(self) -> None:
        """Everything holds and the contactor is closed."""
        sup = self.supervisor
        sup.set_permit(1, True)
        self.pilot.offer_current(16)
        sup.on_diode(1, True, self.pilot.pwm_epoch)
        sup.on_pilot(1, C)
        assert sup.request_close(1) and self.coil.state

    def close(self) -> None:
        self.contactor.shutdown()
        self.pilot.close()


@pytest.fixture
def channel() -> Iterator[Channel]:
    ch = Channel()
    yield ch
    ch.close()


def test_a_diode_seen_in_an_earlier_pwm_run_does_not_count(channel: Channel) -> None:
    sup, pilot = channel.supervisor, channel.pilot
    channel.charging()
    sup.on_pilot(1, B)
    pilot.stop_offer()
    pilot.offer_current(16)  # a new PWM run: the EV must show its diode again
    sup.on_pilot(1, C)
    assert not sup.request_close(1) and not channel.coil.state
    assert "diode not checked during this PWM run" in sup.blocked_by(1)
    sup.on_diode(1, True, pilot.pwm_epoch - 1)  # a late result of the old run
    assert not sup.request_close(1)
    sup.on_diode(1, True, pilot.pwm_epoch)
    assert sup.request_close(1) and channel.coil.state


def test_each_closing_condition_blocks_on_its_own(channel: Channel) -> None:
    sup, pilot = channel.supervisor, channel.pilot
    sup.require(1, "rcm")
    sup.set_interlock(1, "rcm", True)
    channel.charging()
    sup.open(1)
    for blocker, undo, redo in (
        ("no permit", lambda: sup.set_permit(1, False), lambda: sup.set_permit(1, True)),
        ("pilot not in C or D", lambda: sup.on_pilot(1, B), lambda: sup.on_pilot(1, C)),
        ("rcm not ready", lambda: sup.set_interlock(1, "rcm", False), lambda: sup.set_interlock(1, "rcm", True)),
    ):
        undo()
        assert not sup.request_close(1), blocker
        assert sup.blocked_by(1) == [blocker]
        redo()
    pilot.stop_offer()
    assert sup.blocked_by(1) == ["no PWM"]
    pilot.offer_current(16)
    assert sup.blocked_by(1) == ["diode not checked during this PWM run"]
    sup.on_diode(1, True, pilot.pwm_epoch)
    assert sup.blocked_by(1) == [] and sup.request_close(1)


def test_an_ev_that_stays_in_c_is_cut_off_after_the_iec_6_s(channel: Channel) -> None:
    sup, pilot = channel.supervisor, channel.pilot
    channel.charging()
    pilot.stop_offer()  # the IEC way to stop: PWM first ...
    sup.set_permit(1, False)  # ... then the permit; the EV in C gets its time
    sup.check_stop_timeout(1)
    channel.clock.now += 5.99
    sup.check_stop_timeout(1)
    assert channel.coil.state  # still within the IEC 61851-1 time to react
    channel.clock.now += 0.02
    sup.check_stop_timeout(1)
    assert not channel.coil.state
    assert sup.trips[-1][2] == "EV still in C after the PWM stopped; opened under load"


def test_a_permit_withdrawn_while_the_pwm_still_offers_opens_at_once(channel: Channel) -> None:
    channel.charging()
    channel.supervisor.set_permit(1, False)
    assert not channel.coil.state
