"""OpenEVSE boards over their RAPI serial protocol: pilot, relay and GFCI as the controller's roles.

RAPI (OpenEVSE firmware ``rapi_proc.h``, 115200 8N1): a command is ``$CC p1 p2^XX`` and a carriage return, ``XX`` the
XOR of every character from ``$`` to before ``^``; the board answers ``$OK ...^XX`` or ``$NK ...^XX``, and sends
``$AT evsestate pilotstate amps vflags`` (hex, hex, decimal, hex) by itself on every change of state. Used here:
``$GS`` (state, elapsed, pilot state, vflags), ``$SC amps V`` (current, not saved to EEPROM), ``$FE`` (enable),
``$FS`` (sleep: +12 V, no PWM), ``$FD`` (disable: -12 V, relay open at once), ``$GV`` (version).

As with the Modbus boards (:mod:`hal.evsewb`), the board closes its relay at state C while enabled; the
controller's decision is made before it offers current and carried out by ``$FD``. The board's own faults map onto
the roles: a failed diode check (state 5) is the pilot's low half, a GFCI fault or failed GFCI self-test (6, 9) the
RCM's trip, a stuck relay (8) the mirror contact reading closed; the others (no ground, over temperature, over
current, relay closure fault) make the pilot unreadable, which is a fault, and are logged by name.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass
from typing import Any

import serial

from hal.board import BoardContactor, BoardLink, BoardPilot, BoardRcm
from hal.errors import HalIOError, HalProtocolError, HalTimeoutError
from hal.pilot import current_for_duty

log = logging.getLogger(__name__)

BAUDRATE = 115200
#: J1772 pilot states the board reports (pilotstate of $GS/$AT) -> the pilot's high level.
PILOT_VOLTS = {1: 12.0, 2: 9.0, 3: 6.0, 4: 3.0}
DIODE_FAILED, GFCI_FAULT, NO_GROUND, STUCK_RELAY, GFI_TEST_FAILED = 5, 6, 7, 8, 9
OVER_TEMPERATURE, OVER_CURRENT, RELAY_CLOSURE = 10, 11, 14
#: Board faults no role of the controller carries: the pilot reads as lost (a fault) and the log names them.
OTHER_FAULTS = {NO_GROUND: "no ground", OVER_TEMPERATURE: "over temperature", OVER_CURRENT: "over current",
                RELAY_CLOSURE: "relay closure fault"}
RELAY_CLOSED = 0x0040


def checksum(body: str) -> str:
    """RAPI's XOR checksum of ``body`` (from ``$`` up to the ``^``), two upper-case hex digits."""
    value = 0
    for char in body.encode("ascii"):
        value ^= char
    return f"{value:02X}"


def frame(command: str) -> bytes:
    """``$GS`` -> ``b"$GS^30\\r"``."""
    body = f"${command}"
    return f"{body}^{checksum(body)}\r".encode("ascii")


def parse(line: str) -> list[str]:
    """A frame's tokens without ``$`` (``["OK", "16"]``); raises HalProtocolError on a bad frame or checksum."""
    line = line.strip()
    if not line.startswith("$"):
        raise HalProtocolError(f"RAPI: not a frame: {line!r}")
    body, marker, given = line.partition("^")
    if marker and checksum(body) != given.upper():
        raise HalProtocolError(f"RAPI: checksum {given} does not match {line!r}")
    body = body.split(":", 1)[0]  # a sequence id the board echoes
    return body[1:].split()


@dataclass(frozen=True)
class RapiStatus:
    """The board's state as last reported."""

    evse_state: int
    pilot_state: int
    vflags: int
    at: float


