"""The InfyPower driver against simulated REG modules on python-can's ``virtual`` bus, with a DC circuit behind."""

from __future__ import annotations

import asyncio
import itertools
import struct
import threading
import time
from collections.abc import AsyncIterator, Iterator

import can
import pytest

from controller.charging.dcoutlet import STALE_READING, known_current
from hal.can import Frame, PythonCanBus
from hal.errors import HalConfigError, HalIOError
from hal.infypower import InfyPowerStage, frame_id
from hil.dccircuit import DcCircuit
from hil.infypower_sim import InfyPowerSim
from tests.conftest import wait_until

_channels = itertools.count()


class Bench:
    def __init__(self, addresses: list[int], **module: object) -> None:
        self.channel = f"infy-{next(_channels)}"
        self.circuit = DcCircuit()
        self.sim = InfyPowerSim(self.circuit, addresses, channel=self.channel, **module)  # type: ignore[arg-type]
        self.closed = False
        self.circuit.contactors_closed = lambda: self.closed
        self._running = True
        self._physics = threading.Thread(target=self._step, daemon=True)

    def _step(self) -> None:
        while self._running:
            self.circuit.step(0.01)
            time.sleep(0.01)

    def start(self) -> None:
        self.sim.start()
        self._physics.start()

    def stop(self) -> None:
        self._running = False
        self._physics.join(1)
        self.sim.stop()

    def load(self, battery_voltage: float = 380.0) -> None:
        """A battery behind closed DC contactors."""
        self.circuit.battery_voltage = battery_voltage
        self.circuit.ev_contactor_closed = True
        self.closed = True


@pytest.fixture
def bench() -> Iterator[Bench]:
    b = Bench([0, 1])
    b.start()
    yield b
    b.stop()


@pytest.fixture
async def bus(bench: Bench) -> AsyncIterator[PythonCanBus]:
    driver_bus = PythonCanBus(interface="virtual", channel=bench.channel, bitrate=125_000)
    await driver_bus.open()
    yield driver_bus
    await driver_bus.close()


@pytest.fixture
async def stage(bus: PythonCanBus) -> AsyncIterator[InfyPowerStage]:
    s = InfyPowerStage(bus=bus, addresses=[0, 1], poll=0.05, offline_after=10.5)
    await s.open()
    yield s
    await s.close()


async def test_open_switches_off_first_and_sums_what_the_modules_can_do(bench: Bench, bus: PythonCanBus) -> None:
    stage = InfyPowerStage(bus=bus, addresses=[0, 1])
    caps = await stage.open()
    try:
        assert (caps.min_voltage, caps.max_voltage, caps.max_current, caps.max_power) == (100, 750, 60.0, 30_000)
        assert list(bench.sim.received)[:2] == [0x1A, 0x1A]  # OFF to both before anything else
        assert not any(m.on for m in bench.sim.modules.values())
    finally:
        await stage.close()


async def test_the_current_is_shared_and_the_output_follows(bench: Bench, stage: InfyPowerStage) -> None:
    stage.set(400.0, 40.0)
    await wait_until(lambda: all(m.on and m.current == 20.0 and m.voltage == 400.0 for m in bench.sim.modules.values()),
                 1)
    await wait_until(lambda: abs(stage.reading.voltage - 400.0) < 1, 2)
    bench.load(380.0)
    await wait_until(lambda: abs(stage.reading.current - 40.0) < 0.5, 2)
    await wait_until(lambda: stage.reading.on, 1.5)  # the modules' own status says their DC side is on


async def test_set_points_are_clamped_to_what_the_stage_can_do(bench: Bench, stage: InfyPowerStage) -> None:
    stage.set(900.0, 500.0)
    await wait_until(lambda: all(m.voltage == 750.0 for m in bench.sim.modules.values()), 1)
    # 30 kW at 750 V is 40 A, below the 60 A the modules could give.
    assert {m.current for m in bench.sim.modules.values()} == {20.0}


async def test_off_returns_once_the_current_is_safe(bench: Bench, stage: InfyPowerStage) -> None:
    bench.load(380.0)
    stage.set(420.0, 50.0)
    await wait_until(lambda: stage.reading.current > 45, 3)
    started = time.monotonic()
    assert await stage.off()
    assert time.monotonic() - started < 0.5
    assert not any(m.on for m in bench.sim.modules.values())


async def test_off_says_so_when_a_module_keeps_delivering() -> None:
    b = Bench([0], ignores_off=True)
    b.start()
    bus = PythonCanBus(interface="virtual", channel=b.channel)
    await bus.open()
    stage = InfyPowerStage(bus=bus, addresses=[0], poll=0.05)
    try:
        await stage.open()
        b.load(380.0)
        stage.set(420.0, 25.0)
        await wait_until(lambda: stage.reading.current > 20, 3)
        assert not await stage.off(bound=0.3)
    finally:
        await stage.close()
        await bus.close()
        b.stop()


