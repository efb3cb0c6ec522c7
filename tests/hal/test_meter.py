"""Register maps as data, and the Modbus driver against a pymodbus server (TCP on loopback, RTU on a pty)."""

from __future__ import annotations

import pytest
from pymodbus.constants import ExcCodes

from hal.errors import HalConfigError, HalError, HalProtocolError
from hal.meter.modbus import ModbusMeter
from hal.meter.regmap import bundled_maps, load_register_map, parse_register_map
from hil.meter import MeterSimulator, free_tcp_port
from hil.nullmodem import NullModem


def test_bundled_maps_are_sdm630_and_sdm120() -> None:
    assert {"sdm630", "sdm120"} <= set(bundled_maps())


def test_sdm630_float_words_decode_high_word_first_and_kwh_become_wh() -> None:
    regmap = load_register_map("sdm630")
    energy = regmap.registers["energy_import"]
    # 1234.5 kWh as IEEE 754 float32 = 0x449A5000, high word first.
    assert energy.decode([0x449A, 0x5000]) == pytest.approx(1_234_500.0)
    assert regmap.registers["voltage_l1"].decode([0x4366, 0x8000]) == pytest.approx(230.5)


def test_sdm630_is_read_in_three_blocks() -> None:
    blocks = load_register_map("sdm630").blocks()
    assert [(b.function, b.address, b.count) for b in blocks] == [(4, 0x00, 12), (4, 0x34, 2), (4, 0x48, 2)]


def test_a_non_finite_value_is_a_protocol_error() -> None:
    with pytest.raises(HalProtocolError, match="non-finite"):
        load_register_map("sdm630").registers["power"].decode([0x7FC0, 0x0000])


def test_little_endian_int32_maps_decode() -> None:
    regmap = parse_register_map(
        {"type": "int32", "word_order": "little", "quantities": {"energy_import": {"address": 0x42, "scale": 100.0}}},
        "em24.toml",
    )
    reg = regmap.registers["energy_import"]
    # 123456 (0x0001E240) x 0.1 kWh, low word first on the wire.
    assert reg.decode([0xE240, 0x0001]) == pytest.approx(12_345_600.0)
    assert reg.decode([0x0001, 0xE240]) != pytest.approx(12_345_600.0)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"quantities": {}}, r"\[quantities\] must exist and define energy_import"),
        ({"quantities": {"energy_import": {"address": 1}, "frequency": {"address": 2}}},
         "quantities.frequency: unknown"),
        ({"quantities": {"energy_import": {"address": -1}}}, "address = -1: expected an integer"),
        ({"quantities": {"energy_import": {"address": 1, "type": "float16"}}}, "type = 'float16'"),
        ({"function": "coil", "quantities": {"energy_import": {"address": 1}}}, "function = 'coil'"),
    ],
)
def test_bad_maps_name_the_quantity_and_key(data: dict[str, object], message: str) -> None:
    with pytest.raises(HalConfigError, match=message):
        parse_register_map(data, "custom.toml")


def test_unknown_model_lists_the_bundled_ones() -> None:
    with pytest.raises(HalConfigError, match=r"expected one of .*sdm630"):
        load_register_map("sdm999")


async def test_the_simulated_sdm630_serves_the_datasheet_layout() -> None:
    from pymodbus.client import AsyncModbusTcpClient

    sim = MeterSimulator("sdm630", phases=3, energy_wh=1_234_500.0)
    port = await sim.start_tcp()
    client = AsyncModbusTcpClient("127.0.0.1", port=port)
    try:
        await client.connect()
        energy = (await client.read_input_registers(0x48, count=2, device_id=1)).registers
        assert energy == [0x449A, 0x5000]  # 1234.5 kWh
        sim.set_current(16.0)
        words = (await client.read_input_registers(0x00, count=12, device_id=1)).registers
        # IEEE 754 float32, high word first: 230.0 V = 0x43660000, 16.0 A = 0x41800000 (hand-computed).
        assert words[0:2] == [0x4366, 0x0000] and words[4:6] == [0x4366, 0x0000]
        assert words[6:8] == [0x4180, 0x0000] and words[10:12] == [0x4180, 0x0000]
    finally:
        client.close()
        await sim.stop()


