"""A CHAdeMO outlet end to end: the EVSE machine, the supervisor and the real drivers on fake buses.

CAN on python-can's ``virtual`` interface (the EV and the InfyPower modules at the far ends), the
sequence lines, contactor and bleed relay on gpiozero mock pins, the IMD over Modbus TCP on
loopback; one simulated DC circuit behind them all.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator

import pytest

from controller.charging.chademo.frames import CHARGER_LIMITS, CHARGER_STATUS, EV_STATUS, EvStatus, signals
from controller.charging.chademo.model import Phase
from controller.charging.chademo.protocol import Chademo
from controller.domain.events import StatusChanged
from controller.domain.faults import Fault
from controller.domain.types import IdToken, PowerLimit, StopReason, TriggerReason
from controller.evse.machine import Evse
from controller.evse.policy import TransactionPolicy
from controller.safety.dc import DcGuards
from controller.safety.supervisor import SafetySupervisor
from hal.bender import BenderIsoCha425
from hal.can import PythonCanBus
from hal.dc_io import Bleeder, ChademoLines, EmergencyStop
from hal.gpio_contactor import GpioContactor
from hal.infypower import InfyPowerStage
from hal.meter import MeterReading
from hil.chademo_ev import ChademoEv, EvSpec
from hil.chademo_ev_bus import ChademoEvOnBus
from hil.chademo_replay import ReplayEv
from hil.dccircuit import DcCircuit
from hil.gpio import WatchedPin, make_factory
from hil.imd_sim import IsoCha425Sim
from hil.infypower_sim import InfyPowerSim
from tests.conftest import wait_until

_channels = itertools.count()
CARD = IdToken("04A1B2C3")


class DcRig:
    """One CHAdeMO outlet and the car at its end."""

    def __init__(self, spec: EvSpec, imd_measure: float = 0.3) -> None:
        n = next(_channels)
        self.ev_channel, self.module_channel = f"chademo-ev-{n}", f"chademo-psu-{n}"
        factory = make_factory()
        pins = {name: factory.pin(number, pin_class=WatchedPin)
                for name, number in (("d1", 5), ("d2", 6), ("k", 22), ("plug", 23), ("coil", 17), ("bleed", 25),
                                     ("estop", 26))}
        self.pins = pins
        self.circuit = DcCircuit()
        self.circuit.contactors_closed = lambda: bool(pins["coil"].state)
        self.circuit.bleed_on = lambda: bool(pins["bleed"].state)
        self.modules = InfyPowerSim(self.circuit, [0, 1, 2, 3], channel=self.module_channel, max_current=32.0)
        self.imd_device = IsoCha425Sim(self.circuit, measure_time=imd_measure, self_test_time=0.2)
        self.car = ChademoEvOnBus(ChademoEv(spec, self.circuit), d1=pins["d1"], d2=pins["d2"], k=pins["k"],
                                  plug=pins["plug"], channel=self.ev_channel)
        self.lines = ChademoLines(d1_pin=5, d2_pin=6, k_pin=22, plug_pin=23, pin_factory=factory)
        self.contactor = GpioContactor(pin=17, pin_factory=factory)
        self.bleeder = Bleeder(pin=25, pin_factory=factory)
        self.estop = EmergencyStop(pin=26, pin_factory=factory)
        pins["estop"].drive_high()  # the loop is closed
        self.supervisor = SafetySupervisor()
        self.events: list[object] = []

    async def start(self) -> None:
        self.modules.start()
        imd_port = await self.imd_device.start_tcp()
        self.car.start()
        self.ev_bus = PythonCanBus(interface="virtual", channel=self.ev_channel, bitrate=500_000)
        self.module_bus = PythonCanBus(interface="virtual", channel=self.module_channel, bitrate=125_000)
        await self.ev_bus.open()
        await self.module_bus.open()
        self.power = InfyPowerStage(bus=self.module_bus, addresses=[0, 1, 2, 3], poll=0.02)
        await self.power.open()
        self.imd = BenderIsoCha425(transport="tcp", tcp_port=imd_port)
        loop = asyncio.get_running_loop()
        self.supervisor.add(1, self.contactor, stop_grace=1.0, before_open=self.power.shut_off)
        guards = DcGuards(1, self.supervisor, self.power, estop=self.estop, clock=time.monotonic)
        self.protocol = Chademo(1, bus=self.ev_bus, lines=self.lines, power=self.power, supervisor=self.supervisor,
                                to_loop=loop.call_soon_threadsafe, outlet_voltage=lambda: self.circuit.outlet_voltage,
                                imd=self.imd, bleeder=self.bleeder, guards=guards, imd_interval=0.2)
        self.evse = Evse(1, maximum=PowerLimit(amps=125), phases=1, protocol=self.protocol,
                         supervisor=self.supervisor, emit=self.events.append, policy=TransactionPolicy())
        def on_faults(_cid: int, faults: dict[Fault, str]) -> None:
            loop.call_soon_threadsafe(self.evse.on_faults, faults)

        self.supervisor.listeners.append(on_faults)
        self.evse.on_meter(MeterReading(energy_wh=5000.0))
        self.protocol.start()
        await wait_until(lambda: self.supervisor.holds(1, "insulation"), 5)  # the IMD's boot self-test

    async def stop(self) -> None:
        self.protocol.stop()
        self.car.stop()
        await self.power.close()
        await self.imd.close()
        await self.ev_bus.close()
        await self.module_bus.close()
        self.modules.stop()
        await self.imd_device.stop()
        for part in (self.lines, self.bleeder, self.estop):
            part.close()
        self.contactor.shutdown()

    def statuses(self) -> list[str]:
        return [e.status.value for e in self.events if isinstance(e, StatusChanged)]


@pytest.fixture
async def rig(request: pytest.FixtureRequest) -> AsyncIterator[DcRig]:
    spec = getattr(request, "param", None) or EvSpec(soc=79.9, target_soc=80.0, permission_delay=0.5,
                                                    contactor_delay=0.3)
    r = DcRig(spec)
    await r.start()
    yield r
    await r.stop()


async def test_a_card_starts_a_chademo_session_that_charges_and_ends_safely(rig: DcRig) -> None:
    rig.car.plug_in()
    await wait_until(lambda: rig.evse.status == "Preparing", 2)
    assert not rig.pins["d1"].state  # nothing starts before the session is authorised
    assert rig.evse.authorize(CARD, TriggerReason.AUTHORIZED)
    await wait_until(lambda: rig.circuit.current > 50, 15)
    assert rig.evse.status == "Charging"
    assert (3026, 1) in rig.imd_device.writes  # the insulation test measured before any energy
    assert rig.pins["coil"].state
    # The EV reaches its target, stops; the current comes down, then the contactors, then d2 and d1.
    await wait_until(lambda: rig.protocol.sequence.phase == Phase.DONE, 30)
    assert not rig.pins["coil"].state and not rig.pins["d1"].state and not rig.pins["d2"].state
    assert rig.circuit.outlet_voltage <= 10
    ids = [f.id for _, f in rig.car.heard]
    assert ids[:2] == [CHARGER_LIMITS, CHARGER_STATUS]
    assert rig.supervisor.faults(1) == {}
    rig.car.unplug()
    await wait_until(lambda: rig.evse.status == "Available", 2)


@pytest.mark.parametrize("rig", [EvSpec(soc=40.0, permission_delay=0.5, contactor_delay=0.3)], indirect=True)
async def test_an_ev_that_goes_silent_is_ramped_down_then_faulted(rig: DcRig) -> None:
    rig.car.plug_in()
    await wait_until(lambda: rig.evse.status == "Preparing", 2)
    rig.evse.authorize(CARD, TriggerReason.AUTHORIZED)
    await wait_until(lambda: rig.circuit.current > 60, 15)
    _ev(rig).spec.misbehaviours.add("silent")
    silent_at = time.monotonic()
    down = await wait_until(lambda: rig.circuit.current <= 5, 3)
    assert 1.0 <= down - silent_at <= 1.0 + 0.5 + 0.2  # detection after 1 s, then 0.5 s to 5 A
    await wait_until(lambda: Fault.EV_COMM_LOST in rig.supervisor.faults(1), 1)
    opened = next(t for t, c, reason in rig.supervisor.trips if c == 1)
    assert opened >= down - 0.05  # the contactors opened only once the current was down
    await wait_until(lambda: rig.evse.status == "Faulted", 1)
    _ev(rig).spec.misbehaviours.clear()
    rig.car.unplug()
    await wait_until(lambda: rig.evse.status == "Available", 3)


async def _charging(rig: DcRig) -> None:
    rig.car.plug_in()
    await wait_until(lambda: rig.evse.status == "Preparing", 2)
    rig.evse.authorize(CARD, TriggerReason.AUTHORIZED)
    await wait_until(lambda: rig.circuit.current > 60, 15)


@pytest.mark.parametrize("rig", [EvSpec(soc=40.0, permission_delay=0.5, contactor_delay=0.3)], indirect=True)
async def test_the_emergency_stop_opens_under_load_at_once_and_switches_the_stage_off(rig: DcRig) -> None:
    await _charging(rig)
    pressed = time.monotonic()
    rig.pins["estop"].drive_low()  # gpiozero runs the guard in this thread: the coil drops before this returns
    assert not rig.pins["coil"].state
    assert Fault.EMERGENCY_STOP in rig.supervisor.faults(1)
    await wait_until(lambda: not any(m.on for m in rig.modules.modules.values()), 0.2)
    assert time.monotonic() - pressed < 0.2
    await wait_until(lambda: rig.evse.status == "Faulted", 1)
    await wait_until(lambda: not rig.pins["d1"].state, 3)  # the sequence still ends in order: d2, then d1


@pytest.mark.parametrize("rig", [EvSpec(soc=40.0, permission_delay=0.5, contactor_delay=0.3)], indirect=True)
async def test_an_insulation_fault_while_charging_opens(rig: DcRig) -> None:
    await _charging(rig)
    rig.circuit.insulation_ohms = 20_000
    await wait_until(lambda: Fault.INSULATION_FAULT in rig.supervisor.faults(1), 2)
    assert not rig.pins["coil"].state
    rig.circuit.insulation_ohms = 10e6
    rig.car.unplug()
    await wait_until(lambda: Fault.INSULATION_FAULT not in rig.supervisor.faults(1), 3)  # latched until it left


async def test_the_leaf_ze0_replayed_charges_and_ends_in_the_order_its_charger_kept() -> None:
    rig = DcRig(EvSpec())
    rig.car.ev = ReplayEv(rig.circuit)
    d2_changes: list[tuple[float, float]] = []
    rig.pins["d2"].observers.append(lambda t, value: d2_changes.append((t, value)))
    await rig.start()
    try:
        rig.car.plug_in()
        await wait_until(lambda: rig.evse.status == "Preparing", 2)
        rig.evse.authorize(CARD, TriggerReason.AUTHORIZED)
        # The Leaf's own 3.9 s to its permission, our insulation test, then its ramp to 12-14 A.
        await wait_until(lambda: rig.circuit.current > 10, 20)
        assert rig.evse.status == "Charging"
        assert max(s.current_request for s in _statuses(rig)) <= 14
        await asyncio.sleep(1.0)
        rig.evse.stop(StopReason.REMOTE)
        stopped = time.monotonic()
        await wait_until(lambda: rig.circuit.current <= 5, 0.5)
        await wait_until(lambda: rig.protocol.sequence.phase == Phase.DONE, 15)
        assert rig.protocol.sequence.stop_cause is not None and rig.protocol.sequence.stop_cause.fault is None
        assert isinstance(rig.car.ev, ReplayEv) and rig.car.ev.sent > 300
        # The Leaf reported its contactors open (welding check passed) before d2 went off.
        opened = next(t for t, f in rig.car.said if f.id == EV_STATUS and t > stopped
                      and EvStatus.decode(f).contactor_open)
        d2_off = next(t for t, value in d2_changes if t > stopped and not value)
        assert opened < d2_off
        # and the charger kept 0x109.5.2 until the inlet was dead, as the Leaf's own charger did.
        last_energized = max(t for t, f in rig.car.heard if f.id == CHARGER_STATUS and signals(f)["Energizing"])
        assert rig.circuit.outlet_voltage <= 10 and last_energized < d2_off
        assert not rig.pins["d1"].state and rig.circuit.outlet_voltage <= 10
    finally:
        await rig.stop()


def _statuses(rig: DcRig) -> list[EvStatus]:
    return [EvStatus.decode(f) for _, f in rig.car.said if f.id == EV_STATUS]


def _ev(rig: DcRig) -> ChademoEv:
    assert isinstance(rig.car.ev, ChademoEv)
    return rig.car.ev


@pytest.mark.parametrize("rig", [EvSpec(soc=40.0, permission_delay=0.5, contactor_delay=0.3)], indirect=True)
async def test_a_station_stop_at_full_current_opens_the_contactors_only_at_5_a(rig: DcRig) -> None:
    await _charging(rig)
    at_opening: list[float] = []
    rig.pins["coil"].observers.append(lambda _t, value: None if value else at_opening.append(rig.circuit.current))
    rig.evse.stop(StopReason.REMOTE)
    stopped = time.monotonic()
    down = await wait_until(lambda: rig.circuit.current <= 5, 1.0)
    assert down - stopped <= 0.5 + 0.02  # 0.5 s, and a control step
    await wait_until(lambda: at_opening, 5)
    assert at_opening[0] <= 5.0
    await wait_until(lambda: rig.protocol.sequence.phase == Phase.DONE, 15)
    assert rig.supervisor.faults(1) == {}



async def test_a_long_insulation_test_above_the_batterys_maximum_is_no_over_voltage() -> None:
    rig = DcRig(EvSpec(soc=79.95, permission_delay=0.5, contactor_delay=0.3), imd_measure=1.5)
    await rig.start()
    try:
        rig.car.plug_in()
        await wait_until(lambda: rig.evse.status == "Preparing", 2)
        rig.evse.authorize(CARD, TriggerReason.AUTHORIZED)
        await wait_until(lambda: rig.circuit.current > 20, 20)  # 485 V for 1.5 s on a 435 V battery's cable first
        assert Fault.OVER_VOLTAGE not in rig.supervisor.faults(1)
    finally:
        await rig.stop()


@pytest.mark.parametrize("rig", [EvSpec(soc=40.0, permission_delay=0.5, contactor_delay=0.3)], indirect=True)
async def test_a_failing_control_step_leaves_the_outputs_safe_and_says_so(rig: DcRig,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    await _charging(rig)

    def broken(_now: float, _reading: object) -> None:
        raise ArithmeticError("an impossible reading")

    monkeypatch.setattr(rig.protocol, "inputs", broken)
    await wait_until(lambda: Fault.INTERNAL_ERROR in rig.supervisor.faults(1), 1)
    assert not rig.pins["coil"].state and not rig.pins["d1"].state and not rig.pins["d2"].state
    await wait_until(lambda: not any(m.on for m in rig.modules.modules.values()), 1)
