"""The Modbus EVSE boards of DIY wallboxes (evracing EVSE-WB / EVSE-DIN, "SimpleEVSE"): pilot, relay and RCD.

The board owns the pilot's oscillator and the relay; this driver gives the controller the roles it knows, over
one shared Modbus connection per board: a :class:`ControlPilot` (the board's vehicle state as pilot volts, its
diode check as the low half), a :class:`Contactor` (its relay) and a :class:`ResidualCurrentMonitor` (its RCD
input). Registers (holding, read FC03, written FC16, as evcc, openWB and SimpleEVSE-WiFi do):

- 1000 current to offer (A; 0.01 A from firmware 17 with config bit 7 of 2005 set; 0: no PWM, steady +12 V),
  1001 the current on the PWM now, 1002 vehicle state (1 A, 2 B, 3 C, 4 D, 5 failure), 1003 the cable's
  limit, 1004 command bits (bit 0: turn charging off now), 1005 firmware, 1006 EVSE state (1 steady 12 V,
  2 PWM, 3 off), 1007 status bits (firmware 16+: bit 0 relay on, bit 1 diode check failed, bit 5 RCD error);
- 2005 config bits (bit 7: 0.01 A resolution).

The board closes its relay itself at state C while its PWM runs, so the controller's decision is made before the
PWM starts (the IEC 61851 sequence offers current only once the supervisor's conditions hold) and carried out
by withdrawing it: :meth:`EvseWbContactor.open` writes 0 A and orders the relay off at once. A relay still on a
second after that order reads as closed (a welded relay); a board that stops answering makes the pilot unreadable,
which the pilot monitor reports as a fault.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

from pymodbus.client import ModbusSerialClient, ModbusTcpClient
from pymodbus.exceptions import ModbusException

from hal.board import BoardContactor, BoardLink, BoardPilot, BoardRcm
from hal.errors import HalIOError, HalTimeoutError
from hal.pilot import current_for_duty

log = logging.getLogger(__name__)

CURRENT, VEHICLE, COMMAND, FIRMWARE, STATUS, CONFIG = 1000, 1002, 1004, 1005, 1007, 2005
TURN_OFF_NOW = 0x0001
FAILURE = 5  # 1002: the diode check failed or the RCD tripped
PRECISE_CURRENT = 0x0080
RELAY_ON, DIODE_FAILED, RCD_ERROR = 0x0001, 0x0002, 0x0020
#: Vehicle state (1002) -> the pilot's high level the controller's IEC 61851 logic expects.
VEHICLE_VOLTS = {1: 12.0, 2: 9.0, 3: 6.0, 4: 3.0, 5: 0.0}


@dataclass(frozen=True)
class BoardStatus:
    """One poll of the board."""

    vehicle: int
    status_bits: int | None  # None: firmware 15 or older (no 1007)
    amps: float
    at: float


class EvseWbBoard(BoardLink):
    """One board on its Modbus link, polled in a thread of its own; shared by its three roles."""

    def __init__(self, *, transport: str = "rtu", port: str = "/dev/ttyUSB0", baudrate: int = 9600,
                 parity: str = "N", stopbits: int = 1, bytesize: int = 8, host: str = "127.0.0.1",
                 tcp_port: int = 502, address: int = 1, timeout: float = 0.3, poll_interval: float = 0.2) -> None:
        self.address = address
        self.where = f"{port} address {address}" if transport == "rtu" else f"{host}:{tcp_port} unit {address}"
        self.poll_interval = poll_interval
        self.timeout = timeout
        self._client: ModbusSerialClient | ModbusTcpClient = (
            ModbusSerialClient(port=port, baudrate=baudrate, parity=parity, stopbits=stopbits, bytesize=bytesize,
                               timeout=timeout) if transport == "rtu" else
            ModbusTcpClient(host, port=tcp_port, timeout=timeout))
        self._io = threading.Lock()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._pending: dict[int, int] = {CURRENT: -1}  # no PWM until the controller offers current
        self._amps = 0.0
        self.status: BoardStatus | None = None
        self.firmware: int | None = None
        self.precise = False
        self._thread = threading.Thread(target=self._run, name=f"evsewb-{address}", daemon=True)

    def _begin(self) -> None:
        self._thread.start()

    def _end(self) -> None:
        # The thread writes what is queued (0 A, the relay off), closes the link and ends.
        self._stop.set()
        self._wake.set()

    def _setup(self) -> bool:
        try:
            self.firmware = self._read(FIRMWARE, 1)[0]
            if self.firmware >= 17:
                bits = self._read(CONFIG, 1)[0]
                if not bits & PRECISE_CURRENT:
                    self._write_now(CONFIG, bits | PRECISE_CURRENT)
                self.precise = True
        except (HalIOError, HalTimeoutError) as exc:
            log.error("EVSE board at %s does not answer (%s): its pilot reads as lost until it does", self.where,
                      exc)
            return False
        log.info("EVSE board at %s: firmware %d, current in %s", self.where, self.firmware,
                 "0.01 A" if self.precise else "whole amps")
        return True

    def _read(self, address: int, count: int) -> list[int]:
        try:
            if not self._client.connected and not self._client.connect():
                raise HalIOError(f"EVSE board at {self.where}: cannot open the link")
            reply = self._client.read_holding_registers(address, count=count, device_id=self.address)
        except (ModbusException, OSError) as exc:  # pymodbus lets a reset connection through as itself
            self._client.close()
            raise HalTimeoutError(f"EVSE board at {self.where}: {exc}") from exc
        if reply.isError() or len(reply.registers) < count:
            raise HalTimeoutError(f"EVSE board at {self.where} refused {address}+{count}: {reply}")
        return list(reply.registers)

    def _write_now(self, address: int, value: int) -> None:
        try:
            if not self._client.connected and not self._client.connect():
                raise HalIOError(f"EVSE board at {self.where}: cannot open the link")
            reply = self._client.write_registers(address, [value], device_id=self.address)
        except (ModbusException, OSError) as exc:  # pymodbus lets a reset connection through as itself
            self._client.close()
            raise HalTimeoutError(f"EVSE board at {self.where}: {exc}") from exc
        if reply.isError():
            raise HalTimeoutError(f"EVSE board at {self.where} refused writing {value} to {address}: {reply}")

    def write(self, address: int, value: int) -> None:
        """Write one register (FC16, as every client of these boards does), from the board's thread at once:
        the caller (the loop, a fault in the monitor thread) never waits for the serial line."""
        with self._io:
            self._pending[address] = value
        self._wake.set()

    def set_current(self, amps: float) -> None:
        """Offer ``amps`` on the board's PWM (0: none, steady +12 V)."""
        with self._io:
            self._pending.pop(CURRENT, None)
            self._amps = amps
            self._pending[CURRENT] = -1  # converted at the write, once the firmware's unit is known
        self._wake.set()

    def _flush(self) -> None:
        with self._io:
            pending, self._pending = self._pending, {}
        for address, value in pending.items():
            if address == CURRENT:
                value = round(self._amps * 100) if self.precise else int(self._amps)
            try:
                self._write_now(address, value)
            except (HalIOError, HalTimeoutError) as exc:
                log.error("EVSE board at %s: writing %d to %d failed: %s", self.where, value, address, exc)
                with self._io:
                    self._pending.setdefault(address, value)  # again next round

    def _run(self) -> None:
        ready = False
        while not self._stop.is_set():
            if not ready:
                ready = self._setup()
                if not ready:
                    self._stop.wait(1.0)
                    continue
            self._flush()
            new_firmware = (self.firmware or 0) > 15
            try:
                words = self._read(CURRENT, 8 if new_firmware else 7)
            except (HalIOError, HalTimeoutError) as exc:
                log.debug("EVSE board at %s: %s", self.where, exc)
            except Exception:  # the poller must outlive a library bug: its staleness is the fault, not its death
                log.exception("EVSE board at %s: reading failed", self.where)
            else:
                scale = 100 if self.precise else 1
                self.status = BoardStatus(words[2], words[7] if new_firmware else None, words[1] / scale,
                                          time.monotonic())
            self._wake.wait(self.poll_interval)
            self._wake.clear()
        self._flush()  # the last orders (0 A, relay off) before the link closes
        self._client.close()


