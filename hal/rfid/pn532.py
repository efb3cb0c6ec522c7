"""NXP PN532 over HSU (UART): wake-up, SAMConfiguration, InListPassiveTarget polling."""

from __future__ import annotations

import asyncio
import logging

from hal.errors import HalProtocolError, HalTimeoutError
from hal.rfid import CardCallback, CardReader
from hal.rfid.pn532_frame import (
    ACK_FRAME,
    TFI_HOST,
    TFI_PN532,
    Ack,
    DataFrame,
    ErrorFrame,
    FrameParser,
    Nack,
    encode_frame,
)
from hal.rfid.serialport import AsyncSerial

log = logging.getLogger(__name__)

CMD_GET_FIRMWARE_VERSION = 0x02
CMD_SAM_CONFIGURATION = 0x14
CMD_RF_CONFIGURATION = 0x32
CMD_IN_LIST_PASSIVE_TARGET = 0x4A
# HSU wake-up: two 0x55 then a run of zeros long enough for the oscillator to start.
WAKE_UP = b"\x55\x55" + b"\x00" * 14


def parse_passive_target(data: bytes) -> str | None:
    """UID (uppercase hex, NFCID1 order) from an InListPassiveTarget response payload.

    ``data`` starts after the response code: NbTg, Tg, SENS_RES (2), SEL_RES,
    NFCIDLength, NFCID1. None when no target was found.
    """
    if not data:
        raise HalProtocolError("empty InListPassiveTarget response")
    if data[0] == 0:
        return None
    if len(data) < 6:
        raise HalProtocolError(f"InListPassiveTarget response too short: {data.hex()}")
    uid_len = data[5]
    if uid_len not in (4, 7, 10) or len(data) < 6 + uid_len:
        raise HalProtocolError(f"InListPassiveTarget bad NFCID length {uid_len}: {data.hex()}")
    return data[6 : 6 + uid_len].hex().upper()


class Pn532Reader(CardReader):
    """Polls a PN532 for ISO 14443A cards and reports each presentation once.

    Passive activation retries are bounded (RFConfiguration item 5) so a poll
    answers "no card" instead of blocking; a card is reported again only after
    a poll that saw no card.
    """

    def __init__(
        self,
        *,
        port: str,
        baudrate: int = 115200,
        poll_interval: float = 0.1,
        ack_timeout: float = 0.2,
        response_timeout: float = 1.0,
        activation_retries: int = 2,
    ) -> None:
        super().__init__(port=port)
        self.baudrate = baudrate
        self.poll_interval = poll_interval
        self.ack_timeout = ack_timeout
        self.response_timeout = response_timeout
        self.activation_retries = activation_retries
        self.firmware: bytes | None = None
        self._serial: AsyncSerial | None = None
        self._parser = FrameParser()
        self._frames: list[DataFrame | Ack | Nack | ErrorFrame] = []

    async def _session(self, on_card: CardCallback) -> None:
        self._serial = AsyncSerial(self.port, self.baudrate)
        self._parser = FrameParser()
        self._frames = []
        self._serial.write(WAKE_UP)
        await self.command(CMD_SAM_CONFIGURATION, bytes([0x01, 0x00, 0x01]))
        self.firmware = await self.command(CMD_GET_FIRMWARE_VERSION)
        await self.command(CMD_RF_CONFIGURATION, bytes([0x05, 0xFF, 0x01, self.activation_retries]))
        log.info("PN532 on %s ready (firmware %s)", self.port, self.firmware.hex())
        self._set_health(True)
        present: str | None = None
        misses = 0
        while True:
            try:
                uid = parse_passive_target(await self.command(CMD_IN_LIST_PASSIVE_TARGET, b"\x01\x00"))
                misses = 0
            except (HalTimeoutError, HalProtocolError) as exc:
                # One bad exchange is noise on the line; three in a row means the reader is lost.
                misses += 1
                if misses >= 3:
                    raise
                log.debug("PN532 poll on %s failed (%s); polling again", self.port, exc)
                await asyncio.sleep(self.poll_interval)
                continue
            if uid is not None and uid != present:
                on_card(uid)
            present = uid
            await asyncio.sleep(self.poll_interval)

    async def command(self, code: int, params: bytes = b"") -> bytes:
        """Send a command and return the response payload (after the response code)."""
        assert self._serial is not None
        frame = encode_frame(TFI_HOST, bytes([code]) + params)
        self._serial.write(frame)
        reply = await self._next_frame(self.ack_timeout, "ACK")
        if isinstance(reply, Nack):
            self._serial.write(frame)
            reply = await self._next_frame(self.ack_timeout, "ACK")
        if isinstance(reply, ErrorFrame):
            raise HalProtocolError(f"PN532 rejected command 0x{code:02X} (syntax error frame)")
        if not isinstance(reply, Ack):
            raise HalProtocolError(f"PN532 sent {reply!r} instead of ACK for command 0x{code:02X}")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.response_timeout
        while True:
            try:
                reply = await self._next_frame(max(0.0, deadline - loop.time()), f"response to 0x{code:02X}")
            except HalTimeoutError:
                # An ACK from the host aborts the command still running in the PN532.
                self._serial.write(ACK_FRAME)
                raise
            if isinstance(reply, DataFrame) and reply.tfi == TFI_PN532 and reply.code == code + 1:
                self._serial.write(ACK_FRAME)
                return reply.data[1:]
            if isinstance(reply, ErrorFrame):
                raise HalProtocolError(f"PN532 reported an application error for command 0x{code:02X}")
            if isinstance(reply, DataFrame):
                log.debug("PN532 on %s: ignoring unexpected frame %r", self.port, reply)
            # A stray ACK/NACK while waiting for the response: nothing to do but keep waiting.

    async def _next_frame(self, timeout: float, what: str) -> DataFrame | Ack | Nack | ErrorFrame:
        assert self._serial is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not self._frames:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise HalTimeoutError(f"PN532 on {self.port}: no {what} within {timeout:.3f} s")
            try:
                data = await self._serial.read(remaining)
            except HalTimeoutError:
                raise HalTimeoutError(f"PN532 on {self.port}: no {what} within {timeout:.3f} s") from None
            self._frames.extend(self._parser.feed(data))
        return self._frames.pop(0)

    def _close(self) -> None:
        if self._serial is not None:
            self._serial.close()
            self._serial = None

