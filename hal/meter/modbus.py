"""Modbus RTU (serial) and Modbus TCP meters through pymodbus's async clients."""

from __future__ import annotations

import logging
import time

from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.exceptions import ModbusException

from hal.errors import HalConfigError, HalIOError, HalProtocolError, HalTimeoutError
from hal.meter import EnergyMeter, MeterReading
from hal.meter.regmap import Block, load_register_map

log = logging.getLogger(__name__)


class ModbusMeter(EnergyMeter):
    """A meter described by a register map, read block by block."""

    def __init__(
        self,
        *,
        model: str,
        transport: str = "rtu",
        port: str = "/dev/ttyUSB0",
        baudrate: int = 9600,
        parity: str = "N",
        stopbits: int = 1,
        bytesize: int = 8,
        host: str = "127.0.0.1",
        tcp_port: int = 502,
        address: int = 1,
        timeout: float = 0.5,
    ) -> None:
        if transport not in ("rtu", "tcp"):
            raise HalConfigError(f"meter transport must be rtu or tcp, got {transport!r}")
        self.map = load_register_map(model)
        self._blocks = self.map.blocks()
        self.address = address
        self.where = f"{port} unit {address}" if transport == "rtu" else f"{host}:{tcp_port} unit {address}"
        self._client: AsyncModbusSerialClient | AsyncModbusTcpClient
        if transport == "rtu":
            self._client = AsyncModbusSerialClient(
                port,
                baudrate=baudrate,
                parity=parity,
                stopbits=stopbits,
                bytesize=bytesize,
                timeout=timeout,
                retries=0,
                reconnect_delay=0,
            )
        else:
            self._client = AsyncModbusTcpClient(
                host, port=tcp_port, timeout=timeout, retries=0, reconnect_delay=0
            )

    async def read(self) -> MeterReading:
        if not self._client.connected and not await self._client.connect():
            raise HalIOError(f"meter at {self.where}: cannot connect")
        values: dict[str, float] = {}
        for block in self._blocks:
            words = await self._read_block(block)
            for reg in block.registers:
                values[reg.quantity] = reg.decode_in(words, block.address)
        return MeterReading(
            energy_wh=values["energy_import"],
            power_w=values.get("power"),
            voltage=(values.get("voltage_l1"), values.get("voltage_l2"), values.get("voltage_l3")),
            current=(values.get("current_l1"), values.get("current_l2"), values.get("current_l3")),
            taken_at=time.monotonic(),
        )

    async def identify(self) -> str | None:
        register = self.map.identity.get("serial")
        if register is None:
            return None
        if not self._client.connected and not await self._client.connect():
            raise HalIOError(f"meter at {self.where}: cannot connect")
        words = await self._read_block(Block(register.function, register.address, register.count, (register,)))
        serial = int(register.decode(words))
        return str(serial) if serial else None  # 0: an older meter without the register

    async def _read_block(self, block: Block) -> list[int]:
        try:
            if block.function == 4:
                rr = await self._client.read_input_registers(
                    block.address, count=block.count, device_id=self.address
                )
            else:
                rr = await self._client.read_holding_registers(
                    block.address, count=block.count, device_id=self.address
                )
        except TimeoutError as exc:
            raise HalTimeoutError(f"meter at {self.where}: no answer") from exc
        except ModbusException as exc:
            # pymodbus reports a silent device as "No response received"; the link is reopened next read.
            self._client.close()
            raise HalTimeoutError(f"meter at {self.where}: {exc}") from exc
        if rr.isError():
            raise HalProtocolError(
                f"meter at {self.where} refused FC{block.function:02d} {block.address:#06x}+{block.count}: {rr}"
            )
        if len(rr.registers) < block.count:
            raise HalProtocolError(
                f"meter at {self.where} sent {len(rr.registers)} registers, asked for {block.count}"
            )
        return list(rr.registers)

    async def close(self) -> None:
        self._client.close()
