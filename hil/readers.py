"""Card readers at the far end of a serial line: a PN532 and an RDM6300, each on a pty."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
import tty

from hal.rfid.pn532_frame import ACK_FRAME, TFI_HOST, TFI_PN532, DataFrame, FrameParser, encode_frame
from hal.rfid.rdm6300 import encode_rdm6300

log = logging.getLogger(__name__)

ERROR_FRAME = b"\x00\x00\xff\x01\xff\x7f\x81\x00"


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

    Faults for tests: ``garbage`` bytes sent before the next response,
    ``corrupt_next`` spoils the next response's data checksum, ``split``
    sends responses in two writes, ``silent`` ignores every command.
    """

    def __init__(self) -> None:
        self.port = PtyPort()
        self.field = _CardField()
        self.parser = FrameParser()
        self.commands: list[int] = []
        self.garbage = b""
        self.corrupt_next = False
        self.split = False
        self.silent = False
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

    def _on_readable(self) -> None:
        try:
            data = os.read(self.port.master, 4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""  # the controller closed its side; keep listening for the reopen
        for frame in self.parser.feed(data):
            if isinstance(frame, DataFrame) and frame.tfi == TFI_HOST and not self.silent:
                self.commands.append(frame.code)
                self._answer(frame)

    def _answer(self, frame: DataFrame) -> None:
        code, params = frame.code, frame.data[1:]
        payload: bytes | None
        if code == 0x02:
            payload = bytes([0x32, 0x01, 0x06, 0x07])
        elif code in (0x14, 0x32):
            payload = b""
        elif code == 0x4A and len(params) >= 2:
            uid = self.field.current()
            payload = b"\x00" if uid is None else bytes([1, 1, 0x00, 0x04, 0x08, len(uid)]) + uid
        else:
            payload = None
        self.port.write(ACK_FRAME)
        if payload is None:
            self.port.write(ERROR_FRAME)
            return
        response = bytearray(encode_frame(TFI_PN532, bytes([code + 1]) + payload))
        if self.corrupt_next:
            response[-2] ^= 0xFF
            self.corrupt_next = False
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
                    self.port.write(encode_rdm6300(uid))
            await asyncio.sleep(self.repeat)

    async def stop(self) -> None:
        """Stop transmitting and close the pty."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self.port.close()
