"""An energy meter at the far end of Modbus: a pymodbus server whose registers integrate the EV's draw.

The register layout comes from the same map file the controller's driver
reads, so a new meter model is one data file for both sides.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from typing import Any

from pymodbus.server import ModbusSerialServer, ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from hal.meter.regmap import RegisterMap

log = logging.getLogger(__name__)

REGISTER_SPACE = 0x400


def free_tcp_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class MeterSimulator:
    """A meter model (energy, power, per-phase V and A) served over Modbus TCP or RTU."""

    def __init__(
        self, register_map: RegisterMap, *, phases: int, unit: int = 1, voltage: float = 230.0,
        energy_wh: float = 1_000_000.0,
    ) -> None:
        self.map = register_map
        self.phases = phases
        self.unit = unit
        self.voltage = voltage
        self.energy_wh = energy_wh
        self.current = 0.0
        self.reads = 0
        #: Set to a pymodbus ExcCodes member to make the meter refuse every read.
        self.refuse: Any = None
        self._lock = threading.Lock()
        self._last = time.monotonic()
        self._server: ModbusTcpServer | ModbusSerialServer | None = None
        self.port: int | None = None

    # ------------------------------------------------------------ the model

    def set_current(self, amps: float) -> None:
        """The EV's draw per phase changed (called from pin observers, any thread)."""
        with self._lock:
            self._integrate()
            self.current = amps

    def _integrate(self) -> None:
        now = time.monotonic()
        self.energy_wh += self.power_w * (now - self._last) / 3600.0
        self._last = now

    @property
    def power_w(self) -> float:
        """Active power now."""
        return self.voltage * self.current * self.phases

    def values(self) -> dict[str, float]:
        """Every quantity in SI units, integrated up to now."""
        with self._lock:
            self._integrate()
            values = {"energy_import": self.energy_wh, "power": self.power_w}
            for i in range(3):
                live = i < self.phases
                values[f"voltage_l{i + 1}"] = self.voltage if live else 0.0
                values[f"current_l{i + 1}"] = self.current if live else 0.0
            return values

    async def _action(
        self, function_code: int, start_address: int, address: int, count: int,
        current_registers: list[int], set_values: Any,
    ) -> Any:
        self.reads += 1
        if self.refuse is not None:
            return self.refuse
        fc = 4 if function_code == 4 else 3
        values = self.values()
        end = start_address + len(current_registers)
        for reg in self.map.registers.values():
            if reg.function == fc and start_address <= reg.address and reg.address + reg.count <= end:
                words = reg.encode(values[reg.quantity])
                at = reg.address - start_address
                current_registers[at : at + reg.count] = words
        return None

    def _device(self) -> SimDevice:
        block = [SimData(0, count=REGISTER_SPACE, values=0, datatype=DataType.REGISTERS)]
        bits = [SimData(0, count=1, values=False, datatype=DataType.BITS)]
        return SimDevice(self.unit, simdata=(bits, bits, list(block), list(block)), action=self._action)

    # --------------------------------------------------------------- serving

    async def start_tcp(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Serve Modbus TCP on loopback; returns the port."""
        self.port = port or free_tcp_port()
        self._server = ModbusTcpServer(self._device(), address=(host, self.port))
        await self._serve()
        return self.port

    async def start_serial(self, port: str, baudrate: int = 9600) -> None:
        """Serve Modbus RTU on a serial port (a pty in tests)."""
        self._server = ModbusSerialServer(self._device(), port=port, baudrate=baudrate)
        await self._serve()

    async def _serve(self) -> None:
        assert self._server is not None
        await self._server.serve_forever(background=True)

    async def stop(self) -> None:
        """Stop serving."""
        if self._server is not None:
            await self._server.shutdown()
            self._server = None
