"""The connector state machine over real GPIO drivers on mock pins: flows, guards and forbidden transitions."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import pytest
from transitions import MachineError

from controller.connector import Connector
from controller.events import StatusChanged, StopReason, TransactionEnded, TransactionStarted
from controller.faults import Fault
from controller.safety import SafetySupervisor
from hal.gpio_contactor import GpioContactor
from hal.gpio_pilot import GpioPilot
from hal.meter import MeterReading
from hal.pilot import PilotState
from hil.gpio import MockMcp3008, WatchedPin, WatchedPWMPin, make_factory

A, B, C, E = PilotState.A, PilotState.B, PilotState.C, PilotState.E
_open_rigs: list[Rig] = []


@pytest.fixture(autouse=True)
def _close_rigs() -> Iterator[None]:
    # gpiozero shares SPI interfaces process-wide by pin numbers: release them like the app does.
    yield
    while _open_rigs:
        _open_rigs.pop().close()


class Rig:
    """One connector: GPIO pilot and contactor on mock pins, the real supervisor, recorded events."""

    def __init__(self, connection_timeout: float = 60.0, with_reading: bool = True) -> None:
        factory = make_factory()
        MockMcp3008(factory)
        self.pwm = factory.pin(18, pin_class=WatchedPWMPin)
        self.coil = factory.pin(17, pin_class=WatchedPin)
        self.coil_changes: list[float] = []
        self.coil.observers.append(lambda t, v: self.coil_changes.append(v))
        self.pilot = GpioPilot(pwm_pin=18, adc_channel=0, pin_factory=factory)
        self.contactor = GpioContactor(pin=17, pin_factory=factory)
        self.supervisor = SafetySupervisor()
        self.supervisor.add(1, self.contactor, self.pilot)
        self.events: list[object] = []
        self.connector = Connector(
            1, max_current=32, phases=3, pilot=self.pilot, supervisor=self.supervisor,
            emit=self.events.append, connection_timeout=connection_timeout,
        )
        self.supervisor.listeners.append(lambda _cid, faults: self.connector.on_faults(faults))
        self.pilot.stop_offer()
        if with_reading:
            self.connector.on_meter(MeterReading(energy_wh=1000.4))
        _open_rigs.append(self)

    def close(self) -> None:
        self.contactor.shutdown()
        self.pilot.close()

    def ev(self, state: PilotState) -> None:
        # What the monitor thread does: the supervisor first, then the state machine.
        self.supervisor.on_pilot(1, state)
        self.connector.on_pilot(state)

    def statuses(self) -> list[str]:
        return [e.status.value for e in self.events if isinstance(e, StatusChanged)]

    def of(self, kind: type) -> list:  # type: ignore[type-arg]
        return [e for e in self.events if isinstance(e, kind)]


async def test_full_ac_session_flow() -> None:
    rig = Rig()
    rig.ev(A)
    rig.ev(B)
    assert rig.connector.status == "Preparing"
    assert rig.connector.authorize("04A1B2C3", "card")
    started = rig.of(TransactionStarted)
    assert len(started) == 1 and started[0].transaction.meter_start_wh == 1000
    assert rig.pwm.state == pytest.approx(32 / 0.6 / 100)  # PWM offers the connector's maximum
    assert not rig.coil.state  # B: the EV does not ask yet
    rig.ev(C)
    assert rig.coil.state and rig.connector.status == "Charging"
    rig.ev(B)
    assert not rig.coil.state and rig.connector.status == "SuspendedEV"
    rig.ev(C)
    assert rig.coil.state and rig.connector.status == "Charging"
    rig.connector.on_meter(MeterReading(energy_wh=1500.0))
    assert rig.connector.stop(StopReason.LOCAL, "04A1B2C3")
    # The IEC stop: PWM off first; the EV still in C keeps the contactor until it goes to B (or 6 s pass).
    assert rig.pwm.state == 1.0 and rig.coil.state
    ended = rig.of(TransactionEnded)[0].transaction
    assert (ended.meter_stop_wh, ended.stop_reason, ended.stop_id_tag) == (1500, StopReason.LOCAL, "04A1B2C3")
    assert rig.connector.status == "Finishing"
    rig.ev(B)
    assert not rig.coil.state
    rig.ev(A)
    assert rig.statuses() == ["Preparing", "Charging", "SuspendedEV", "Charging", "Finishing", "Available"]


async def test_ev_in_c_without_authorisation_gets_no_power() -> None:
    rig = Rig()
    rig.ev(C)
    assert rig.connector.status == "Preparing"
    assert rig.coil_changes == [] and rig.pwm.state == 1.0


async def test_unplug_mid_charge_ends_the_transaction_as_ev_disconnected() -> None:
    rig = Rig()
    rig.ev(B)
    rig.connector.authorize("CAFE0001", "remote")
    rig.ev(C)
    rig.ev(A)
    assert not rig.coil.state
    assert rig.of(TransactionEnded)[0].transaction.stop_reason is StopReason.EV_DISCONNECTED
    assert rig.connector.status == "Available" and rig.connector.session is None


async def test_card_before_cable_waits_then_times_out() -> None:
    rig = Rig(connection_timeout=0.1)
    rig.ev(A)
    assert rig.connector.authorize("04A1B2C3", "card")
    assert rig.connector.status == "Preparing" and rig.of(TransactionStarted) == []
    await asyncio.sleep(0.2)
    assert rig.connector.status == "Available" and rig.connector.session is None


async def test_card_before_cable_then_plug_starts_the_transaction() -> None:
    rig = Rig(connection_timeout=0.5)
    rig.ev(A)
    rig.connector.authorize("04A1B2C3", "card")
    rig.ev(C)
    assert rig.connector.status == "Charging" and len(rig.of(TransactionStarted)) == 1
    await asyncio.sleep(0.6)
    assert rig.connector.status == "Charging"  # the timeout was cancelled by the plug-in


async def test_no_transaction_without_a_meter_reading() -> None:
    rig = Rig(with_reading=False)
    rig.ev(C)
    rig.connector.authorize("04A1B2C3", "card")
    assert rig.of(TransactionStarted) == [] and not rig.coil.state
    rig.connector.on_meter(MeterReading(energy_wh=77.0))
    assert rig.of(TransactionStarted)[0].transaction.meter_start_wh == 77
    assert rig.coil.state


async def test_pilot_error_state_faults_the_connector_and_opens_the_contactor() -> None:
    rig = Rig()
    rig.ev(B)
    rig.connector.authorize("04A1B2C3", "card")
    rig.ev(C)
    rig.ev(E)
    assert not rig.coil.state
    assert rig.connector.status == "Faulted"
    assert rig.of(TransactionEnded)[0].transaction.stop_reason is StopReason.EMERGENCY_STOP
    faulted = next(e for e in rig.events if isinstance(e, StatusChanged) and e.status == "Faulted")
    assert faulted.error_code == "OtherError" and faulted.info == "pilot state E"
    rig.ev(A)
    assert rig.connector.status == "Available"


async def test_a_second_authorisation_is_refused_while_one_is_attached() -> None:
    rig = Rig()
    rig.ev(B)
    assert rig.connector.authorize("AAAA0001", "card")
    assert not rig.connector.authorize("BBBB0002", "card")


@pytest.mark.parametrize(
    ("trigger", "state"),
    [("charge", "Available"), ("finish", "Available"), ("suspend_ev", "Available"), ("recover", "Available"),
     ("plug", "Preparing"), ("present", "Charging")],
)
async def test_forbidden_transitions_raise(trigger: str, state: str) -> None:
    rig = Rig()
    if state != "Available":
        rig.ev(B)
        rig.connector.authorize("04A1B2C3", "card")
        if state == "Charging":
            rig.ev(C)
    assert rig.connector.status == state
    with pytest.raises(MachineError):
        getattr(rig.connector, trigger)()
    assert rig.connector.status == state


async def test_supervisor_refuses_without_permit_or_pwm_and_opens_from_any_thread() -> None:
    rig = Rig()
    sup = rig.supervisor
    sup.on_pilot(1, C)
    assert not sup.request_close(1)  # no permit
    sup.set_permit(1, True)
    assert not sup.request_close(1)  # C1: no PWM offers current
    rig.pilot.offer_current(16)
    assert sup.request_close(1) and rig.coil.state
    thread = threading.Thread(target=sup.on_pilot, args=(1, B))
    thread.start()
    thread.join()
    assert not rig.coil.state
    assert [reason for _t, _c, reason in sup.trips] == ["pilot B"]
    sup.on_pilot(1, C)
    sup.request_close(1)
    sup.open_all()
    assert not rig.coil.state and not sup.request_close(1)


def test_boot_self_test_catches_a_contactor_that_does_not_close() -> None:
    factory = make_factory()
    MockMcp3008(factory)
    factory.pin(18, pin_class=WatchedPWMPin)
    factory.pin(17, pin_class=WatchedPin)
    mirror = factory.pin(27, pin_class=WatchedPin)
    pilot = GpioPilot(pwm_pin=18, adc_channel=0, pin_factory=factory)
    contactor = GpioContactor(pin=17, mirror_pin=27, pin_factory=factory)
    try:
        supervisor = SafetySupervisor()
        supervisor.add(1, contactor, pilot, feedback_delay=0.02)
        mirror.drive_low()  # NC mirror made: contacts open, and they stay that way
        assert not supervisor.self_test(1)
        assert Fault.CONTACTOR_FAILED_TO_CLOSE in supervisor.faults(1)
        assert not contactor.commanded_closed
        assert not supervisor.request_close(1)  # a faulted contactor is never closed again
    finally:
        contactor.shutdown()
        pilot.close()
