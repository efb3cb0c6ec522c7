"""A Bender isoCHA425HV at the far end of Modbus, written from the manual's register facts (not the driver).

Holding registers: the R_F channel at 1000 and U_n at 1008 (4 words each: float32 high word first,
alarm/test type and unit/validity, description code), thresholds at 3005/3007 (kOhm), measuring
on/off at 3026, the self-test started by "TE" (0x5445) in 8005. The resistance is the DC circuit's
insulation resistance; a value becomes valid ``measure_time`` s after measuring starts (a real one
takes up to 10 s) and is invalid while stopped or testing.
"""

from __future__ import annotations

import struct
import time
from typing import Any

from pymodbus.server import ModbusSerialServer, ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from hil.dccircuit import DcCircuit
from hil.meter import free_tcp_port

UNIT_OHM, UNIT_VOLT = 2, 4
INVALID = 0b11 << 6
DESC_R_F, DESC_FAULT, DESC_U_N, DESC_DEVICE_ERROR = 71, 1, 76, 115
TEST_BIT = 0x80  # AT&T bit 7: a test is running


class IsoCha425Sim:
    """The device's model and its Modbus server."""

    def __init__(self, circuit: DcCircuit, *, unit: int = 3, measure_time: float = 2.0,
                 self_test_time: float = 1.0) -> None:
        self.circuit = circuit
        self.unit = unit
        self.measure_time = measure_time
        self.self_test_time = self_test_time
        self.prewarning_kohm = 600
        self.alarm_kohm = 120
        self.measuring = False
        self.self_test_fails = False
        self.writes: list[tuple[int, int]] = []
        self._started = 0.0
        self._test_until = 0.0
        self._device_fault = False
        self._server: ModbusTcpServer | ModbusSerialServer | None = None
        self.port: int | None = None

    # ---------------------------------------------------------------- the model

    def _testing(self) -> bool:
        return time.monotonic() < self._test_until

    def _channel(self, value: float, unit: int, desc: int, alarm: int, valid: bool) -> list[int]:
        high, low = struct.unpack(">HH", struct.pack(">f", value))
        att = alarm | (TEST_BIT if self._testing() else 0)
        return [high, low, att << 8 | unit | (0 if valid else INVALID), desc]

    def r_f(self) -> list[int]:
        """The R_F channel as the device would send it now."""
        if self._device_fault and not self._testing():
            return self._channel(0.0, UNIT_OHM, DESC_DEVICE_ERROR, 2, False)
        ohms = self.circuit.insulation_ohms
        valid = self.measuring and not self._testing() and time.monotonic() - self._started >= self.measure_time
        alarm = 5 if ohms < self.alarm_kohm * 1000 else 1 if ohms < self.prewarning_kohm * 1000 else 0
        return self._channel(min(ohms, 50e6), UNIT_OHM, DESC_FAULT if alarm and valid else DESC_R_F,
                             alarm if valid else 0, valid)

    def u_n(self) -> list[int]:
        """The U_n channel."""
        return self._channel(self.circuit.outlet_voltage, UNIT_VOLT, DESC_U_N, 0, self.measuring)

    def _write(self, address: int, value: int) -> None:
        self.writes.append((address, value))
        if address == 3005:
            self.prewarning_kohm = value
        elif address == 3007:
            self.alarm_kohm = value
        elif address == 3026:
            if value and not self.measuring:
                self._started = time.monotonic()
            self.measuring = bool(value)
        elif address == 8005 and value == 0x5445:
            self._test_until = time.monotonic() + self.self_test_time
            self._device_fault = self.self_test_fails
            self._started = self._test_until  # measuring starts over after the test

    async def _action(self, function_code: int, start_address: int, address: int, count: int,
                      registers: list[int], set_values: Any) -> Any:
        if set_values:
            for i, value in enumerate(set_values):
                self._write(address + i, int(value))
            return None
        for base, words in ((1000, self.r_f()), (1008, self.u_n())):
            for i, word in enumerate(words):
                registers[base + i - start_address] = word
        return None

    # ---------------------------------------------------------------- serving

    def _device(self) -> SimDevice:
        block = [SimData(0, count=9830, values=0, datatype=DataType.REGISTERS)]
        bits = [SimData(0, count=1, values=False, datatype=DataType.BITS)]
        return SimDevice(self.unit, simdata=(bits, bits, list(block), list(block)), action=self._action)

    async def start_tcp(self, host: str = "127.0.0.1") -> int:
        """Serve Modbus TCP on loopback (a gateway); returns the port."""
        self.port = port = free_tcp_port()
        self._server = ModbusTcpServer(self._device(), address=(host, port))
        await self._server.serve_forever(background=True)
        return port

    async def start_serial(self, port: str, baudrate: int = 19200, parity: str = "E") -> None:
        """Serve Modbus RTU (8E1, as the device is usually set) on a serial port."""
        self._server = ModbusSerialServer(self._device(), port=port, baudrate=baudrate, parity=parity)
        await self._server.serve_forever(background=True)

    async def stop(self) -> None:
        """Stop serving."""
        if self._server is not None:
            await self._server.shutdown()
            self._server = None
