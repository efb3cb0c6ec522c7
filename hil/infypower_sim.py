"""InfyPower REG modules at the far end of a CAN bus, written from the protocol facts (not from the driver).

Each simulated module answers V1.13 commands addressed to it (29-bit ids: error, device 0x0A,
command, destination, source; 8-byte big-endian payloads; controller 0xF0) and drives its share
of a :class:`~hil.dccircuit.DcCircuit`: the stage's voltage is the highest set point of the modules
that are on, its current limit the sum of their shares. A module switches itself off when it has
heard nothing from the controller for 10 s, as the real ones do. Faults are injected per module.
"""

from __future__ import annotations

import struct
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import can

from hil.dccircuit import DcCircuit

SILENCE_OFF = 10.0


@dataclass
class SimModule:
    """One module's state and ratings (defaults: a 750 V, 30 A, 15 kW module)."""

    address: int
    max_voltage: int = 750
    min_voltage: int = 100
    max_current: float = 30.0
    power: int = 15_000
    group: int = 0
    on: bool = False
    voltage: float = 0.0
    current: float = 0.0
    heard: float = field(default_factory=time.monotonic)
    status_bits: set[tuple[int, int]] = field(default_factory=set)  # (byte, bit) set in the 0x04 reply
    ignores_off: bool = False  # a module whose output stage does not obey OFF
    barcode: str = "081807123451V1704"


#: How many frames the bench keeps for tests to look at (a long run must not grow without bound).
HISTORY = 20_000

class InfyPowerSim:
    """Modules on one bus; :meth:`start` runs the bus thread, :meth:`stop` ends it."""

    def __init__(self, circuit: DcCircuit, addresses: list[int], *, interface: str = "virtual", channel: str,
                 silence_off: float = SILENCE_OFF, **module: Any) -> None:
        self.circuit = circuit
        self.silence_off = silence_off
        self.modules = {a: SimModule(a, **module) for a in addresses}
        self.silent: set[int] = set()  # modules that stopped answering (a broken wire, a dead module)
        self._bus = can.Bus(interface=interface, channel=channel)
        self._running = threading.Event()
        self._thread: threading.Thread | None = None
        self.received: deque[int] = deque(maxlen=HISTORY)  # command numbers, in arrival order
        stage = circuit.stage
        stage.max_voltage = float(min(m.max_voltage for m in self.modules.values()))
        stage.min_voltage = float(max(m.min_voltage for m in self.modules.values()))
        stage.max_current = sum(m.max_current for m in self.modules.values())
        stage.max_power = float(sum(m.power for m in self.modules.values()))

    def start(self) -> None:
        """Answer frames from now on."""
        self._running.set()
        self._thread = threading.Thread(target=self._serve, name="infypower-sim", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop answering and release the bus."""
        self._running.clear()
        if self._thread is not None:
            self._thread.join(1.0)
        self._bus.shutdown()

    def power_cycle(self, address: int) -> None:
        """The module loses and regains its supply: off, set points forgotten."""
        module = self.modules[address]
        module.on, module.voltage, module.current = False, 0.0, 0.0

    def fault(self, address: int, name: str, active: bool = True) -> None:
        """Set or clear a status bit by its meaning (``module fault``, ``output over-voltage`` ...)."""
        bits = {"output short circuit": (7, 0), "module fault": (6, 1), "module protection": (6, 2),
                "over-temperature": (6, 4), "output over-voltage": (6, 5), "input phase lost": (5, 3)}
        bit = bits[name]
        module = self.modules[address]
        (module.status_bits.add if active else module.status_bits.discard)(bit)
        self.circuit.failed = any(m.status_bits & {(6, 1), (7, 0)} for m in self.modules.values())

    # ---------------------------------------------------------------- the bus thread

    def _serve(self) -> None:
        while self._running.is_set():
            msg = self._bus.recv(0.05)
            now = time.monotonic()
            for module in self.modules.values():
                if module.on and now - module.heard > self.silence_off:
                    module.on = False  # the module's own watchdog
            if msg is not None and msg.is_extended_id and len(msg.data) == 8:
                self._answer(msg.arbitration_id, bytes(msg.data), now)
            self._drive()

    def _answer(self, ident: int, data: bytes, now: float) -> None:
        device, command, destination, source = ident >> 22 & 0xF, ident >> 16 & 0x3F, ident >> 8 & 0xFF, ident & 0xFF
        if device != 0x0A or source != 0xF0:
            return
        targets = list(self.modules.values()) if destination == 0x3F else (
            [self.modules[destination]] if destination in self.modules else [])
        for module in targets:
            module.heard = now
            self.received.append(command)
            reply = self._reply(module, command, data)
            if reply is not None and module.address not in self.silent:
                reply_id = 0x0A << 22 | command << 16 | 0xF0 << 8 | module.address
                self._bus.send(can.Message(arbitration_id=reply_id, data=reply, is_extended_id=True))

    def _reply(self, module: SimModule, command: int, data: bytes) -> bytes | None:
        volts, _, amps = self.circuit.measured()
        online = [m for m in self.modules.values() if m.on] or [module]
        if command == 0x03:
            share = amps / len(online) if module.on else 0.0
            return struct.pack(">ff", volts, share)
        if command == 0x0C:
            available = module.max_current if module.on else 0.0
            return struct.pack(">HH", round(volts * 10), round(available * 10)) + bytes(4)
        if command == 0x04:
            status = bytearray(8)
            status[2] = module.group
            status[4] = 27
            for byte, bit in module.status_bits | (set() if module.on else {(6, 0)}):
                status[byte] |= 1 << bit
            return bytes(status)
        if command == 0x0A:
            return struct.pack(">HHHH", module.max_voltage, module.min_voltage, round(module.max_current * 10),
                               module.power // 10)
        if command == 0x0B:
            digits, tail = module.barcode[:12], module.barcode[13:17]
            return bytes([ord(module.barcode[12])]) + int(digits).to_bytes(5, "big") + int(tail).to_bytes(2, "big")
        if command == 0x1A:
            module.on = data[0] == 0x00 or (module.ignores_off and module.on)
            return data
        if command == 0x1C:
            millivolts, milliamps = struct.unpack(">II", data)
            module.voltage = min(millivolts / 1000, module.max_voltage)
            module.current = min(milliamps / 1000, module.max_current)
            return data
        if command == 0x02:
            return bytes([0, 0, len(self.modules)]) + bytes(5)
        return None

    def _drive(self) -> None:
        on = [m for m in self.modules.values() if m.on]
        if on:
            self.circuit.command(on=True, voltage=max(m.voltage for m in on), current=sum(m.current for m in on))
        else:
            self.circuit.command(on=False)
