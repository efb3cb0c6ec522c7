"""Card readers at the far end of a serial line: a PN532 and an RDM6300, each on a pty.

Both speak their wire formats as the datasheets give them (``shared/reference/hardware.md`` section 5: NXP
UM0701 section 6.2 for the PN532, the RDM6300 module's 14-byte frame), written out here independently of the
drivers' own framing code, so a framing bug in a driver fails the tests instead of agreeing with itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
import tty

import serial

log = logging.getLogger(__name__)

# PN532 frames (UM0701 6.2): preamble 00, start code 00 FF, LEN, LCS, TFI, data, DCS, postamble 00.
ACK_FRAME = bytes([0x00, 0x00, 0xFF, 0x00, 0xFF, 0x00])
ERROR_FRAME = bytes([0x00, 0x00, 0xFF, 0x01, 0xFF, 0x7F, 0x81, 0x00])  # application-level error (syntax)
FROM_HOST, TO_HOST = 0xD4, 0xD5


def pn532_frame(data: bytes, tfi: int = TO_HOST) -> bytes:
    """A normal information frame: LEN counts TFI and data; LEN + LCS and TFI + data + DCS are 0 mod 256."""
    length = len(data) + 1
    return (bytes([0x00, 0x00, 0xFF, length, (0x100 - length) & 0xFF, tfi]) + data
            + bytes([(0x100 - (tfi + sum(data))) & 0xFF, 0x00]))


def host_commands(buffer: bytearray) -> list[bytes]:
    """Take every complete host information frame out of ``buffer``; returns their data (command code first), and
    ``b""`` for each ACK from the host (it ends the command running).

    Wake-up bytes and anything that fails a checksum are dropped; a partial frame stays.
    """
    commands: list[bytes] = []
    while True:
        start = buffer.find(b"\x00\xff")
        if start < 0:
            del buffer[:max(0, len(buffer) - 1)]
            return commands
        if len(buffer) < start + 4:
            del buffer[:start]
            return commands
        length, lcs = buffer[start + 2], buffer[start + 3]
        if (length, lcs) == (0x00, 0xFF):
            del buffer[:start + 4]
            commands.append(b"")  # the host's ACK
            continue
        if (length + lcs) & 0xFF or length == 0:
            del buffer[:start + 2]  # not a frame start after all
            continue
        end = start + 4 + length + 1
        if len(buffer) < end:
            del buffer[:start]
            return commands
        body, dcs = bytes(buffer[start + 4:end - 1]), buffer[end - 1]
        del buffer[:end]
        if (sum(body) + dcs) & 0xFF == 0 and body[0] == FROM_HOST and len(body) >= 2:
            commands.append(body[1:])


def rdm6300_frame(tag: bytes) -> bytes:
    """What an RDM6300 sends for a 5-byte EM4100 tag: STX, 10 hex digits, the XOR of the 5 bytes, ETX."""
    check = tag[0] ^ tag[1] ^ tag[2] ^ tag[3] ^ tag[4]
    return b"\x02" + tag.hex().upper().encode("ascii") + f"{check:02X}".encode("ascii") + b"\x03"


class PtyPort:
    """A pty pair: the controller opens ``path``, the simulator reads and writes ``master``."""

    def __init__(self) -> None:
        self.master, self._slave = os.openpty()
        tty.setraw(self._slave)  # no echo, no line discipline: a plain serial wire
        self.path = os.ttyname(self._slave)
        os.set_blocking(self.master, False)

    def write(self, data: bytes) -> None:
        """Send bytes to the controller's side."""
        os.write(self.master, data)

    def close(self) -> None:
        """Close both ends."""
        for fd in (self.master, self._slave):
            with contextlib.suppress(OSError):
                os.close(fd)


class SerialLine:
    """A real serial port (a USB-serial adapter wired to a charger's reader port) with :class:`PtyPort`'s face:
    the simulator reads ``master`` (the port's descriptor) and writes to it."""

    def __init__(self, path: str, baudrate: int) -> None:
        self._port = serial.Serial(path, baudrate=baudrate, timeout=0)
        self.master = self._port.fileno()
        self.path = path

    def write(self, data: bytes) -> None:
        """Send bytes to the charger."""
        self._port.write(data)

    def close(self) -> None:
        """Close the port."""
        self._port.close()


class _CardField:
    """Which card is in the field, until when."""

    def __init__(self) -> None:
        self.uid: bytes | None = None
        self.until = 0.0

    def tap(self, uid_hex: str, duration: float) -> None:
        self.uid = bytes.fromhex(uid_hex)
        self.until = time.monotonic() + duration

    def current(self) -> bytes | None:
        if self.uid is not None and time.monotonic() >= self.until:
            self.uid = None
        return self.uid


