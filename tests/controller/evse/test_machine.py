"""The EVSE machine over the IEC 61851 protocol and real GPIO drivers on mock pins: flows and forbidden moves."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from transitions import MachineError

from controller.charging.iec61851 import Iec61851
from controller.config import PilotSection
from controller.domain.events import (
    StatusChanged,
    TransactionEnded,
    TransactionStarted,
    VehicleConnected,
    VehicleDeparted,
)
from controller.domain.faults import Fault
from controller.domain.types import IdToken, PowerLimit, StopReason, TriggerReason
from controller.evse.machine import Evse
from controller.evse.policy import TransactionPolicy
from controller.safety.supervisor import SafetySupervisor
from hal.gpio_contactor import GpioContactor
from hal.gpio_pilot import GpioPilot
from hal.meter import MeterReading
from hal.pilot import PilotState
from hil.gpio import MockMcp3008, WatchedPin, WatchedPWMPin, make_factory

A, B, C, E = PilotState.A, PilotState.B, PilotState.C, PilotState.E
CARD = IdToken("04A1B2C3")
_open_rigs: list[Rig] = []


@pytest.fixture(autouse=True)
def _close_rigs() -> Iterator[None]:
    # gpiozero shares SPI interfaces process-wide by pin numbers: release them like the app does.
    yield
    while _open_rigs:
        _open_rigs.pop().close()


class Rig:
    """One EVSE: GPIO pilot and contactor on mock pins, the IEC protocol, the real supervisor, recorded events."""

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
        self.supervisor.add(1, self.contactor)
        self.events: list[object] = []
        # The loop hand-off runs at once: the test is both the monitor thread and the loop.
        self.protocol = Iec61851(1, self.pilot, self.supervisor, PilotSection(), phases=3,
                                 to_loop=lambda callback, *args: callback(*args))
        self.evse = Evse(1, maximum=PowerLimit(amps=32), phases=3, protocol=self.protocol,
                         supervisor=self.supervisor, emit=self.events.append,
                         policy=TransactionPolicy(connection_timeout=connection_timeout))
        self.supervisor.listeners.append(lambda _cid, faults: self.evse.on_faults(faults))
        self.pilot.stop_offer()
        if with_reading:
            self.evse.on_meter(MeterReading(energy_wh=1000.4))
        _open_rigs.append(self)

    def close(self) -> None:
        self.contactor.shutdown()
        self.pilot.close()

    def ev(self, state: PilotState) -> None:
        self.protocol.on_sample(state, 0.0)

    def authorize(self, token: IdToken = CARD, trigger: TriggerReason = TriggerReason.AUTHORIZED) -> bool:
        return self.evse.authorize(token, trigger)

    def statuses(self) -> list[str]:
        return [e.status.value for e in self.events if isinstance(e, StatusChanged)]

    def of(self, kind: type) -> list:  # type: ignore[type-arg]
        return [e for e in self.events if isinstance(e, kind)]


async def test_full_ac_session_flow() -> None:
    rig = Rig()
    rig.ev(A)
    rig.ev(B)
    assert rig.evse.status == "Preparing" and len(rig.of(VehicleConnected)) == 1
    assert rig.authorize()
    started = rig.of(TransactionStarted)
    assert len(started) == 1 and started[0].transaction.meter_start_wh == 1000
    assert started[0].transaction.trigger == TriggerReason.AUTHORIZED
    assert rig.pwm.state == pytest.approx(32 / 0.6 / 100)  # PWM offers the EVSE's maximum
    assert not rig.coil.state  # B: the EV does not ask yet
    rig.ev(C)
    assert rig.coil.state and rig.evse.status == "Charging"
    rig.ev(B)
    assert not rig.coil.state and rig.evse.status == "SuspendedEV"
    rig.ev(C)
    assert rig.coil.state and rig.evse.status == "Charging"
    rig.evse.on_meter(MeterReading(energy_wh=1500.0))
    assert rig.evse.stop(StopReason.LOCAL, CARD)
    # The IEC stop: PWM off first; the EV still in C keeps the contactor until it goes to B (or 6 s pass).
    assert rig.pwm.state == 1.0 and rig.coil.state
    ended = rig.of(TransactionEnded)[0].transaction
    assert (ended.meter_stop_wh, ended.stop_reason, ended.stop_id_token) == (1500, StopReason.LOCAL, CARD)
    assert rig.evse.status == "Finishing"
    rig.ev(B)
    assert not rig.coil.state
    rig.ev(A)
    assert rig.statuses() == ["Preparing", "Charging", "SuspendedEV", "Charging", "Finishing", "Available"]
    assert len(rig.of(VehicleDeparted)) == 1


async def test_ev_in_c_without_authorisation_gets_no_power() -> None:
    rig = Rig()
    rig.ev(C)
    assert rig.evse.status == "Preparing"
    assert rig.coil_changes == [] and rig.pwm.state == 1.0


async def test_unplug_mid_charge_ends_the_transaction_as_ev_disconnected() -> None:
    rig = Rig()
    rig.ev(B)
    rig.authorize(IdToken("CAFE0001"), TriggerReason.REMOTE_START)
    rig.ev(C)
    rig.ev(A)
    assert not rig.coil.state
    ended = rig.of(TransactionEnded)[0].transaction
    assert ended.stop_reason is StopReason.EV_DISCONNECTED and ended.stop_trigger is TriggerReason.EV_DEPARTED
    assert ended.trigger is TriggerReason.REMOTE_START
    assert rig.evse.status == "Available" and rig.evse.session is None


async def test_card_before_cable_waits_then_times_out() -> None:
    rig = Rig(connection_timeout=0.1)
    rig.ev(A)
    assert rig.authorize()
    assert rig.evse.status == "Preparing" and rig.of(TransactionStarted) == []
    await asyncio.sleep(0.2)
    assert rig.evse.status == "Available" and rig.evse.session is None


async def test_card_before_cable_then_plug_starts_the_transaction() -> None:
    rig = Rig(connection_timeout=0.5)
    rig.ev(A)
    rig.authorize()
    rig.ev(C)
    assert rig.evse.status == "Charging" and len(rig.of(TransactionStarted)) == 1
    await asyncio.sleep(0.6)
    assert rig.evse.status == "Charging"  # the timeout was cancelled by the plug-in


async def test_no_transaction_without_a_meter_reading() -> None:
    rig = Rig(with_reading=False)
    rig.ev(C)
    rig.authorize()
    assert rig.of(TransactionStarted) == [] and not rig.coil.state
    rig.evse.on_meter(MeterReading(energy_wh=77.0))
    assert rig.of(TransactionStarted)[0].transaction.meter_start_wh == 77
    assert rig.coil.state


async def test_pilot_error_state_faults_the_evse_and_opens_the_contactor() -> None:
    rig = Rig()
    rig.ev(B)
    rig.authorize()
    rig.ev(C)
    rig.ev(E)
    assert not rig.coil.state
    assert rig.evse.status == "Faulted"
    assert rig.of(TransactionEnded)[0].transaction.stop_reason is StopReason.EMERGENCY_STOP
    faulted = next(e for e in rig.events if isinstance(e, StatusChanged) and e.status == "Faulted")
    assert faulted.fault is Fault.PILOT_FAULT and faulted.detail == "pilot state E"
    rig.ev(A)
    assert rig.evse.status == "Available"


async def test_a_second_authorisation_is_refused_while_one_is_attached() -> None:
    rig = Rig()
    rig.ev(B)
    assert rig.authorize(IdToken("AAAA0001"))
    assert not rig.authorize(IdToken("BBBB0002"))


@pytest.mark.parametrize(
    ("trigger", "state"),
    [("charge", "Available"), ("finish", "Available"), ("suspend_ev", "Available"), ("recover", "Available"),
     ("plug", "Preparing"), ("present", "Charging")],
)
async def test_forbidden_transitions_raise(trigger: str, state: str) -> None:
    rig = Rig()
    if state != "Available":
        rig.ev(B)
        rig.authorize()
        if state == "Charging":
            rig.ev(C)
    assert rig.evse.status == state
    with pytest.raises(MachineError):
        getattr(rig.evse, trigger)()
    assert rig.evse.status == state
