"""SAE J1939-21 addressing and the receiving side of its transport protocol, as GB/T 27930 uses them.

A GB/T BMS sends its long messages (BRM 41-49 bytes, BCP 13, BCS 9, BMV/BMT/BSP) with a
destination-specific RTS/CTS session, or with BAM to the global address; the charger never sends
one (all its messages fit a frame). This receiver:

- answers an RTS with a CTS that grants every remaining packet at once (some BMSs send them all
  after the first CTS whatever it allowed, so granting less would break them: dc.md 3), or a
  block of the RTS's own limit when it sets one;
- checks the sequence, tolerates a repeated packet, and answers EndOfMsgAck when all arrived;
- aborts with reason 3 when the sender goes quiet (T1 750 ms between packets, T2 1250 ms after a
  CTS), and with reason 7 on a packet out of order; a peer's Abort ends its session;
- takes a new RTS from the same sender as the end of the old session (J1939-21 5.10.3.3);
- collects BAM packets and drops the message silently after T1 (BAM has no handshake).

It is a step machine: frames in (:meth:`on_frame`), time in (:meth:`poll`), frames out and whole
messages out through callbacks, so it runs without a bus. Times come from an injected monotonic clock.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from hal.can import Frame

log = logging.getLogger(__name__)

PF_TP_CM, PF_TP_DT = 0xEC, 0xEB
RTS, CTS, EOMA, BAM, ABORT = 0x10, 0x11, 0x13, 0x20, 0xFF
ABORT_BUSY, ABORT_RESOURCES, ABORT_TIMEOUT, ABORT_BAD_SEQUENCE = 1, 2, 3, 7
GLOBAL = 0xFF
#: Receiver timeouts of J1939-21 (dc.md 3): between packets, and after a CTS waiting for the first one.
T1, T2 = 0.75, 1.25
MAX_SIZE = 1785  # 255 packets of 7 bytes


def frame_id(priority: int, pgn: int, destination: int, source: int) -> int:
    """The 29-bit id of a PDU1 message (GB/T sets R and DP to 0)."""
    return (priority & 7) << 26 | ((pgn >> 8) & 0xFF) << 16 | (destination & 0xFF) << 8 | (source & 0xFF)


@dataclass(frozen=True, slots=True)
class Address:
    """A 29-bit id taken apart: PDU1 (PF < 240) has a destination; PDU2 is broadcast (destination 0xFF)."""

    priority: int
    pgn: int
    destination: int
    source: int

    @classmethod
    def of(cls, ident: int) -> Address:
        """Split ``ident`` (a 29-bit J1939 id)."""
        pf = (ident >> 16) & 0xFF
        ps = (ident >> 8) & 0xFF
        dp = (ident >> 24) & 1
        if pf < 240:
            return cls(ident >> 26 & 7, dp << 16 | pf << 8, ps, ident & 0xFF)
        return cls(ident >> 26 & 7, dp << 16 | pf << 8 | ps, GLOBAL, ident & 0xFF)


@dataclass(frozen=True, slots=True)
class Message:
    """A whole message: its PGN, who sent it, its bytes and when its last packet arrived."""

    pgn: int
    source: int
    data: bytes
    at: float


@dataclass
class _Session:
    pgn: int
    size: int
    packets: int
    per_cts: int  # packets to grant per CTS (the whole message unless the RTS limits it)
    broadcast: bool
    deadline: float
    next_seq: int = 1
    granted_to: int = 0  # the last sequence number the current CTS allowed
    data: bytearray = field(default_factory=bytearray)


class TransportReceiver:
    """Receives J1939-21 multi-packet messages addressed to ``address`` (or broadcast)."""

    def __init__(self, address: int, *, send: Callable[[Frame], object], deliver: Callable[[Message], None],
                 clock: Callable[[], float]) -> None:
        self.address = address
        self._send = send
        self._deliver = deliver
        self._clock = clock
        self._sessions: dict[tuple[int, bool], _Session] = {}  # (source, broadcast) -> session
        #: Sessions that ended without a message, by reason ("timeout", "sequence", "aborted by peer").
        self.failures: dict[str, int] = {}

    def on_frame(self, frame: Frame) -> bool:
        """Take a frame; True when it was a transport frame for this node (whatever became of it)."""
        if not frame.extended:
            return False
        addr = Address.of(frame.id)
        pf = addr.pgn >> 8 & 0xFF
        if pf not in (PF_TP_CM, PF_TP_DT) or addr.destination not in (self.address, GLOBAL):
            return False
        if len(frame.data) < 8:
            log.warning("J1939: transport frame %s from %#04x shorter than 8 bytes, ignored", frame, addr.source)
            return True
        if pf == PF_TP_CM:
            self._control(addr, frame.data)
        else:
            self._packet(addr, frame.data)
        return True

    def poll(self) -> None:
        """Abort or drop every session whose sender went quiet."""
        now = self._clock()
        for key, session in list(self._sessions.items()):
            if now >= session.deadline:
                del self._sessions[key]
                self._fail("timeout")
                log.warning("J1939: PGN %#06x from %#04x timed out after packet %d of %d", session.pgn, key[0],
                            session.next_seq - 1, session.packets)
                if not session.broadcast:
                    self._abort(key[0], session.pgn, ABORT_TIMEOUT)

    # ---------------------------------------------------------------- control

    def _control(self, addr: Address, data: bytes) -> None:
        control = data[0]
        pgn = data[5] | data[6] << 8 | data[7] << 16
        broadcast = addr.destination == GLOBAL
        if control in (RTS, BAM) and broadcast == (control == BAM):
            self._start(addr.source, data, pgn, broadcast)
        elif control == ABORT and not broadcast:
            session = self._sessions.pop((addr.source, False), None)
            if session is not None:
                self._fail("aborted by peer")
                log.warning("J1939: %#04x aborted PGN %#06x (reason %d)", addr.source, session.pgn, data[1])
        elif control in (CTS, EOMA):
            pass  # answers to a sender; this node sends no multi-packet message
        else:
            log.warning("J1939: unexpected TP.CM %s from %#04x, ignored", data.hex(" "), addr.source)

    def _start(self, source: int, data: bytes, pgn: int, broadcast: bool) -> None:
        size, packets = data[1] | data[2] << 8, data[3]
        key = (source, broadcast)
        if key in self._sessions:
            old = self._sessions.pop(key)
            log.warning("J1939: %#04x started PGN %#06x before PGN %#06x was complete; the old one is dropped",
                        source, pgn, old.pgn)
            self._fail("replaced")
        if not 9 <= size <= MAX_SIZE or packets != -(-size // 7):
            log.warning("J1939: %#04x announced %d bytes in %d packets for PGN %#06x, refused", source, size,
                        packets, pgn)
            if not broadcast:
                self._abort(source, pgn, ABORT_RESOURCES)
            return
        per_cts = packets if broadcast or data[4] in (0, 0xFF) else min(data[4], packets)
        session = _Session(pgn, size, packets, per_cts, broadcast, self._clock() + (T1 if broadcast else T2))
        self._sessions[key] = session
        if not broadcast:
            self._grant(source, session)

    def _grant(self, source: int, session: _Session) -> None:
        count = min(session.per_cts, session.packets - session.next_seq + 1)
        session.granted_to = session.next_seq + count - 1
        session.deadline = self._clock() + T2
        self._send_cm(source, bytes([CTS, count, session.next_seq, 0xFF, 0xFF]), session.pgn)

    # ---------------------------------------------------------------- packets

    def _packet(self, addr: Address, data: bytes) -> None:
        key = (addr.source, addr.destination == GLOBAL)
        session = self._sessions.get(key)
        if session is None:
            return  # no session (it timed out, or this is another node's): nothing to answer
        seq = data[0]
        if seq == session.next_seq - 1:
            return  # the same packet again
        if seq != session.next_seq or (not session.broadcast and seq > session.granted_to):
            del self._sessions[key]
            self._fail("sequence")
            log.warning("J1939: PGN %#06x from %#04x: packet %d where %d was due", session.pgn, addr.source, seq,
                        session.next_seq)
            if not session.broadcast:
                self._abort(addr.source, session.pgn, ABORT_BAD_SEQUENCE)
            return
        session.data += data[1:8]
        session.next_seq += 1
        session.deadline = self._clock() + T1
        if session.next_seq <= session.packets:
            if not session.broadcast and seq == session.granted_to:
                self._grant(addr.source, session)
            return
        del self._sessions[key]
        if not session.broadcast:
            size = session.size
            self._send_cm(addr.source, bytes([EOMA, size & 0xFF, size >> 8, session.packets, 0xFF]), session.pgn)
        self._deliver(Message(session.pgn, addr.source, bytes(session.data[:session.size]), self._clock()))

    # ---------------------------------------------------------------- output

    def _abort(self, destination: int, pgn: int, reason: int) -> None:
        self._send_cm(destination, bytes([ABORT, reason, 0xFF, 0xFF, 0xFF]), pgn)

    def _send_cm(self, destination: int, head: bytes, pgn: int) -> None:
        ident = frame_id(7, PF_TP_CM << 8, destination, self.address)
        self._send(Frame(ident, head + bytes([pgn & 0xFF, pgn >> 8 & 0xFF, pgn >> 16 & 0xFF]), extended=True))

    def _fail(self, reason: str) -> None:
        self.failures[reason] = self.failures.get(reason, 0) + 1