class EvseWbPilot(BoardPilot):
    """The board's pilot: current offered through 1000, the vehicle state read back as pilot volts."""

    def __init__(self, *, board: dict[str, Any], **_: Any) -> None:
        super().__init__(EvseWbBoard.shared(**board))

    def _write_duty(self, fraction: float) -> None:
        self._unavailable = fraction <= 0.0
        amps = current_for_duty(fraction * 100) if 0.0 < fraction < 1.0 else None
        self.board.set_current(amps or 0)

    def read_voltage(self) -> float:
        status = self.board.fresh()
        if status is None:
            raise HalTimeoutError(f"EVSE board at {self.board.where}: no answer")
        if self._unavailable:
            return -12.0  # the controller asked for state F: the board offers nothing
        if status.vehicle == FAILURE and status.status_bits is not None and status.status_bits & (
                DIODE_FAILED | RCD_ERROR):
            # A failure the other roles report (the diode as the low half, the RCD as the RCM's trip): the car
            # is still where it was, and the fault arrives under its own name.
            return self._last_volts
        self._last_volts = VEHICLE_VOLTS.get(status.vehicle, 0.0)
        return self._last_volts

    def read_low_voltage(self) -> float:
        status = self.board.fresh()
        if status is None:
            raise HalTimeoutError(f"EVSE board at {self.board.where}: no answer")
        return 0.0 if status.status_bits is not None and status.status_bits & DIODE_FAILED else -12.0

    def close(self) -> None:
        self.board.set_current(0)
        self.board.release()


class EvseWbContactor(BoardContactor):
    """The board's relay (1007 bit 0): opened by withdrawing current and ordering it off (1004 bit 0)."""

    def __init__(self, *, board: dict[str, Any], **_: Any) -> None:
        super().__init__(EvseWbBoard.shared(**board))

    def _order_open(self) -> None:
        # Queued for the board's thread, which writes them before its next read (a lost board keeps them until it
        # answers; its pilot reads as lost meanwhile, and that fault stops everything that runs).
        self.board.set_current(0)
        self.board.write(COMMAND, TURN_OFF_NOW)

    def _relay(self, status: BoardStatus) -> bool | None:
        if status.status_bits is None:
            return None  # firmware 15 and older report no relay
        return bool(status.status_bits & RELAY_ON)


class EvseWbRcm(BoardRcm):
    """The RCD input of the board (1007 bit 5). The board tests it at power-up (and on 1004 bit 1, which takes
    half a minute): the controller's self-test only reads it."""

    def __init__(self, *, board: dict[str, Any], **_: Any) -> None:
        shared = EvseWbBoard.shared(**board)
        super().__init__(shared, shared.poll_interval, "evsewb-rcd")

    def _tripped(self, status: BoardStatus) -> bool:
        return status.status_bits is not None and bool(status.status_bits & RCD_ERROR)
