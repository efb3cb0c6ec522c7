"""A simulated EVSE-WB / EVSE-DIN board: its registers served over Modbus TCP or RTU (a pty), its car scripted.

It behaves as the boards do (``hal/evsewb.py`` lists the registers): PWM only while 1000 holds 6 A or more, the
relay on at state C or D while the PWM runs, off at once on 1004 bit 0 or at 0 A, a failed diode check and an RCD
error as injectable faults (1002 = 5 and the bits of 1007).
"""

from __future__ import annotations

import threading
from typing import Any

from pymodbus.constants import ExcCodes
from pymodbus.server import ModbusSerialServer, ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from hal.evsewb import COMMAND, CONFIG, CURRENT, DIODE_FAILED, PRECISE_CURRENT, RCD_ERROR, RELAY_ON, TURN_OFF_NOW
from hil.meter import free_tcp_port

#: The registers a board has: 1000-1009 and 2000-2017.
SPACES = ((1000, 10), (2000, 18))


class EvseWbSimulator:
    """The board's state, and a Modbus server that reads and writes it."""

    def __init__(self, *, unit: int = 1, firmware: int = 18) -> None:
        self.unit = unit
        self.firmware = firmware
        #: The car at the end of the cable: 1 none (A), 2 connected (B), 3 charging (C), 4 ventilation (D).
        self.car = 1
        self.diode_failed = False
        self.rcd_error = False
        self.current_raw = 0  # register 1000 as written
        self.config_bits = 0x0200  # 2005: pilot auto-recover, the factory default
        self.writes: list[tuple[int, int]] = []
        self._lock = threading.Lock()
        self._server: ModbusTcpServer | ModbusSerialServer | None = None
        self.port: int | None = None

    @property
    def amps(self) -> float:
        """The current offered on the PWM (0: none)."""
        scale = 100 if self.firmware >= 17 and self.config_bits & PRECISE_CURRENT else 1
        amps = self.current_raw / scale
        return amps if amps >= 6 else 0.0

    @property
    def relay(self) -> bool:
        """The relay: on while the PWM runs and the car asks for power, and nothing has failed."""
        return bool(self.amps) and self.car in (3, 4) and not (self.diode_failed or self.rcd_error)

    def registers(self) -> dict[int, int]:
        """Every register's value now."""
        with self._lock:
            scale = 100 if self.firmware >= 17 and self.config_bits & PRECISE_CURRENT else 1
            vehicle = 5 if self.diode_failed or self.rcd_error else self.car
            status = (RELAY_ON if self.relay else 0) | (DIODE_FAILED if self.diode_failed else 0) | \
                (RCD_ERROR if self.rcd_error else 0)
            return {1000: self.current_raw, 1001: round(self.amps * scale), 1002: vehicle, 1003: 32, 1004: 0,
                    1005: self.firmware, 1006: 2 if self.amps else 1, 1007: status, 1008: 0, 1009: 0,
                    2000: 16, 2001: self.unit, 2002: 5, 2005: self.config_bits}

    def _write(self, address: int, value: int) -> None:
        with self._lock:
            self.writes.append((address, value))
            if address == CURRENT:
                self.current_raw = value
            elif address == COMMAND and value & TURN_OFF_NOW:
                self.current_raw = 0
            elif address == CONFIG:
                self.config_bits = value

    async def _action(self, function_code: int, start_address: int, address: int, count: int,
                      current_registers: list[int], set_values: Any) -> Any:
        if not any(first <= address and address + count <= first + size for first, size in SPACES):
            return ExcCodes.ILLEGAL_ADDRESS
        if self.firmware <= 15 and address + count > 1007 and address < 1010:
            return ExcCodes.ILLEGAL_ADDRESS  # the older firmware has no 1007-1009
        if set_values is not None:
            for i, value in enumerate(set_values):
                self._write(address + i, int(value))
            return None
        values = self.registers()
        for i in range(count):
            current_registers[address - start_address + i] = values.get(address + i, 0)
        return None

    def _device(self) -> SimDevice:
        block = [SimData(0, count=2100, values=0, datatype=DataType.REGISTERS)]
        bits = [SimData(0, count=1, values=False, datatype=DataType.BITS)]
        return SimDevice(self.unit, simdata=(bits, bits, list(block), list(block)), action=self._action)

    async def start_tcp(self, host: str = "127.0.0.1") -> int:
        """Serve Modbus TCP on loopback; returns the port."""
        self.port = free_tcp_port()
        self._server = ModbusTcpServer(self._device(), address=(host, self.port))
        await self._server.serve_forever(background=True)
        return self.port

    async def start_serial(self, port: str, baudrate: int = 9600) -> None:
        """Serve Modbus RTU on a serial port (a pty in the tests)."""
        self._server = ModbusSerialServer(self._device(), port=port, baudrate=baudrate)
        await self._server.serve_forever(background=True)

    async def stop(self) -> None:
        """Stop serving."""
        if self._server is not None:
            await self._server.shutdown()
            self._server = None