async def test_driver_reads_what_the_simulated_meter_integrates_over_tcp() -> None:
    sim = MeterSimulator("sdm630", phases=3, energy_wh=5_000.0)
    port = await sim.start_tcp()
    meter = ModbusMeter(model="sdm630", transport="tcp", tcp_port=port)
    try:
        sim.set_current(16.0)
        reading = await meter.read()
        assert reading.voltage == (pytest.approx(230.0), pytest.approx(230.0), pytest.approx(230.0))
        assert reading.current == (pytest.approx(16.0), pytest.approx(16.0), pytest.approx(16.0))
        assert reading.power_w == pytest.approx(3 * 230 * 16)
        first = reading.energy_wh
        sim.energy_wh += 100.0
        assert (await meter.read()).energy_wh == pytest.approx(first + 100.0, abs=5.0)
    finally:
        await meter.close()
        await sim.stop()


async def test_driver_reads_an_sdm120_over_rtu_on_a_serial_line() -> None:
    cable = NullModem()
    await cable.start()
    sim = MeterSimulator("sdm120", phases=1, energy_wh=42_000.0, unit=7)
    await sim.start_serial(cable.a, baudrate=9600)
    meter = ModbusMeter(model="sdm120", transport="rtu", port=cable.b, baudrate=9600, address=7, timeout=1.0)
    try:
        sim.set_current(10.0)
        reading = await meter.read()
        assert reading.energy_wh == pytest.approx(42_000.0, abs=1.0)
        assert reading.current[0] == pytest.approx(10.0)
        assert reading.current[1] is None and reading.voltage[2] is None
    finally:
        await meter.close()
        await sim.stop()
        cable.close()


async def test_a_refusing_meter_is_a_protocol_error_naming_the_meter() -> None:
    sim = MeterSimulator("sdm630", phases=3)
    port = await sim.start_tcp()
    sim.refuse = ExcCodes.ILLEGAL_ADDRESS
    meter = ModbusMeter(model="sdm630", transport="tcp", tcp_port=port)
    try:
        with pytest.raises(HalProtocolError, match=f"127.0.0.1:{port} unit 1 refused FC04"):
            await meter.read()
    finally:
        await meter.close()
        await sim.stop()


async def test_an_absent_meter_is_a_hal_error_not_a_hang() -> None:
    meter = ModbusMeter(model="sdm630", transport="tcp", tcp_port=free_tcp_port(), timeout=0.2)
    with pytest.raises(HalError):
        await meter.read()
    await meter.close()


async def test_a_dc_meter_with_exponent_registers_reads_over_rtu() -> None:
    assert "djsf1352" in bundled_maps()
    cable = NullModem()
    await cable.start()
    sim = MeterSimulator("djsf1352", phases=1, voltage=400.0, energy_wh=123_456.0)
    await sim.start_serial(cable.a, baudrate=9600)
    meter = ModbusMeter(model="djsf1352", transport="rtu", port=cable.b, baudrate=9600, timeout=1.0)
    try:
        sim.set_current(125.0)
        reading = await meter.read()
        assert reading.voltage[0] == pytest.approx(400.0)  # raw 4000 at exponent 2
        assert reading.current[0] == pytest.approx(125.0)
        assert reading.power_w == pytest.approx(50_000.0)  # raw 5000 at exponent 4
        assert reading.energy_wh == pytest.approx(123_456.0, abs=1.0)
        assert sim.reads == 1  # every value and its exponent in one read
    finally:
        await meter.close()
        await sim.stop()
        cable.close()


def test_an_exponent_that_is_not_an_address_names_itself() -> None:
    data = {"function": "holding", "type": "uint16",
            "quantities": {"energy_import": {"address": 12, "type": "uint32"}, "voltage_l1": {"address": 0,
                                                                                           "exponent": "1"}}}
    with pytest.raises(HalConfigError, match=r"quantities.voltage_l1.exponent = '1': expected the address"):
        parse_register_map(data, "m.toml")
