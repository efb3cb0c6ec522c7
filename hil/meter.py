"""An energy meter at the far end of Modbus: a pymodbus server whose registers integrate the EV's draw.

The bundled models are served from their datasheets' register layouts, written
out below from ``shared/reference/hardware.md`` section 4 and *not* read from
the driver's map files: a map file with a wrong address then fails the tests
instead of agreeing with itself. A custom map file (a model the bench has no
datasheet for) is served as the file says, so it is not checked independently.
"""

from __future__ import annotations

import logging
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pymodbus.server import ModbusSerialServer, ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from hal.meter.regmap import RegisterMap, load_register_map

log = logging.getLogger(__name__)

REGISTER_SPACE = 0x10000
INPUT, HOLDING = 4, 3


@dataclass(frozen=True)
class Cell:
    """One quantity where a meter keeps it: function code, first wire address, encoding, SI units per raw unit."""

    function: int
    address: int
    fmt: str  # struct format of the whole value, big-endian
    si_per_raw: float = 1.0
    low_word_first: bool = False
    #: Where the meter keeps this value's decimal exponent, and the exponent it uses (raw = si / 10^(e - 3)).
    exponent_address: int | None = None
    exponent: int = 3

    def words(self, si_value: float) -> list[int]:
        """The register words that hold ``si_value``."""
        raw: float | int = si_value / self.si_per_raw / 10.0 ** (self.exponent - 3)
        if self.fmt[-1] not in "fd":
            raw = round(raw)
        data = struct.pack(self.fmt, raw)
        words = [int.from_bytes(data[i:i + 2], "big") for i in range(0, len(data), 2)]
        return words[::-1] if self.low_word_first else words


def _float32(address: int, si_per_raw: float = 1.0) -> Cell:
    return Cell(INPUT, address, ">f", si_per_raw)


# Eastron SDM630 (v1/v2) and SDM120: input registers, IEEE 754 float32 with the high word first; volts at
# 0x00/0x02/0x04, amps at 0x06/0x08/0x0A, total active power at 0x34 (SDM120: 0x0C), import energy in kWh at 0x48;
# the serial number in holding registers 0xFC00-0xFC01 as an unsigned 32-bit integer, high word first.
_SERIAL = Cell(HOLDING, 0xFC00, ">I")
DATASHEETS: dict[str, dict[str, Cell]] = {
    "sdm630": {
        "voltage_l1": _float32(0x00), "voltage_l2": _float32(0x02), "voltage_l3": _float32(0x04),
        "current_l1": _float32(0x06), "current_l2": _float32(0x08), "current_l3": _float32(0x0A),
        "power": _float32(0x34), "energy_import": _float32(0x48, 1000.0), "serial": _SERIAL,
    },
    "sdm120": {
        "voltage_l1": _float32(0x00), "current_l1": _float32(0x06), "power": _float32(0x0C),
        "energy_import": _float32(0x48, 1000.0), "serial": _SERIAL,
    },
    # Acrel DJSF1352-RN (DC): holding registers, each value with its decimal exponent in the next register
    # (V = raw * 10^(e - 3)): voltage 0/1, current (signed) 2/3, power (signed) 8/9; import energy at 12-13 as
    # uint32, high word first. This meter keeps 0.1 V, 0.1 A and 10 W resolution.
    "djsf1352": {
        "voltage_l1": Cell(HOLDING, 0, ">H", exponent_address=1, exponent=2),
        "current_l1": Cell(HOLDING, 2, ">h", exponent_address=3, exponent=2),
        "power": Cell(HOLDING, 8, ">h", exponent_address=9, exponent=4),
        "energy_import": Cell(HOLDING, 12, ">I"),
    },
}


def cells_for(model: str) -> dict[str, Cell]:
    """The layout the simulator serves for a meter model: its datasheet, or a custom map file as written."""
    if model in DATASHEETS:
        return DATASHEETS[model]
    regmap: RegisterMap = load_register_map(model)
    log.warning("no datasheet layout for meter %r on the bench: serving its map file as written", model)
    formats = {"float32": ">f", "int32": ">i", "uint32": ">I", "int16": ">h", "uint16": ">H", "uint64": ">Q",
               "int64": ">q"}
    return {q: Cell(r.function, r.address, formats[r.type], r.scale, r.word_order == "little")
            for q, r in {**regmap.registers, **regmap.identity}.items()}


def free_tcp_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class MeterSimulator:
    """A meter model (energy, power, per-phase V and A) served over Modbus TCP or RTU."""

    def __init__(
        self, model: str, *, phases: int, unit: int = 1, voltage: float = 230.0, energy_wh: float = 1_000_000.0,
        serial: int = 21_040_815, measure: Callable[[], tuple[float, float]] | None = None,
    ) -> None:
        self.cells = cells_for(model)
        #: A DC meter's (volts, amps) now, read at every request (the bench's DC circuit); None: ``set_current``.
        self.measure = measure
        #: The meter's serial number (what a map's [identity] serial reads).
        self.serial = serial
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
            if self.measure is not None:
                self.voltage, self.current = self.measure()
            values = {"energy_import": self.energy_wh, "power": self.power_w, "serial": float(self.serial)}
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
        fc = INPUT if function_code == INPUT else HOLDING
        values = self.values()
        end = start_address + len(current_registers)
        for quantity, cell in self.cells.items():
            words = cell.words(values[quantity])
            if cell.function == fc and start_address <= cell.address and cell.address + len(words) <= end:
                at = cell.address - start_address
                current_registers[at : at + len(words)] = words
            if cell.exponent_address is not None and cell.function == fc \
                    and start_address <= cell.exponent_address < end:
                current_registers[cell.exponent_address - start_address] = cell.exponent
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