class Pn532Simulator:
    """Answers a PN532 host over HSU: ACK, then the response, for the commands a reader driver uses.

    InListPassiveTarget with no card in the field waits for one while RFConfiguration's MxRtyPassiveActivation is
    0xFF (the PN532's default): the answer goes out when a card is tapped, and an ACK from the host ends the wait.
    A bounded count answers "no card" at once.

    Faults for tests: ``garbage`` bytes sent before the next response,
    ``corrupt_next`` spoils the next response's data checksum (``corrupt_code``: the next response to that
    command), ``split``
    sends responses in two writes, ``silent`` ignores every command,
    ``answer_late`` holds a card that comes during a wait until the host has
    ended that wait, then sends the answer anyway (the race of a card and an abort).
    """

    def __init__(self, port: PtyPort | SerialLine | None = None) -> None:
        self.port = port or PtyPort()
        self.field = _CardField()
        self._received = bytearray()
        self.commands: list[int] = []
        self.garbage = b""
        self.corrupt_next = False
        self.corrupt_code: int | None = None
        self.split = False
        self.silent = False
        self.answer_late = False
        #: MxRtyPassiveActivation as the host last set it.
        self.passive_retries = 0xFF
        #: InListPassiveTarget waits for a card now; how many waits began, and how many the host ended.
        self.waiting = False
        self.waits = 0
        self.aborted = 0
        self._late: bytes | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def path(self) -> str:
        """The serial port the controller opens."""
        return self.port.path

    async def start(self) -> None:
        """Start answering."""
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(self.port.master, self._on_readable)

    def tap(self, uid_hex: str, duration: float = 0.5) -> None:
        """Hold a card (ISO 14443A UID, 4/7/10 bytes hex) in the field for ``duration`` s."""
        self.field.tap(uid_hex, duration)
        if self.waiting and not self.silent:
            uid = bytes.fromhex(uid_hex)
            if self.answer_late:
                self._late = uid  # sent when the host ends the wait
            else:
                self.waiting = False
                self.port.write(_target_response(uid))

    def _on_readable(self) -> None:
        try:
            data = os.read(self.port.master, 4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""  # the controller closed its side; keep listening for the reopen
        self._received.extend(data)
        for command in host_commands(self._received):
            if self.silent:
                self.waiting = False  # a dead reader answers no wait it had begun
                continue
            if not command:  # the host's ACK: it ends a wait for a card
                if self.waiting:
                    self.waiting = False
                    self.aborted += 1
                    if self._late is not None:
                        self.port.write(_target_response(self._late))
                        self._late = None
                continue
            self.commands.append(command[0])
            self._answer(command[0], command[1:])

    def _answer(self, code: int, params: bytes) -> None:
        payload: bytes | None
        if code == 0x02:
            payload = bytes([0x32, 0x01, 0x06, 0x07])
        elif code in (0x14, 0x32):
            if code == 0x32 and len(params) == 4 and params[0] == 0x05:
                self.passive_retries = params[3]
            payload = b""
        elif code == 0x4A and len(params) >= 2:
            uid = self.field.current()
            if uid is None and self.passive_retries == 0xFF:
                self.port.write(ACK_FRAME)  # the answer comes with a card, or never (the host ends the wait)
                self.waiting = True
                self.waits += 1
                return
            payload = b"\x00" if uid is None else _target_data(uid)
        else:
            payload = None
        self.port.write(ACK_FRAME)
        if payload is None:
            self.port.write(ERROR_FRAME)
            return
        response = bytearray(pn532_frame(bytes([code + 1]) + payload))
        if self.corrupt_next or self.corrupt_code == code:
            response[-2] ^= 0xFF
            self.corrupt_next, self.corrupt_code = False, None
        if self.garbage:
            response[:0] = self.garbage
            self.garbage = b""
        if self.split and self._loop is not None:
            half = len(response) // 2
            self.port.write(bytes(response[:half]))
            self._loop.call_later(0.01, self.port.write, bytes(response[half:]))
        else:
            self.port.write(bytes(response))

    async def stop(self) -> None:
        """Stop answering and close the pty."""
        if self._loop is not None:
            self._loop.remove_reader(self.port.master)
        self.port.close()


def _target_data(uid: bytes) -> bytes:
    """InListPassiveTarget's answer for one ISO 14443A card: NbTg, Tg, SENS_RES, SEL_RES, NFCID length, NFCID1."""
    return bytes([1, 1, 0x00, 0x04, 0x08, len(uid)]) + uid


def _target_response(uid: bytes) -> bytes:
    return pn532_frame(bytes([0x4B]) + _target_data(uid))


class Rdm6300Simulator:
    """A transmit-only EM4100 reader: repeats the tag's frame every 100 ms while it is in the field."""

    repeat = 0.1

    def __init__(self) -> None:
        self.port = PtyPort()
        self.field = _CardField()
        self._task: asyncio.Task[None] | None = None

    @property
    def path(self) -> str:
        """The serial port the controller opens."""
        return self.port.path

    async def start(self) -> None:
        """Start transmitting whenever a tag is present."""
        self._task = asyncio.create_task(self._transmit(), name="rdm6300-sim")

    def tap(self, uid_hex: str, duration: float = 0.5) -> None:
        """Hold a tag (5 bytes hex, EM4100) in the field for ``duration`` s."""
        if len(bytes.fromhex(uid_hex)) != 5:
            raise ValueError(f"an EM4100 tag has 5 bytes (10 hex digits), got {uid_hex!r}")
        self.field.tap(uid_hex, duration)

    async def _transmit(self) -> None:
        while True:
            uid = self.field.current()
            if uid is not None:
                with contextlib.suppress(OSError):
                    self.port.write(rdm6300_frame(uid))
            await asyncio.sleep(self.repeat)

    async def stop(self) -> None:
        """Stop transmitting and close the pty."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self.port.close()
