"""Bender ISOMETER isoCHA425HV (with its AGH420/421 coupler) over Modbus RTU, or TCP through a gateway.

Facts from Bender's manual D00404 and its siblings' (read in ``dc.md``'s research notes): holding
registers read with FC 3 and written with FC 16; each measured value is a 4-word channel (float32
high word first; then alarm and test type in the high byte and unit and validity in the low byte;
then a description code): R_F at 1000, U_n at 1008. Prewarning and alarm thresholds (kOhm) at 3005
and 3007, measuring on/off at 3026, the self-test started by writing "TE" (0x5445) to 8005. The
factory unit address is 3; a new unit may need Modbus switched on in its menu first.
"""

from __future__ import annotations

import asyncio
import struct
import time

from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.exceptions import ModbusException

from hal.errors import HalConfigError, HalIOError, HalProtocolError, HalTimeoutError
from hal.imd import ImdAlarm, InsulationMonitor, InsulationReading

R_F, U_N = 1000, 1008
PREWARNING_KOHM, ALARM_KOHM, RUN = 3005, 3007, 3026
SELF_TEST, SELF_TEST_WORD = 8005, 0x5445
ALARMS = {0: ImdAlarm.NONE, 1: ImdAlarm.PREWARNING, 2: ImdAlarm.DEVICE_FAULT, 4: ImdAlarm.WARNING,
          5: ImdAlarm.ALARM}
INVALID = 0b11


def decode_channel(words: list[int]) -> tuple[float | None, ImdAlarm, bool]:
    """(value, alarm type, a test running) of a 4-word channel; value None when the device marks it invalid."""
    if len(words) != 4:
        raise HalProtocolError(f"a Bender channel is 4 words, got {len(words)}")
    value = struct.unpack(">f", struct.pack(">HH", words[0], words[1]))[0]
    att, ru = words[2] >> 8, words[2] & 0xFF
    alarm = ALARMS.get(att & 0b111, ImdAlarm.DEVICE_FAULT)
    testing = bool(att & 0b1100_0000)
    valid = ru >> 6 != INVALID and ru & 0x1F != 0 and value == value  # unit 0 is "invalid / init"; NaN too
    return (value if valid else None), alarm, testing


class BenderIsoCha425(InsulationMonitor):
    """An isoCHA425HV at ``unit`` on a serial port (RTU) or a Modbus TCP gateway."""

    def __init__(self, *, transport: str = "rtu", port: str = "/dev/ttyUSB1", baudrate: int = 19200,
                 parity: str = "E", host: str = "127.0.0.1", tcp_port: int = 502, unit: int = 3,
                 prewarning_kohm: int = 500, alarm_kohm: int = 100, timeout: float = 0.5) -> None:
        if transport not in ("rtu", "tcp"):
            raise HalConfigError(f"IMD transport must be rtu or tcp, got {transport!r}")
        if not 3 <= unit <= 90:
            raise HalConfigError(f"isoCHA425HV unit address must be 3-90, got {unit}")
        if not 5 <= alarm_kohm < prewarning_kohm <= 600:
            raise HalConfigError(f"isoCHA425HV thresholds need 5 <= alarm_kohm < prewarning_kohm <= 600 kOhm, "
                                 f"got alarm {alarm_kohm}, prewarning {prewarning_kohm}")
        self.unit = unit
        self.prewarning_kohm = prewarning_kohm
        self.alarm_kohm = alarm_kohm
        self.where = f"{port} unit {unit}" if transport == "rtu" else f"{host}:{tcp_port} unit {unit}"
        self._client: AsyncModbusSerialClient | AsyncModbusTcpClient
        if transport == "rtu":
            self._client = AsyncModbusSerialClient(port, baudrate=baudrate, parity=parity, stopbits=1, bytesize=8,
                                                   timeout=timeout, retries=0, reconnect_delay=0)
        else:
            self._client = AsyncModbusTcpClient(host, port=tcp_port, timeout=timeout, retries=0, reconnect_delay=0)
        self._lock = asyncio.Lock()  # one request at a time on the RS-485 line

    async def open(self) -> None:
        await self._write(PREWARNING_KOHM, self.prewarning_kohm)
        await self._write(ALARM_KOHM, self.alarm_kohm)

    async def start(self) -> None:
        await self._write(RUN, 1)

    async def stop(self) -> None:
        await self._write(RUN, 0)

    async def self_test(self, timeout: float = 30.0) -> bool:
        await self._write(SELF_TEST, SELF_TEST_WORD)
        deadline = time.monotonic() + timeout
        seen_test = False
        while time.monotonic() < deadline:
            _, alarm, testing = decode_channel(await self._read(R_F, 4))
            if testing:
                seen_test = True
            elif seen_test:
                return alarm != ImdAlarm.DEVICE_FAULT
            await asyncio.sleep(0.2)
        return False

    async def read(self) -> InsulationReading:
        resistance, alarm, testing = decode_channel(await self._read(R_F, 4))
        voltage, _, _ = decode_channel(await self._read(U_N, 4))
        return InsulationReading(resistance, alarm, testing, voltage)

    async def close(self) -> None:
        self._client.close()

    # ---------------------------------------------------------------- Modbus

    async def _connect(self) -> None:
        if not self._client.connected and not await self._client.connect():
            raise HalIOError(f"IMD at {self.where}: cannot connect")

    async def _read(self, address: int, count: int) -> list[int]:
        async with self._lock:
            await self._connect()
            try:
                rr = await self._client.read_holding_registers(address, count=count, device_id=self.unit)
            except (TimeoutError, ModbusException) as exc:
                self._client.close()
                raise HalTimeoutError(f"IMD at {self.where}: no answer ({exc}); is Modbus switched on in its "
                                      "menu (out -> Adr) and the baud rate and parity right?") from exc
        if rr.isError():
            raise HalProtocolError(f"IMD at {self.where} refused a read of {address}+{count}: {rr}")
        if len(rr.registers) != count:
            raise HalProtocolError(f"IMD at {self.where} sent {len(rr.registers)} registers for {count}")
        return list(rr.registers)

    async def _write(self, address: int, value: int) -> None:
        async with self._lock:
            await self._connect()
            try:
                rr = await self._client.write_registers(address, [value], device_id=self.unit)
            except (TimeoutError, ModbusException) as exc:
                self._client.close()
                raise HalTimeoutError(f"IMD at {self.where}: no answer to a write of {address} ({exc})") from exc
        if rr.isError():
            raise HalProtocolError(f"IMD at {self.where} refused {value} in register {address}: {rr}")