async def test_a_power_cycled_module_gets_its_set_points_back_within_a_second(
        bench: Bench, stage: InfyPowerStage) -> None:
    stage.set(400.0, 40.0)
    await wait_until(lambda: all(m.on for m in bench.sim.modules.values()), 1)
    bench.sim.power_cycle(1)
    await wait_until(lambda: bench.sim.modules[1].on and bench.sim.modules[1].current == 20.0, 1.2)


async def test_a_module_fault_reaches_the_controller(bench: Bench, stage: InfyPowerStage) -> None:
    seen: list[frozenset[str]] = []
    stage.on_fault = seen.append
    bench.sim.fault(0, "output over-voltage")
    await wait_until(lambda: seen, 1.5)
    assert seen[-1] == {"module 0: output over-voltage"}
    bench.sim.fault(0, "output over-voltage", active=False)
    await wait_until(lambda: seen[-1] == frozenset(), 1.5)


async def test_a_silent_module_leaves_the_share_and_none_left_is_a_fault(bench: Bench,
                                                                          stage: InfyPowerStage) -> None:
    seen: list[frozenset[str]] = []
    stage.on_fault = seen.append
    stage.set(400.0, 40.0)
    await wait_until(lambda: bench.sim.modules[1].current == 20.0, 1)
    bench.sim.silent.add(1)
    await asyncio.sleep(1.5)  # more than the 1 s between the driver's checks
    bench.sim.silent.add(0)  # it still hears its set points, and goes quiet 1.5 s after module 1
    await wait_until(lambda: bench.sim.modules[0].current == 30.0, 12)  # module 0 now carries what it can
    assert not seen  # one module left: no fault
    await wait_until(lambda: "no module answers" in (seen[-1] if seen else ()), 2)


async def test_replies_with_an_error_code_or_from_strangers_are_dropped(
        bench: Bench, stage: InfyPowerStage, caplog: pytest.LogCaptureFixture) -> None:
    await wait_until(lambda: stage.reading.voltage == 0.0, 1)
    peer = can.Bus(interface="virtual", channel=bench.channel)
    try:
        bad_vi = struct.pack(">ff", 999.0, 99.0)
        peer.send(can.Message(arbitration_id=frame_id(0x03, 0xF0, source=0, error=3), data=bad_vi,
                              is_extended_id=True))
        peer.send(can.Message(arbitration_id=frame_id(0x03, 0xF0, source=7), data=bad_vi, is_extended_id=True))
        peer.send(can.Message(arbitration_id=frame_id(0x03, 0xF0, source=0), data=bad_vi[:4], is_extended_id=True))
        await asyncio.sleep(0.2)
    finally:
        peer.shutdown()
    assert "module 0 answered command 0x03 with error 3 (data invalid)" in caplog.text
    assert "reply from module 7, which is not configured" in caplog.text
    assert "is not 8 bytes" in caplog.text
    assert stage.reading.current < 1.0


async def test_a_module_that_never_answers_is_named_with_what_to_check(bench: Bench, bus: PythonCanBus) -> None:
    stage = InfyPowerStage(bus=bus, addresses=[0, 1, 5], open_timeout=0.5)
    with pytest.raises(HalIOError, match=r"InfyPower module\(s\) 5 on .* did not answer within 0 s: check the "
                                         r"module bus wiring and termination, 125 kbit/s and the address dials"):
        await stage.open()


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"addresses": []}, "distinct numbers 0-62"),
    ({"addresses": [1, 1]}, "distinct numbers 0-62"),
    ({"addresses": [63]}, "distinct numbers 0-62"),
    ({"addresses": [0], "offline_after": 10.0}, "above the modules' own 10 s"),
])
def test_settings_that_cannot_work_are_refused(kwargs: dict[str, object], message: str) -> None:
    bus = PythonCanBus(interface="virtual", channel="unused")
    with pytest.raises(HalConfigError, match=message):
        InfyPowerStage(bus=bus, **kwargs)  # type: ignore[arg-type]


def test_ids_follow_the_v113_layout() -> None:
    assert frame_id(0x03, 0) == 0x028300F0  # read V/I of module 0
    assert frame_id(0x1A, 0x3F) == 0x029A3FF0  # on/off, broadcast
    assert Frame(frame_id(0x1C, 2), bytes(8), extended=True).id == 0x029C02F0


async def test_a_reading_is_as_old_as_its_oldest_module_and_a_stale_one_is_no_proof_of_a_safe_current(
        bench: Bench, stage: InfyPowerStage) -> None:
    stage.set(400.0, 4.0)  # no load on the bench's output: the modules read 0 A
    await wait_until(lambda: stage.reading.voltage > 300 and time.monotonic() - stage.reading.at < 0.15, 2)
    assert known_current(stage.reading, time.monotonic()) == stage.reading  # fresh: taken as it is
    bench.sim.silent.add(1)  # one module stops answering; its last current stays in the sum
    await asyncio.sleep(STALE_READING + 0.2)
    reading = stage.reading
    assert time.monotonic() - reading.at > STALE_READING
    assert reading.current <= 5 and known_current(reading, time.monotonic()).current > 5
