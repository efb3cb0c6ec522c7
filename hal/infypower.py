"""InfyPower REG / CEG rectifier modules (CAN protocol V1.13) as one DC power stage.

29-bit ids at 125 kbit/s on a bus of their own: error code (bits 28-26), device (25-22: 0x0A one
module, 0x0B a group), command (21-16), destination (15-8), source (7-0); the controller is 0xF0;
every frame is 8 bytes, big-endian (facts: ``dc.md`` 4 and EVerest's driver, read for facts only).

Every configured module is polled (V/I and the voltage after its diode each ``poll`` s, status
each second) and set one by one: the same voltage, the total current shared equally between the
modules that answer. Set points go out again every second, so a lost frame is repaired and a
module's own 10 s silence switch-off never comes into play; switching off is always a command.
A module silent for ``offline_after`` s (15 s by default: more than the module's 10 s, as
EVerest keeps it) leaves the share and raises a fault while none is left. Replies with an error
code, from an address not configured, or shorter than 8 bytes are logged and dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import struct
import threading
import time
from dataclasses import dataclass, field

from hal.can import CanBus, Frame
from hal.dc_power import DcPowerStage, PowerCapabilities, PowerReading
from hal.errors import HalConfigError, HalIOError

log = logging.getLogger(__name__)

CONTROLLER = 0xF0
DEV_MODULE, DEV_GROUP = 0x0A, 0x0B
READ_VI, READ_STATUS, READ_CAPS, READ_BARCODE, READ_EXTERNAL = 0x03, 0x04, 0x0A, 0x0B, 0x0C
ON_OFF, SET_VI = 0x1A, 0x1C
ON, OFF = 0x00, 0x01
ERROR_CODES = {2: "command invalid", 3: "data invalid", 7: "still starting"}

#: 0x04 status, (byte, bit) -> fault name. Byte 7 = table 0, 6 = table 1, 5 = table 2 (EVerest's
#: layout, which five sources share; one test suite swaps 5 and 6: confirm on hardware).
STATUS_FAULTS = {
    (7, 0): "output short circuit", (7, 5): "abnormal discharge",
    (6, 1): "module fault", (6, 2): "module protection", (6, 4): "over-temperature",
    (6, 5): "output over-voltage", (6, 7): "communication interrupted",
    (5, 2): "load sharing imbalance", (5, 3): "input phase lost", (5, 4): "input unbalanced",
    (5, 5): "input under-voltage", (5, 6): "input over-voltage",
}
STATUS_OFF = (6, 0)  # DC side off


def frame_id(command: int, destination: int, *, device: int = DEV_MODULE, source: int = CONTROLLER,
             error: int = 0) -> int:
    """The 29-bit id of an InfyPower frame."""
    return (error & 7) << 26 | (device & 0xF) << 22 | (command & 0x3F) << 16 | (destination & 0xFF) << 8 \
        | (source & 0xFF)


def split_id(ident: int) -> tuple[int, int, int, int, int]:
    """(error, device, command, destination, source) of an id."""
    return ident >> 26 & 7, ident >> 22 & 0xF, ident >> 16 & 0x3F, ident >> 8 & 0xFF, ident & 0xFF


@dataclass
class _Module:
    address: int
    caps: PowerCapabilities | None = None
    voltage: float = 0.0
    current: float = 0.0
    external_voltage: float = 0.0
    faults: frozenset[str] = frozenset()
    off: bool = True
    seen: float = field(default_factory=time.monotonic)
    vi_at: float = field(default_factory=time.monotonic)  # when its voltage and current were last read
    online: bool = True
    serial: str | None = None


class InfyPowerStage(DcPowerStage):
    """Modules at ``addresses`` on ``bus`` (a CAN bus of their own, 125 kbit/s)."""

    def __init__(self, *, bus: CanBus, addresses: list[int], poll: float = 0.1, offline_after: float = 15.0,
                 open_timeout: float = 2.0) -> None:
        if not addresses or len(set(addresses)) != len(addresses) or not all(0 <= a <= 0x3E for a in addresses):
            raise HalConfigError(f"InfyPower module addresses must be distinct numbers 0-62, got {addresses!r}")
        if offline_after <= 10.0:
            raise HalConfigError(f"InfyPower offline_after must be above the modules' own 10 s, got {offline_after}")
        self.bus = bus
        self.poll = poll
        self.offline_after = offline_after
        self.open_timeout = open_timeout
        self.modules = {a: _Module(a) for a in addresses}
        self._lock = threading.Lock()
        self._caps: PowerCapabilities | None = None
        self._target: tuple[float, float] | None = None  # (V, total A) while on
        self._faults: frozenset[str] = frozenset()
        self._task: asyncio.Task[None] | None = None
        self._unsubscribe = bus.subscribe(self._on_frame)

    # ---------------------------------------------------------------- the role

    async def open(self) -> PowerCapabilities:
        self._switch(OFF)
        deadline = time.monotonic() + self.open_timeout
        while time.monotonic() < deadline and any(m.caps is None for m in self.modules.values()):
            for module in self.modules.values():
                if module.caps is None:
                    self._read(READ_CAPS, module.address)
            await asyncio.sleep(0.1)
        silent = [m.address for m in self.modules.values() if m.caps is None]
        if silent:
            raise HalIOError(f"InfyPower module(s) {', '.join(map(str, silent))} on {self.bus.name} did not answer "
                             "within {:.0f} s: check the module bus wiring and termination, 125 kbit/s and the "
                             "address dials".format(self.open_timeout))
        caps = [m.caps for m in self.modules.values() if m.caps is not None]
        self._caps = PowerCapabilities(
            min_voltage=max(c.min_voltage for c in caps), max_voltage=min(c.max_voltage for c in caps),
            max_current=sum(c.max_current for c in caps), max_power=sum(c.max_power for c in caps))
        self._task = asyncio.create_task(self._run(), name="infypower-poll")
        log.info("InfyPower: %d module(s) on %s: %.0f-%.0f V, %.1f A, %.1f kW", len(caps), self.bus.name,
                 self._caps.min_voltage, self._caps.max_voltage, self._caps.max_current, self._caps.max_power / 1000)
        return self._caps

    @property
    def capabilities(self) -> PowerCapabilities:
        if self._caps is None:
            raise RuntimeError("InfyPower stage not opened")
        return self._caps

    def set(self, voltage: float, current: float) -> None:
        caps = self.capabilities
        voltage = max(caps.min_voltage, min(voltage, caps.max_voltage))
        current = max(0.0, min(current, caps.current_at(voltage)))
        with self._lock:
            changed = self._target != (voltage, current)
            was_off = self._target is None
            self._target = (voltage, current)
        if changed:
            self._send_setpoints()
        if was_off:
            self._switch(ON)

    def shut_off(self) -> None:
        with self._lock:
            self._target = None
        self._switch(OFF)

    @property
    def reading(self) -> PowerReading:
        with self._lock:
            online = [m for m in self.modules.values() if m.online]
            return PowerReading(
                voltage=max((m.external_voltage for m in online), default=0.0),
                current=sum(m.current for m in online),
                on=self._target is not None and any(not m.off for m in online),
                faults=self._faults,
                at=min((m.vi_at for m in online), default=0.0))  # as old as its oldest part

    async def close(self) -> None:
        self.shut_off()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._unsubscribe()

    # ---------------------------------------------------------------- polling

    async def _run(self) -> None:
        tick = 0
        while True:
            every_second = tick % max(1, round(1.0 / self.poll)) == 0
            for module in list(self.modules.values()):
                self._read(READ_VI, module.address)
                self._read(READ_EXTERNAL, module.address)
                if every_second:
                    self._read(READ_STATUS, module.address)
                    if module.serial is None:
                        self._read(READ_BARCODE, module.address)
            if every_second:
                self._expire()
                if self._target is not None:
                    self._send_setpoints()
                    self._switch(ON)
            tick += 1
            await asyncio.sleep(self.poll)

    def _expire(self) -> None:
        now = time.monotonic()
        changed = False
        with self._lock:
            for module in self.modules.values():
                online = now - module.seen <= self.offline_after
                if online != module.online:
                    module.online = online
                    changed = True
                    log.error("InfyPower module %d on %s %s", module.address, self.bus.name,
                              "answers again" if online else f"silent for {self.offline_after:.0f} s: left out")
        if changed:
            if self._target is not None:
                self._send_setpoints()  # the share changes with the number of modules
            self._update_faults()

    # ---------------------------------------------------------------- frames

    def _read(self, command: int, address: int) -> None:
        self.bus.send(Frame(frame_id(command, address), bytes(8), extended=True))

    def _switch(self, state: int) -> None:
        for address in self.modules:
            self.bus.send(Frame(frame_id(ON_OFF, address), bytes([state]) + bytes(7), extended=True))

    def _send_setpoints(self) -> None:
        with self._lock:
            target = self._target
            online = [m for m in self.modules.values() if m.online] or list(self.modules.values())
        if target is None:
            return
        voltage, current = target
        share = current / len(online)
        for module in online:
            amps = min(share, module.caps.max_current) if module.caps else share
            payload = struct.pack(">II", round(voltage * 1000), round(amps * 1000))
            self.bus.send(Frame(frame_id(SET_VI, module.address), payload, extended=True))

    def _on_frame(self, frame: Frame) -> None:
        if not frame.extended:
            return
        error, device, command, destination, source = split_id(frame.id)
        if destination != CONTROLLER or device not in (DEV_MODULE, DEV_GROUP):
            return
        module = self.modules.get(source)
        if module is None:
            log.warning("InfyPower: reply from module %d, which is not configured; ignored", source)
            return
        if len(frame.data) != 8:
            log.warning("InfyPower: frame %s from module %d is not 8 bytes; ignored", frame, source)
            return
        if error:
            log.warning("InfyPower: module %d answered command %#04x with error %d (%s)", source, command, error,
                        ERROR_CODES.get(error, "unknown"))
            return
        data = frame.data
        with self._lock:
            if command == READ_VI:
                volts, amps = struct.unpack(">ff", data)
                if not (math.isfinite(volts) and math.isfinite(amps)):
                    log.warning("InfyPower: module %d sent V/I %r %r; ignored", source, volts, amps)
                    return
                module.voltage, module.current, module.vi_at = volts, amps, time.monotonic()
            elif command == READ_EXTERNAL:
                module.external_voltage = struct.unpack(">H", data[0:2])[0] / 10
            elif command == READ_CAPS:
                vmax, vmin, imax, power = struct.unpack(">HHHH", data)
                module.caps = PowerCapabilities(float(vmin), float(vmax), imax / 10, power * 10.0)
            elif command == READ_BARCODE:
                module.serial = f"{int.from_bytes(data[1:6], 'big'):012d}{int.from_bytes(data[6:8], 'big'):04d}" \
                                f"{chr(data[0]) if 32 < data[0] < 127 else ''}"
            elif command == READ_STATUS:
                module.seen = time.monotonic()
                module.off = bool(data[STATUS_OFF[0]] >> STATUS_OFF[1] & 1)
                module.faults = frozenset(name for (byte, bit), name in STATUS_FAULTS.items()
                                          if data[byte] >> bit & 1)
        if command == READ_STATUS:
            if not module.online:
                self._expire()
            self._update_faults()

    def _update_faults(self) -> None:
        with self._lock:
            online = [m for m in self.modules.values() if m.online]
            faults = {f"module {m.address}: {name}" for m in online for name in m.faults}
            if not online:
                faults.add("no module answers")
            new = frozenset(faults)
            changed = new != self._faults
            self._faults = new
        if changed:
            if new:
                log.error("InfyPower: %s", "; ".join(sorted(new)))
            callback = self.on_fault
            if callback is not None:
                callback(new)
