"""A simulated OpenEVSE board speaking RAPI on a serial port (a pty in the tests), with a scriptable car.

It answers as the firmware does (``$OK``/``$NK`` with the XOR checksum; ``$NK`` to a bad checksum), runs the J1772
states the board runs (relay on at C or D while enabled with current, off at once on ``$FD``) and sends ``$AT`` on
every change, as firmware 2.0.1 and later do. Faults (diode, GFCI, stuck relay, over temperature) are injectable.
"""

from __future__ import annotations

import threading

import serial

from hal.errors import HalProtocolError
from hal.rapi import RELAY_CLOSED, checksum, parse

ENABLED, SLEEPING, DISABLED = 0, 254, 255


class RapiSimulator:
    """The board: its state, and a thread serving RAPI on ``port``."""

    def __init__(self, port: str, *, version: str = "8.2.2 5.2.1") -> None:
        self.version = version
        self.car = 1  # J1772 pilot state the car shows: 1 A, 2 B, 3 C, 4 D
        self.mode = SLEEPING  # the board wakes sleeping until told
        self.amps = 16
        self.fault = 0  # 0, or a fault state: 5 diode, 6 GFCI, 8 stuck relay, 10 over temperature, ...
        self.commands: list[str] = []
        self._serial = serial.Serial(port, 115200, timeout=0.05)
        self._lock = threading.Lock()
        self._last_at: tuple[int, int, int, int] | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="rapi-sim", daemon=True)

    def start(self) -> None:
        """Start answering."""
        self._thread.start()

    @property
    def relay(self) -> bool:
        """The relay: on while enabled with a current and the car asks for power (stuck on when welded)."""
        return self.fault == 8 or (self.mode == ENABLED and self.amps >= 6 and self.car in (3, 4) and not self.fault)

    def state(self) -> tuple[int, int, int, int]:
        """(evse state, pilot state, current, vflags) as $GS and $AT report them."""
        with self._lock:
            evse = self.fault or (self.mode if self.mode != ENABLED else self.car)
            vflags = (RELAY_CLOSED if self.relay else 0) | (0x0100 if self.car != 1 else 0)
            return evse, self.car, self.amps, vflags

    def _send(self, body: str) -> None:
        self._serial.write(f"{body}^{checksum(body)}\r".encode("ascii"))

    def _answer(self, tokens: list[str]) -> str:
        command, args = tokens[0], tokens[1:]
        with self._lock:
            if command == "GS":
                pass
            elif command == "GV":
                return "$OK " + self.version
            elif command == "FE":
                self.mode = ENABLED
            elif command == "FS":
                self.mode = SLEEPING
            elif command == "FD":
                self.mode = DISABLED
            elif command == "SC" and args and args[0].isdigit():
                self.amps = max(6, min(80, int(args[0])))
                return f"$OK {self.amps}"
            else:
                return "$NK"
        if command == "GS":
            evse, pilot, _, vflags = self.state()
            return f"$OK {evse:02x} 0 {pilot:02x} {vflags:04x}"
        return "$OK"

    def _serve(self) -> None:
        pending = b""
        while not self._stop.is_set():
            try:
                pending += self._serial.read(64)
            except (serial.SerialException, OSError, TypeError):
                return
            while b"\r" in pending:
                raw, pending = pending.split(b"\r", 1)
                line = raw.decode("ascii", errors="replace")
                try:
                    tokens = parse(line)
                except HalProtocolError:
                    self._send("$NK")
                    continue
                self.commands.append(" ".join(tokens))
                self._send(self._answer(tokens) if tokens else "$NK")
            self._notify()

    def _notify(self) -> None:
        now = self.state()
        if now != self._last_at:
            self._last_at = now
            evse, pilot, amps, vflags = now
            self._send(f"$AT {evse:02x} {pilot:02x} {amps} {vflags:04x}")

    def stop(self) -> None:
        """Stop answering and close the port."""
        self._stop.set()
        self._thread.join(2)
        self._serial.close()
