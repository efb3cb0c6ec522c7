"""RDM6300 125 kHz (EM4100) reader: a transmit-only UART module at 9600 8N1.

Frame: ``02``, ten ASCII hex digits (version byte + 32-bit tag id), two ASCII
hex digits of checksum (XOR of the five data bytes), ``03``. The module
repeats the frame while the tag stays in the field.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from hal.errors import HalTimeoutError
from hal.rfid import CardCallback, CardReader
from hal.rfid.serialport import AsyncSerial

log = logging.getLogger(__name__)

STX, ETX = 0x02, 0x03
FRAME_LEN = 14
_HEX = frozenset(b"0123456789ABCDEFabcdef")


class Rdm6300Parser:
    """Extracts tag UIDs from the byte stream; bad frames are dropped and counted."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self.errors = 0

    def feed(self, data: bytes) -> list[str]:
        """Add received bytes; return the UIDs (10 uppercase hex chars) of valid frames."""
        self._buf.extend(data)
        uids: list[str] = []
        while True:
            start = self._buf.find(bytes([STX]))
            if start < 0:
                self._buf.clear()
                return uids
            del self._buf[:start]
            if len(self._buf) < FRAME_LEN:
                return uids
            frame = bytes(self._buf[:FRAME_LEN])
            uid = self._decode(frame)
            if uid is None:
                self.errors += 1
                log.debug("RDM6300: dropping bad frame %r", frame)
                del self._buf[:1]  # resynchronise on the next STX
                continue
            del self._buf[:FRAME_LEN]
            uids.append(uid)

    @staticmethod
    def _decode(frame: bytes) -> str | None:
        if frame[-1] != ETX or not all(c in _HEX for c in frame[1:13]):
            return None
        payload = bytes.fromhex(frame[1:11].decode())
        checksum = 0
        for b in payload:
            checksum ^= b
        if checksum != int(frame[11:13], 16):
            return None
        return payload.hex().upper()


class Rdm6300Reader(CardReader):
    """Reports a tag once per presentation.

    The module repeats frames while the tag is present; a tag counts as removed
    after ``removal_time`` seconds without a frame (or when another tag is read).
    """

    def __init__(
        self,
        *,
        port: str,
        baudrate: int = 9600,
        removal_time: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(port=port)
        self.baudrate = baudrate
        self.removal_time = removal_time
        self._clock = clock
        self._serial: AsyncSerial | None = None
        self.parser = Rdm6300Parser()
        self._last_uid: str | None = None
        self._last_seen = 0.0

    def accept(self, data: bytes, on_card: CardCallback) -> None:
        """Feed received bytes; call ``on_card`` for each new presentation."""
        for uid in self.parser.feed(data):
            now = self._clock()
            if uid != self._last_uid or now - self._last_seen > self.removal_time:
                on_card(uid)
            self._last_uid, self._last_seen = uid, now

    async def _session(self, on_card: CardCallback) -> None:
        self._serial = AsyncSerial(self.port, self.baudrate)
        log.info("RDM6300 on %s open", self.port)
        self._set_health(True)  # a transmit-only reader: an open port is all there is to check
        while True:
            try:
                data = await self._serial.read(timeout=60.0)
            except HalTimeoutError:
                continue  # a transmit-only reader is silent while no tag is near
            self.accept(data, on_card)
            await asyncio.sleep(0)

    def _close(self) -> None:
        if self._serial is not None:
            self._serial.close()
            self._serial = None
