"""NXP PN532 over HSU (UART): wake-up, SAMConfiguration, InListPassiveTarget waiting for a card."""

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
#: RFConfiguration item 5's MxRtyPassiveActivation that makes InListPassiveTarget wait until a card comes (the
#: PN532's default); the host ends the wait by sending an ACK frame.
WAIT_FOR_CARD = 0xFF


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
    """Waits on a PN532 for ISO 14443A cards and reports each presentation once.

    With no card in the field, InListPassiveTarget waits in the PN532 itself (MxRtyPassiveActivation 0xFF): a
    card is answered as soon as it comes, and the host wakes once per ``card_wait`` to end the wait with an ACK
    and start a new one, which also proves the reader is there (it acknowledges every command). While a card
    stays in the field the retries are bounded (``activation_retries``) and the field is polled every
    ``poll_interval``, so the card's leaving is seen within one poll and it is reported again only after that.
    A late answer to an ended wait (the card came as the host ended it) is skipped, not taken for an error.
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
        card_wait: float = 1.0,
    ) -> None:
        super().__init__(port=port)
        self.baudrate = baudrate
        self.poll_interval = poll_interval
        self.ack_timeout = ack_timeout
        self.response_timeout = response_timeout
        self.activation_retries = activation_retries
        self.card_wait = card_wait
        self.firmware: bytes | None = None
        #: Answers that came after the command they belonged to had ended (a wait the host ended).
        self.stale_frames = 0
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
        await self._set_retries(WAIT_FOR_CARD)
        waiting = True
        log.info("PN532 on %s ready (firmware %s)", self.port, self.firmware.hex())
        self._set_health(True)
        present: str | None = None
        misses = 0
        while True:
            try:
                reply = await self._exchange(CMD_IN_LIST_PASSIVE_TARGET, b"\x01\x00",
                                             self.card_wait if waiting else None)
                uid = None if reply is None else parse_passive_target(reply)
                if uid is not None and uid != present:
                    on_card(uid)
                present = uid
                if waiting != (uid is None):  # switched only once the PN532 took the new retries
                    await self._set_retries(WAIT_FOR_CARD if uid is None else self.activation_retries)
                    waiting = uid is None
                misses = 0
            except (HalTimeoutError, HalProtocolError) as exc:
                # One bad exchange is noise on the line; three in a row means the reader is lost.
                misses += 1
                if misses >= 3:
                    raise
                log.debug("PN532 poll on %s failed (%s); polling again", self.port, exc)
                await asyncio.sleep(self.poll_interval)
                continue
            if not waiting:
                await asyncio.sleep(self.poll_interval)

    async def _set_retries(self, passive_activation: int) -> None:
        """RFConfiguration item 5: [MxRtyATR, MxRtyPSL, MxRtyPassiveActivation]."""
        await self.command(CMD_RF_CONFIGURATION, bytes([0x05, 0xFF, 0x01, passive_activation]))

    async def command(self, code: int, params: bytes = b"") -> bytes:
        """Send a command and return the response payload (after the response code)."""
        reply = await self._exchange(code, params, None)
        assert reply is not None  # without a wait, no response raises
        return reply

    async def _exchange(self, code: int, params: bytes, wait: float | None) -> bytes | None:
        """A command and its response payload. With ``wait``, a command that may take that long (a wait for a
        card): when no response has come by then, the host ends it with an ACK and it returns None."""
        assert self._serial is not None
        frame = encode_frame(TFI_HOST, bytes([code]) + params)
        self._serial.write(frame)
        reply = await self._acknowledgement()
        if isinstance(reply, Nack):
            self._serial.write(frame)
            reply = await self._acknowledgement()
        if isinstance(reply, ErrorFrame):
            raise HalProtocolError(f"PN532 rejected command 0x{code:02X} (syntax error frame)")
        if not isinstance(reply, Ack):
            raise HalProtocolError(f"PN532 sent {reply!r} instead of ACK for command 0x{code:02X}")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (self.response_timeout if wait is None else wait)
        while True:
            try:
                reply = await self._next_frame(max(0.0, deadline - loop.time()), f"response to 0x{code:02X}")
            except HalTimeoutError:
                # An ACK from the host aborts the command still running in the PN532.
                self._serial.write(ACK_FRAME)
                if wait is not None:
                    return None
                raise
            if isinstance(reply, DataFrame) and reply.tfi == TFI_PN532 and reply.code == code + 1:
                self._serial.write(ACK_FRAME)
                return reply.data[1:]
            if isinstance(reply, ErrorFrame):
                raise HalProtocolError(f"PN532 reported an application error for command 0x{code:02X}")
            if isinstance(reply, DataFrame):
                log.debug("PN532 on %s: ignoring unexpected frame %r", self.port, reply)
            # A stray ACK/NACK while waiting for the response: nothing to do but keep waiting.

    async def _acknowledgement(self) -> DataFrame | Ack | Nack | ErrorFrame:
        """The next frame that is not a late answer to an earlier, ended command."""
        while True:
            reply = await self._next_frame(self.ack_timeout, "ACK")
            if not isinstance(reply, DataFrame) or reply.tfi != TFI_PN532:
                return reply
            self.stale_frames += 1
            log.debug("PN532 on %s: skipping a late answer %r to an ended command", self.port, reply)

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