class RapiBoard(BoardLink):
    """One OpenEVSE board on its serial port: a reader thread for answers and $AT, a worker for commands."""

    def __init__(self, *, port: str, baudrate: int | None = None, timeout: float = 0.5, poll_interval: float = 0.5,
                 **_: Any) -> None:
        self.port = port
        self.where = f"OpenEVSE on {port}"
        self.timeout = timeout
        self.poll_interval = poll_interval
        try:
            self._serial = serial.Serial(port, baudrate or BAUDRATE, timeout=0.05)
        except (serial.SerialException, OSError) as exc:
            raise HalIOError(f"{self.where}: cannot open the port: {exc}") from exc
        self.status: RapiStatus | None = None
        self.version: str | None = None
        self._answers: queue.Queue[list[str]] = queue.Queue()
        self._orders: queue.Queue[str] = queue.Queue()
        self._stop = threading.Event()
        self._reported: int | None = None
        self._reader = threading.Thread(target=self._read_lines, name="rapi-reader", daemon=True)
        self._worker = threading.Thread(target=self._work, name="rapi-worker", daemon=True)

    @classmethod
    def _key(cls, link: dict[str, Any]) -> Any:
        return link["port"]  # one board per serial port, whatever timings a role asks for

    def _begin(self) -> None:
        self._reader.start()
        self._worker.start()

    def _end(self) -> None:
        # The worker sends what is queued ($FD), then closes the port.
        self._stop.set()
        self._orders.put("")  # wakes it

    def order(self, command: str) -> None:
        """Queue a command for the worker (the caller never waits for the serial line)."""
        self._orders.put(command)

    def _read_lines(self) -> None:
        pending = b""
        while not self._stop.is_set() or not self._serial.closed:
            try:
                chunk = self._serial.read(64)
            except (serial.SerialException, OSError, TypeError, AttributeError):
                return  # closed under us at release
            pending += chunk
            while b"\r" in pending:
                raw, pending = pending.split(b"\r", 1)
                self._on_line(raw.decode("ascii", errors="replace"))

    def _on_line(self, line: str) -> None:
        try:
            tokens = parse(line)
        except HalProtocolError as exc:
            log.warning("%s: %s (ignored)", self.where, exc)
            return
        if tokens and tokens[0] == "AT" and len(tokens) >= 5:
            self._update(tokens[1], tokens[2], tokens[4])
        elif tokens and tokens[0] in ("OK", "NK"):
            self._answers.put(tokens)

    def _update(self, state: str, pilot: str, vflags: str) -> None:
        try:
            status = RapiStatus(int(state, 16), int(pilot, 16), int(vflags, 16), time.monotonic())
        except ValueError:
            log.warning("%s: unreadable state %s %s %s (ignored)", self.where, state, pilot, vflags)
            return
        self.status = status
        name = OTHER_FAULTS.get(status.evse_state)
        if status.evse_state != self._reported and name:
            log.error("%s reports a fault: %s (state %d); its pilot reads as lost until it clears", self.where,
                      name, status.evse_state)
        self._reported = status.evse_state

    def _ask(self, command: str) -> list[str]:
        while not self._answers.empty():
            self._answers.get_nowait()  # a late answer to an earlier command
        self._serial.write(frame(command))
        try:
            answer = self._answers.get(timeout=self.timeout)
        except queue.Empty:
            raise HalTimeoutError(f"{self.where}: no answer to ${command}") from None
        if answer[0] != "OK":
            raise HalProtocolError(f"{self.where} refused ${command}: {' '.join(answer)}")
        return answer[1:]

    def _work(self) -> None:
        next_poll = 0.0
        while True:
            try:
                command = self._orders.get(timeout=max(0.0, next_poll - time.monotonic()))
            except queue.Empty:
                command = None
            try:
                if command:
                    self._ask(command)
                elif command is None:
                    if self.version is None:
                        self.version = " ".join(self._ask("GV"))
                        log.info("%s: firmware %s", self.where, self.version)
                    reply = self._ask("GS")
                    if len(reply) >= 4:
                        self._update(reply[0], reply[2], reply[3])
                    next_poll = time.monotonic() + self.poll_interval
            except (HalTimeoutError, HalProtocolError, serial.SerialException, OSError) as exc:
                log.debug("%s: %s", self.where, exc)
                next_poll = time.monotonic() + self.poll_interval
            if self._stop.is_set() and self._orders.empty():
                self._serial.close()
                return


class RapiPilot(BoardPilot):
    """The board's pilot: ``$SC``/``$FE`` to offer, ``$FS`` for +12 V, ``$FD`` for state F."""

    def __init__(self, *, board: dict[str, Any], **_: Any) -> None:
        super().__init__(RapiBoard.shared(**board))

    def _write_duty(self, fraction: float) -> None:
        self._unavailable = fraction <= 0.0
        if fraction <= 0.0:
            self.board.order("FD")
        elif fraction >= 1.0:
            self.board.order("FS")
        else:
            self.board.order(f"SC {int(current_for_duty(fraction * 100) or 6)} V")
            self.board.order("FE")

    def _status(self) -> RapiStatus:
        status = self.board.fresh()
        if status is None:
            raise HalTimeoutError(f"{self.board.where}: no answer")
        if status.evse_state in OTHER_FAULTS:
            raise HalProtocolError(f"{self.board.where}: {OTHER_FAULTS[status.evse_state]}")
        return status

    def read_voltage(self) -> float:
        status = self._status()
        if self._unavailable:
            return -12.0
        if status.pilot_state in PILOT_VOLTS:
            self._last_volts = PILOT_VOLTS[status.pilot_state]
        return self._last_volts  # a fault state the other roles carry: the car is where it was

    def read_low_voltage(self) -> float:
        return 0.0 if self._status().evse_state == DIODE_FAILED else -12.0

    def close(self) -> None:
        self.board.order("FD")
        self.board.release()


class RapiContactor(BoardContactor):
    """The board's relay: ``$FD`` opens it at once; vflags bit 0x40 (or a stuck-relay state) says where it is."""

    def __init__(self, *, board: dict[str, Any], **_: Any) -> None:
        super().__init__(RapiBoard.shared(**board))

    def _order_open(self) -> None:
        self.board.order("FD")

    def _relay(self, status: RapiStatus) -> bool | None:
        return bool(status.vflags & RELAY_CLOSED) or status.evse_state == STUCK_RELAY


class RapiRcm(BoardRcm):
    """The board's GFCI: a GFCI fault or a failed GFCI self-test (states 6, 9) is a trip."""

    def __init__(self, *, board: dict[str, Any], **_: Any) -> None:
        super().__init__(RapiBoard.shared(**board), 0.02, "rapi-gfci")

    def _tripped(self, status: RapiStatus) -> bool:
        return status.evse_state in (GFCI_FAULT, GFI_TEST_FAILED)
