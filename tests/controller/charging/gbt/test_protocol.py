"""A GB/T outlet end to end: the EVSE machine, the supervisor and the real drivers, with a BMS whose long
messages come through python-can-j1939 (an independent J1939-21 stack) on python-can's ``virtual`` bus."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator

import pytest

from controller.charging.gbt.model import Phase
from controller.charging.gbt.protocol import Gbt
from controller.domain.events import StatusChanged
from controller.domain.faults import Fault
from controller.domain.types import IdToken, PowerLimit, StopReason, TriggerReason
from controller.evse.machine import Evse
from controller.evse.policy import TransactionPolicy
from controller.safety.dc import DcGuards
from controller.safety.supervisor import SafetySupervisor
from hal.bender import BenderIsoCha425
from hal.can import PythonCanBus
from hal.dc_io import Bleeder, GbtLines
from hal.gpio_contactor import GpioContactor
from hal.infypower import InfyPowerStage
from hal.meter import MeterReading
from hil.dccircuit import DcCircuit
from hil.gbt_bms import BmsSpec, GbtBms
from hil.gbt_bms_bus import GbtBmsOnBus
from hil.gpio import MockMcp3008, WatchedPin, make_factory
from hil.imd_sim import IsoCha425Sim
from hil.infypower_sim import InfyPowerSim
from tests.conftest import wait_until

_channels = itertools.count()
CARD = IdToken("04A1B2C3")


class GbtRig:
    def __init__(self, spec: BmsSpec, imd_self_test: float = 0.2) -> None:
        n = next(_channels)
        self.car_channel, self.module_channel = f"gbt-car-{n}", f"gbt-psu-{n}"
        factory = make_factory()
        adc = MockMcp3008(factory)
        self.pins = {name: factory.pin(number, pin_class=WatchedPin)
                     for name, number in (("aux", 24), ("coil", 17), ("bleed", 25))}
        self.circuit = DcCircuit()
        self.circuit.contactors_closed = lambda: bool(self.pins["coil"].state)
        self.circuit.bleed_on = lambda: bool(self.pins["bleed"].state)
        self.modules = InfyPowerSim(self.circuit, [0, 1, 2, 3], channel=self.module_channel, max_current=40.0)
        self.imd_device = IsoCha425Sim(self.circuit, measure_time=0.3, self_test_time=imd_self_test)
        self.lines = GbtLines(cc1_channel=3, aux_pin=24, pin_factory=factory)
        self.car = GbtBmsOnBus(GbtBms(spec, self.circuit), cc1=adc.volts_on(3, self.lines.cc1_scale),
                               aux=self.pins["aux"], channel=self.car_channel)
        self.contactor = GpioContactor(pin=17, pin_factory=factory)
        self.bleeder = Bleeder(pin=25, pin_factory=factory)
        self.supervisor = SafetySupervisor()
        self.events: list[object] = []

    async def start(self, wait_for_imd: bool = True) -> None:
        self.modules.start()
        imd_port = await self.imd_device.start_tcp()
        self.car.start()
        self.car_bus = PythonCanBus(interface="virtual", channel=self.car_channel, bitrate=250_000)
        self.module_bus = PythonCanBus(interface="virtual", channel=self.module_channel, bitrate=125_000)
        await self.car_bus.open()
        await self.module_bus.open()
        self.power = InfyPowerStage(bus=self.module_bus, addresses=[0, 1, 2, 3], poll=0.02)
        await self.power.open()
        self.imd = BenderIsoCha425(transport="tcp", tcp_port=imd_port)
        loop = asyncio.get_running_loop()
        self.supervisor.add(1, self.contactor, stop_grace=1.0, before_open=self.power.shut_off)
        guards = DcGuards(1, self.supervisor, self.power, clock=time.monotonic)
        self.protocol = Gbt(1, lines=self.lines, bus=self.car_bus, power=self.power, supervisor=self.supervisor,
                            to_loop=loop.call_soon_threadsafe, outlet_voltage=lambda: self.circuit.outlet_voltage,
                            imd=self.imd, bleeder=self.bleeder, guards=guards, imd_interval=0.2)
        self.evse = Evse(1, maximum=PowerLimit(amps=160), phases=1, protocol=self.protocol,
                         supervisor=self.supervisor, emit=self.events.append, policy=TransactionPolicy())

        def on_faults(_cid: int, faults: dict[Fault, str]) -> None:
            loop.call_soon_threadsafe(self.evse.on_faults, faults)

        self.supervisor.listeners.append(on_faults)
        self.evse.on_meter(MeterReading(energy_wh=5000.0))
        self.protocol.start()
        if wait_for_imd:
            await wait_until(lambda: self.supervisor.holds(1, "insulation"), 5)

    async def stop(self) -> None:
        self.protocol.stop()
        self.car.stop()
        await self.power.close()
        await self.imd.close()
        await self.car_bus.close()
        await self.module_bus.close()
        self.modules.stop()
        await self.imd_device.stop()
        self.lines.close()
        self.bleeder.close()
        self.contactor.shutdown()

    def statuses(self) -> list[str]:
        return [e.status.value for e in self.events if isinstance(e, StatusChanged)]


@pytest.fixture
async def rig(request: pytest.FixtureRequest) -> AsyncIterator[GbtRig]:
    r = GbtRig(getattr(request, "param", None) or BmsSpec(soc=79.95))
    await r.start()
    yield r
    await r.stop()


async def test_a_car_plugged_in_during_the_imd_self_test_charges_once_it_passes() -> None:
    rig = GbtRig(BmsSpec(soc=50.0), imd_self_test=1.5)
    await rig.start(wait_for_imd=False)
    try:
        rig.car.plug_in()
        rig.evse.authorize(CARD, TriggerReason.AUTHORIZED)
        await asyncio.sleep(0.5)
        assert not rig.supervisor.holds(1, "insulation") and not rig.pins["coil"].state  # refused for now
        await wait_until(lambda: rig.circuit.current > 50, 20, "current after the self-test")
        assert rig.evse.status == "Charging"
    finally:
        await rig.stop()


async def test_a_card_starts_a_gbt_session_through_an_independent_j1939_stack(rig: GbtRig) -> None:
    rig.car.plug_in()
    await wait_until(lambda: rig.evse.status == "Preparing", 2)
    assert not rig.pins["aux"].state
    rig.evse.authorize(CARD, TriggerReason.AUTHORIZED)
    await wait_until(lambda: rig.circuit.current > 50, 20)
    assert rig.evse.status == "Charging"
    seq = rig.protocol.sequence
    assert seq.brm is not None and seq.brm.vin == "LFV2A21K0G3000001"  # 49 bytes by RTS/CTS
    assert seq.bcp is not None and seq.bcp.max_voltage == pytest.approx(450.0)
    assert any("PGN 1100" in what for _, what in rig.car.said)  # BCS by transport every 250 ms
    await wait_until(lambda: seq.phase == Phase.DONE, 30)  # the BMS reaches its target: BST, CST, BSD, CSD
    assert seq.stop_cause is not None and seq.stop_cause.cst == "BmsStop"
    assert not rig.pins["coil"].state and not rig.pins["aux"].state
    assert rig.supervisor.faults(1) == {}
    rig.car.unplug()
    await wait_until(lambda: rig.evse.status == "Available", 2)


@pytest.mark.parametrize("rig", [BmsSpec(soc=40.0)], indirect=True)
async def test_a_remote_stop_ramps_down_then_opens(rig: GbtRig) -> None:
    rig.car.plug_in()
    await wait_until(lambda: rig.evse.status == "Preparing", 2)
    rig.evse.authorize(CARD, TriggerReason.AUTHORIZED)
    await wait_until(lambda: rig.circuit.current > 90, 20)
    at_opening: list[float] = []
    rig.pins["coil"].observers.append(lambda _t, value: None if value else at_opening.append(rig.circuit.current))
    rig.evse.stop(StopReason.REMOTE)
    asked = time.monotonic()
    down = await wait_until(lambda: rig.circuit.current <= 5, 1.5)
    assert down - asked < 1.5
    await wait_until(lambda: rig.protocol.sequence.phase == Phase.DONE, 20)
    assert at_opening and at_opening[0] <= 5.0  # K1/K2 opened only once the current was down
    assert not rig.pins["coil"].state


@pytest.mark.parametrize("rig", [BmsSpec(soc=40.0)], indirect=True)
async def test_unplugging_while_charging_cuts_the_current_within_50_ms_and_ends_the_session(rig: GbtRig) -> None:
    rig.car.plug_in()
    await wait_until(lambda: rig.evse.status == "Preparing", 2)
    rig.evse.authorize(CARD, TriggerReason.AUTHORIZED)
    await wait_until(lambda: rig.circuit.current > 90, 20)
    rig.car.unplug()
    lost = time.monotonic()
    down = await wait_until(lambda: rig.circuit.current <= 5, 0.5)
    assert down - lost <= 0.05 + 0.02  # 50 ms, plus the bench's 10 ms control step and 5 ms physics step
    await wait_until(lambda: not rig.pins["coil"].state, 1)
    await wait_until(lambda: rig.evse.status == "Available", 3)
    assert rig.supervisor.faults(1) == {}
