"""The safety supervisor on its own: named closing conditions, the stop grace at its default, faults, latches."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from controller.config import default_config
from controller.domain.faults import Fault
from controller.safety.supervisor import HISTORY, SafetySupervisor
from hal.gpio_contactor import GpioContactor
from hil.gpio import WatchedPin, make_factory


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Channel:
    """One supervised EVSE on mock pins with the AC conditions, a fake clock and a hook before opening."""

    def __init__(self, mirror: bool = False) -> None:
        factory = make_factory()
        self.coil = factory.pin(17, pin_class=WatchedPin)
        self.mirror = factory.pin(27, pin_class=WatchedPin) if mirror else None
        self.contactor = GpioContactor(pin=17, mirror_pin=27 if mirror else None, pin_factory=factory)
        self.clock = FakeClock()
        self.supervisor = SafetySupervisor(self.clock)
        self.hooked: list[bool] = []
        defaults = default_config().connector[0]
        # The IEC C1 stop time as shipped: no test override.
        self.supervisor.add(1, self.contactor, defaults.contactor.feedback_delay,
                            stop_grace=defaults.pilot.ev_stop_timeout,
                            before_open=lambda: self.hooked.append(bool(self.coil.state)))
        for name in ("demand", "diode", "rcm"):
            self.supervisor.require(1, name)
        self.supervisor.require(1, "offer", graceful=True)

    def all_hold(self) -> None:
        for name in ("permit", "demand", "offer", "diode", "rcm"):
            self.supervisor.set_condition(1, name, True)

    def charging(self) -> None:
        self.all_hold()
        assert self.supervisor.request_close(1) and self.coil.state

    def close(self) -> None:
        self.contactor.shutdown()


@pytest.fixture
def channel() -> Iterator[Channel]:
    ch = Channel()
    yield ch
    ch.close()


def test_every_named_condition_blocks_on_its_own(channel: Channel) -> None:
    sup = channel.supervisor
    assert sup.blocked_by(1) == ["permit", "demand", "diode", "rcm", "offer"]
    channel.all_hold()
    for name in ("permit", "demand", "offer", "diode", "rcm"):
        sup.set_condition(1, name, False)
        assert not sup.request_close(1) and not channel.coil.state
        assert sup.blocked_by(1) == [name]
        sup.set_condition(1, name, True)
    assert sup.blocked_by(1) == [] and sup.request_close(1)


def test_losing_a_condition_opens_at_once_from_the_thread_that_saw_it(channel: Channel) -> None:
    for name in ("demand", "diode", "rcm"):
        channel.charging()
        thread = threading.Thread(target=channel.supervisor.set_condition, args=(1, name, False))
        thread.start()
        thread.join()
        assert not channel.coil.state, name
        assert channel.supervisor.trips[-1][2] == f"{name} lost"
    assert channel.hooked == [True, True, True]  # the hook ran before each opening, with the coil still on


def test_a_withdrawn_offer_opens_only_after_the_iec_6_s(channel: Channel) -> None:
    sup = channel.supervisor
    channel.charging()
    sup.set_condition(1, "offer", False)  # the IEC way to stop: PWM first ...
    sup.set_permit(1, False)  # ... then the permit; the EV in C gets its time
    channel.clock.now += 5.99
    sup.check_stop_grace(1)
    assert channel.coil.state  # still within the IEC 61851-1 time to react
    channel.clock.now += 0.02
    sup.check_stop_grace(1)
    assert not channel.coil.state
    assert sup.trips[-1][1:] == (1, "vehicle still drawing after the stop grace; opened under load")


def test_the_vehicle_stopping_within_the_grace_opens_at_once(channel: Channel) -> None:
    channel.charging()
    channel.supervisor.set_condition(1, "offer", False)
    channel.supervisor.set_condition(1, "demand", False)  # the EV goes to B
    assert not channel.coil.state


def test_a_permit_withdrawn_while_the_offer_stands_opens_at_once(channel: Channel) -> None:
    channel.charging()
    channel.supervisor.set_permit(1, False)
    assert not channel.coil.state


def test_a_fault_opens_blocks_and_takes_the_permit_with_it(channel: Channel) -> None:
    sup = channel.supervisor
    channel.charging()
    sup.raise_fault(1, Fault.PILOT_FAULT, "pilot state E")
    assert not channel.coil.state and sup.faults(1) == {Fault.PILOT_FAULT: "pilot state E"}
    assert sup.trips[-1][1:] == (1, Fault.PILOT_FAULT.info.code)  # which connector, and why
    assert not sup.request_close(1)
    sup.clear_fault(1, Fault.PILOT_FAULT)
    assert sup.blocked_by(1) == ["permit"]  # the session logic must grant energy again
    sup.raise_fault(1, Fault.RCM_TRIP)  # no detail: the catalogue says what it is
    assert sup.faults(1) == {Fault.RCM_TRIP: Fault.RCM_TRIP.info.description}


def test_a_latched_fault_waits_for_the_vehicle_to_leave_and_a_repeat_rearms_it(channel: Channel) -> None:
    sup = channel.supervisor
    sup.set_vehicle(1, True)
    sup.raise_fault(1, Fault.RCM_TRIP)
    sup.clear_fault(1, Fault.RCM_TRIP)
    assert Fault.RCM_TRIP in sup.faults(1)  # its cause is gone, the vehicle is not
    sup.raise_fault(1, Fault.RCM_TRIP)  # tripped again before the vehicle left: the earlier all-clear is void
    sup.set_vehicle(1, False)
    assert Fault.RCM_TRIP in sup.faults(1)
    sup.set_vehicle(1, True)
    sup.clear_fault(1, Fault.RCM_TRIP)
    sup.set_vehicle(1, False)
    assert sup.faults(1) == {}


def test_a_forced_clear_releases_a_latch_with_the_vehicle_connected(channel: Channel) -> None:
    sup = channel.supervisor
    sup.set_vehicle(1, True)
    sup.raise_fault(1, Fault.RCM_TRIP)
    sup.clear_fault(1, Fault.RCM_TRIP, force=True)
    assert sup.faults(1) == {}


def test_every_listener_hears_each_change_and_a_failing_one_does_not_stop_the_others(channel: Channel) -> None:
    heard: list[dict[Fault, str]] = []

    def broken(_evse: int, _faults: dict[Fault, str]) -> None:
        raise RuntimeError("listener bug")

    channel.supervisor.listeners += [broken, lambda _evse, faults: heard.append(faults)]
    channel.supervisor.raise_fault(1, Fault.OVER_TEMPERATURE, "90 C")
    channel.supervisor.clear_fault(1, Fault.OVER_TEMPERATURE)
    assert heard == [{Fault.OVER_TEMPERATURE: "90 C"}, {}]


def test_trips_and_history_stay_bounded_in_a_long_running_daemon(channel: Channel) -> None:
    for _ in range(HISTORY + 500):
        channel.charging()
        channel.supervisor.set_condition(1, "demand", False)
        channel.supervisor.raise_fault(1, Fault.OVER_TEMPERATURE)
        channel.supervisor.clear_fault(1, Fault.OVER_TEMPERATURE)
        channel.supervisor.set_permit(1, True)
    assert len(channel.supervisor.trips) == HISTORY and len(channel.supervisor.history) == HISTORY


def test_open_all_withdraws_every_permit(channel: Channel) -> None:
    channel.charging()
    channel.supervisor.open_all()
    assert not channel.coil.state and channel.supervisor.blocked_by(1) == ["permit"]


def test_an_unknown_condition_is_a_programming_error(channel: Channel) -> None:
    with pytest.raises(KeyError, match="no condition 'insulation'"):
        channel.supervisor.set_condition(1, "insulation", True)


def test_the_watch_catches_a_weld_after_the_feedback_delay() -> None:
    ch = Channel(mirror=True)
    try:
        assert ch.mirror is not None
        ch.mirror.drive_low()  # NC mirror made: contacts open
        ch.charging()
        ch.mirror.drive_high()  # closed, as they should be
        ch.supervisor.set_condition(1, "demand", False)  # opened; the mirror still says closed
        ch.supervisor.check_feedback(1)
        assert Fault.CONTACTOR_WELDED not in ch.supervisor.faults(1)  # still within feedback_delay
        ch.clock.now += 0.2
        ch.supervisor.check_feedback(1)
        assert Fault.CONTACTOR_WELDED in ch.supervisor.faults(1)
    finally:
        ch.close()


def test_the_grace_ends_at_6_s_exactly(channel: Channel) -> None:
    sup = channel.supervisor
    channel.charging()
    sup.set_condition(1, "offer", False)
    sup.set_permit(1, False)
    channel.clock.now += 6.0
    sup.check_stop_grace(1)
    assert not channel.coil.state


def test_a_permit_gone_during_the_grace_still_opens_when_the_offer_comes_back(channel: Channel) -> None:
    sup = channel.supervisor
    channel.charging()
    sup.set_condition(1, "offer", False)
    sup.set_permit(1, False)  # the stop grace runs
    sup.set_condition(1, "offer", True)  # a PWM again (a new offer) before the EV stopped: still no permit
    sup.check_stop_grace(1)
    channel.clock.now += 6.01
    sup.check_stop_grace(1)
    assert not channel.coil.state  # without a permit the contactor opens when the grace is over


def test_boot_self_test_catches_a_contactor_that_does_not_close() -> None:
    ch = Channel(mirror=True)
    try:
        assert ch.mirror is not None
        ch.mirror.drive_low()  # NC mirror made: contacts open, and they stay that way
        ch.supervisor.set_vehicle(1, False)  # the pilot reads A: nobody at the outlet
        assert not ch.supervisor.self_test(1)
        assert ch.supervisor.faults(1) == {Fault.CONTACTOR_FAILED_TO_CLOSE: "boot self-test: did not close"}
        assert not ch.contactor.commanded_closed
        ch.all_hold()
        assert not ch.supervisor.request_close(1)  # a faulted contactor is never closed again
    finally:
        ch.close()


def test_boot_self_test_catches_a_welded_contactor() -> None:
    ch = Channel(mirror=True)
    try:
        assert ch.mirror is not None
        ch.mirror.drive_high()  # NC mirror open: the main contacts are closed, and they stay closed
        ch.supervisor.set_vehicle(1, False)
        assert not ch.supervisor.self_test(1)
        assert ch.supervisor.faults(1) == {Fault.CONTACTOR_WELDED: "boot self-test: did not open"}
        assert not ch.contactor.commanded_closed
    finally:
        ch.close()


def test_no_self_test_with_a_vehicle_connected() -> None:
    ch = Channel(mirror=True)
    try:
        ch.supervisor.set_vehicle(1, True)
        assert ch.supervisor.self_test(1) and not ch.coil.state
    finally:
        ch.close()


def test_a_close_only_condition_blocks_closing_but_never_opens(channel: Channel) -> None:
    sup = channel.supervisor
    sup.require(1, "checked", close_only=True)
    sup.set_condition(1, "checked", True)
    channel.charging()
    sup.set_condition(1, "checked", False)  # e.g. a new PWM run that has not shown its diode yet
    assert channel.coil.state
    sup.open(1)
    assert not sup.request_close(1) and sup.blocked_by(1) == ["checked"]


def test_no_self_test_while_nobody_knows_whether_a_vehicle_is_there() -> None:
    ch = Channel(mirror=True)
    try:
        assert ch.supervisor.vehicle(1) is None  # the pilot read E, F, or nothing yet
        assert ch.supervisor.self_test(1) and not ch.coil.state
    finally:
        ch.close()


def test_a_dc_ending_at_5_a_holds_the_contactors_past_the_grace_but_not_past_its_hold() -> None:
    factory = make_factory()
    coil = factory.pin(17, pin_class=WatchedPin)
    contactor = GpioContactor(pin=17, pin_factory=factory)
    clock = FakeClock()
    amps = [120.0]
    sup = SafetySupervisor(clock)
    sup.add(1, contactor, stop_grace=1.0, current_safe=lambda: amps[0] <= 5, hold_limit=12.0)
    sup.require(1, "link", graceful=True)
    try:
        for name in ("permit", "link"):
            sup.set_condition(1, name, True)
        assert sup.request_close(1)
        sup.set_condition(1, "link", False)  # the car went silent: the ramp down starts
        sup.check_stop_grace(1)
        clock.now += 1.01
        sup.check_stop_grace(1)
        assert not coil.state  # past the grace and still at 120 A: opened under load
        assert sup.trips[-1][2] == "vehicle still drawing after the stop grace; opened under load"
        sup.set_condition(1, "link", True)
        assert sup.request_close(1)
        sup.set_condition(1, "link", False)
        amps[0] = 2.0  # the current came down: the car opens its contactors, welding detection follows
        sup.check_stop_grace(1)
        clock.now += 5.0
        sup.check_stop_grace(1)
        assert coil.state  # held: the protocol's ending decides
        amps[0] = 30.0
        sup.check_stop_grace(1)
        assert not coil.state  # current again: the hold is over at once
        sup.set_condition(1, "link", True)
        assert sup.request_close(1)
        sup.set_condition(1, "link", False)
        amps[0] = 1.0
        sup.check_stop_grace(1)
        clock.now += 1.0 + 12.01
        sup.check_stop_grace(1)
        assert not coil.state  # the hold is bounded
        assert sup.trips[-1][2] == "the protocol's ending held them past the stop grace and its hold; opened"
    finally:
        contactor.shutdown()


class CountingContactor(GpioContactor):
    """Counts how often the watch reads the mirror contact."""

    reads = 0

    @property
    def feedback_closed(self) -> bool | None:
        self.reads += 1
        return super().feedback_closed


def test_the_watch_looks_rarely_while_everything_is_open_and_often_once_a_contactor_is_closed() -> None:
    factory = make_factory()
    coil, mirror = factory.pin(17, pin_class=WatchedPin), factory.pin(27, pin_class=WatchedPin)
    contactor = CountingContactor(pin=17, mirror_pin=27, pin_factory=factory)
    sup = SafetySupervisor(time.monotonic)
    mirror.drive_low()  # NC mirror made: contacts open
    sup.add(1, contactor, 0.02, stop_grace=6.0)
    sup.start_watch()
    try:
        time.sleep(0.2)  # past the first look and the boot's switching window
        before = contactor.reads
        time.sleep(1.0)
        resting = contactor.reads - before
        assert resting <= 6  # every 0.25 s, not every 50 ms (20) or 5 ms (200)
        sup.set_condition(1, "permit", True)
        before = contactor.reads
        assert sup.request_close(1) and coil.state
        mirror.drive_high()  # NC mirror open: the contacts closed
        time.sleep(0.05)
        assert contactor.reads - before >= 4  # the switch woke the resting watch: 5 ms looks at once
        time.sleep(0.2)  # the switching window (5 ms looks) ends
        before = contactor.reads
        time.sleep(1.0)
        assert 12 <= contactor.reads - before <= 30  # every 50 ms while closed
        assert not sup.faults(1)
    finally:
        sup.stop_watch()
        contactor.shutdown()


def test_a_self_test_opened_by_the_supervisor_midway_is_no_verdict_on_the_contacts() -> None:
    ch = Channel(mirror=True)
    try:
        ch.mirror.drive_low()  # NC mirror made: contacts open
        sup = ch.supervisor
        sup.set_vehicle(1, False)
        # A real mirror follows the coil; here a condition is withdrawn (another thread) while the test waits.
        ch.coil.observers.append(lambda _t, v: ch.mirror.drive_high() if v else ch.mirror.drive_low())
        withdraw = threading.Timer(0.01, lambda: sup.set_condition(1, "rcm", False))
        withdraw.start()
        assert sup.self_test(1) is False
        withdraw.join()
        assert not ch.coil.state and not sup.faults(1)  # open, and no ContactorFailedToClose for a good contactor
        assert sup.self_test(1) is True  # undisturbed, the same contactor passes
    finally:
        ch.close()
