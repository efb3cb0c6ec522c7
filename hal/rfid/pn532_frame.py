"""PN532 host-interface framing (NXP UM0701 section 6.2), independent of any port.

Normal frame: ``00 00 FF LEN LCS TFI PD0..PDn DCS 00`` where LEN counts TFI and
data, LEN + LCS = 0 and TFI + sum(PD) + DCS = 0 (mod 256). ACK is
``00 00 FF 00 FF 00``, NACK ``00 00 FF FF 00 00``; an extended frame has
``FF FF`` then a two-byte length and its checksum. An application error frame
carries TFI 0x7F.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

log = logging.getLogger(__name__)

START_CODE = b"\x00\xff"
ACK_FRAME = b"\x00\x00\xff\x00\xff\x00"
NACK_FRAME = b"\x00\x00\xff\xff\x00\x00"
TFI_HOST = 0xD4
TFI_PN532 = 0xD5
TFI_ERROR = 0x7F
# Longest frame the host ever expects; a larger length is taken as garbage.
MAX_DATA = 264


@dataclass(frozen=True)
class Ack:
    """The PN532 (or host) acknowledged the last frame."""


@dataclass(frozen=True)
class Nack:
    """The peer asks for the last frame again."""


@dataclass(frozen=True)
class ErrorFrame:
    """Application-level error (syntax error in the last command)."""


@dataclass(frozen=True)
class DataFrame:
    """An information frame: TFI plus payload (command or response code first)."""

    tfi: int
    data: bytes

    @property
    def code(self) -> int:
        """Command or response code (first payload byte)."""
        return self.data[0]


Frame = Ack | Nack | ErrorFrame | DataFrame


def _checksum(values: bytes | bytearray) -> int:
    return (-sum(values)) & 0xFF


def encode_frame(tfi: int, data: bytes) -> bytes:
    """Build a normal (or, past 254 bytes, extended) information frame."""
    body = bytes([tfi]) + data
    length = len(body)
    if length <= 0xFE:
        header = bytes([length, _checksum(bytes([length]))])
    else:
        hi, lo = length >> 8, length & 0xFF
        header = b"\xff\xff" + bytes([hi, lo, _checksum(bytes([hi, lo]))])
    return b"\x00\x00\xff" + header + body + bytes([_checksum(body)]) + b"\x00"


class FrameParser:
    """Turns a byte stream into frames, resynchronising after garbage.

    Bytes before a start code, frames with a bad length or data checksum and
    impossible lengths are dropped (and counted in ``errors``); parsing goes on
    from the next start code. Split frames wait for the rest.
    """

    def __init__(self) -> None:
        self._buf = bytearray()
        self.errors = 0

    def feed(self, data: bytes) -> list[Frame]:
        """Add received bytes; return every complete frame found so far."""
        self._buf.extend(data)
        frames: list[Frame] = []
        while True:
            frame, consumed = self._parse_one()
            if consumed == 0:
                return frames
            del self._buf[:consumed]
            if frame is not None:
                frames.append(frame)

    def _drop(self, upto: int, why: str) -> tuple[None, int]:
        self.errors += 1
        log.debug("PN532 framing: %s; dropping %d bytes", why, upto)
        return None, upto

    def _parse_one(self) -> tuple[Frame | None, int]:
        buf = self._buf
        start = buf.find(START_CODE)
        if start < 0:
            # Keep a trailing 0x00: it may be the first half of a start code.
            keep = 1 if buf.endswith(b"\x00") else 0
            return None, len(buf) - keep
        if start > 1 or (start == 1 and buf[0] != 0x00):
            return None, start  # leading garbage (a lone preamble 0x00 is fine)
        pos = start + 2
        if len(buf) < pos + 2:
            return None, 0
        length, lcs = buf[pos], buf[pos + 1]
        if length == 0x00 and lcs == 0xFF:
            return Ack(), pos + 2 + (1 if len(buf) > pos + 2 and buf[pos + 2] == 0 else 0)
        if length == 0xFF and lcs == 0x00:
            return Nack(), pos + 2 + (1 if len(buf) > pos + 2 and buf[pos + 2] == 0 else 0)
        if length == 0xFF and lcs == 0xFF:
            if len(buf) < pos + 5:
                return None, 0
            hi, lo, xcs = buf[pos + 2], buf[pos + 3], buf[pos + 4]
            if (hi + lo + xcs) & 0xFF:
                return self._drop(pos, "bad extended length checksum")
            length = (hi << 8) | lo
            body_at = pos + 5
        else:
            if (length + lcs) & 0xFF:
                return self._drop(pos, "bad length checksum")
            body_at = pos + 2
        if length == 0 or length > MAX_DATA:
            return self._drop(pos, f"impossible length {length}")
        end = body_at + length + 1  # body and DCS
        if len(buf) < end:
            return None, 0
        body = bytes(buf[body_at : body_at + length])
        if (sum(body) + buf[body_at + length]) & 0xFF:
            return self._drop(pos, "bad data checksum")
        if len(buf) > end and buf[end] == 0x00:
            end += 1  # postamble
        if body[0] == TFI_ERROR:
            return ErrorFrame(), end
        if length < 2:
            return self._drop(end, "information frame without a command code")
        return DataFrame(body[0], body[1:]), end
