"""The Bender isoCHA425HV driver against a simulated device on Modbus (TCP on loopback, RTU on a pty)."""

from __future__ import annotations

import asyncio
import struct
from collections.abc import AsyncIterator

import pytest

from hal.bender import BenderIsoCha425, decode_channel
from hal.errors import HalConfigError, HalTimeoutError
from hal.imd import ImdAlarm
from hil.dccircuit import DcCircuit
from hil.imd_sim import IsoCha425Sim
from hil.meter import free_tcp_port
from hil.nullmodem import NullModem


@pytest.fixture
def circuit() -> DcCircuit:
    c = DcCircuit()
    c.outlet_voltage = 485.0
    return c


@pytest.fixture
async def sim(circuit: DcCircuit) -> AsyncIterator[IsoCha425Sim]:
    device = IsoCha425Sim(circuit, measure_time=0.3, self_test_time=0.4)
    yield device
    await device.stop()


@pytest.fixture
async def imd(sim: IsoCha425Sim) -> AsyncIterator[BenderIsoCha425]:
    port = await sim.start_tcp()
    driver = BenderIsoCha425(transport="tcp", tcp_port=port, prewarning_kohm=500, alarm_kohm=100)
    await driver.open()
    yield driver
    await driver.close()


async def test_open_writes_the_thresholds(sim: IsoCha425Sim, imd: BenderIsoCha425) -> None:
    assert sim.writes[:2] == [(3005, 500), (3007, 100)]
    assert (sim.prewarning_kohm, sim.alarm_kohm) == (500, 100)


async def test_a_value_is_trusted_only_once_the_device_calls_it_valid(sim: IsoCha425Sim,
                                                                      imd: BenderIsoCha425) -> None:
    assert (await imd.read()).resistance is None  # not measuring yet
    await imd.start()
    assert sim.measuring
    assert (await imd.read()).resistance is None  # measuring, not settled
    await asyncio.sleep(0.35)
    reading = await imd.read()
    assert reading.resistance == pytest.approx(10e6) and reading.alarm == ImdAlarm.NONE
    assert reading.voltage == pytest.approx(485.0)
    await imd.stop()
    assert not sim.measuring and (await imd.read()).resistance is None


async def test_a_low_resistance_is_read_with_the_devices_alarm(sim: IsoCha425Sim, circuit: DcCircuit,
                                                               imd: BenderIsoCha425) -> None:
    await imd.start()
    await asyncio.sleep(0.35)
    circuit.insulation_ohms = 300_000
    assert (await imd.read()).alarm == ImdAlarm.PREWARNING
    circuit.insulation_ohms = 40_000
    reading = await imd.read()
    assert reading.resistance == pytest.approx(40_000) and reading.alarm == ImdAlarm.ALARM


async def test_the_self_test_passes_or_fails_as_the_device_says(sim: IsoCha425Sim, imd: BenderIsoCha425) -> None:
    assert await imd.self_test(timeout=3)
    assert (8005, 0x5445) in sim.writes
    sim.self_test_fails = True
    assert not await imd.self_test(timeout=3)
    assert (await imd.read()).alarm == ImdAlarm.DEVICE_FAULT


async def test_a_self_test_that_never_runs_is_a_failure_after_the_timeout(sim: IsoCha425Sim,
                                                                          imd: BenderIsoCha425) -> None:
    sim.self_test_time = 0.0  # the device ignores the request
    assert not await imd.self_test(timeout=0.5)


async def test_the_driver_works_over_rtu() -> None:
    circuit = DcCircuit()
    modem = NullModem()
    await modem.start()
    device = IsoCha425Sim(circuit, measure_time=0.0)
    await device.start_serial(modem.a, parity="N")  # a pty cannot carry parity; the device's 8E1 is the default
    driver = BenderIsoCha425(port=modem.b, parity="N")
    try:
        await driver.open()
        await driver.start()
        await asyncio.sleep(0.05)
        assert (await driver.read()).resistance == pytest.approx(10e6)
    finally:
        await driver.close()
        await device.stop()
        modem.close()


async def test_a_device_that_does_not_answer_says_what_to_check() -> None:
    driver = BenderIsoCha425(transport="tcp", tcp_port=free_tcp_port(), timeout=0.2)
    with pytest.raises(Exception, match="cannot connect"):
        await driver.read()
    modem = NullModem()
    await modem.start()
    silent = BenderIsoCha425(port=modem.b, parity="N", timeout=0.2)
    try:
        with pytest.raises(HalTimeoutError, match=r"is Modbus switched on in its menu"):
            await silent.read()
    finally:
        await silent.close()
        modem.close()


@pytest.mark.parametrize(("words", "expected"), [
    ([*struct.unpack(">HH", struct.pack(">f", 1.5e6)), 0x0002, 71], (1.5e6, ImdAlarm.NONE, False)),
    ([*struct.unpack(">HH", struct.pack(">f", 8e4)), 0x0502, 1], (8e4, ImdAlarm.ALARM, False)),
    ([0, 0, 0x80C2, 71], (None, ImdAlarm.NONE, True)),  # testing, marked invalid
    ([0, 0, 0x0200, 115], (None, ImdAlarm.DEVICE_FAULT, False)),  # unit 0: invalid
])
def test_channels_decode_as_the_manual_lays_them_out(words: list[int],
                                                     expected: tuple[float | None, ImdAlarm, bool]) -> None:
    value, alarm, testing = decode_channel(words)
    assert (value if value is None else pytest.approx(value), alarm, testing) == (
        expected[0] if expected[0] is None else pytest.approx(expected[0]), expected[1], expected[2])


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"unit": 1}, "unit address must be 3-90"),
    ({"alarm_kohm": 200, "prewarning_kohm": 150}, "alarm_kohm < prewarning_kohm"),
    ({"transport": "udp"}, "rtu or tcp"),
])
def test_settings_the_device_cannot_take_are_refused(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(HalConfigError, match=message):
        BenderIsoCha425(**kwargs)  # type: ignore[arg-type]
