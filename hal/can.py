"""CAN bus role: frames in and out of one CAN controller, never blocking the event loop.

The one driver sits on python-can, so any interface python-can knows works: ``socketcan``
(``can0`` on an MCP2515 / MCP2518FD HAT), ``virtual`` in tests and simulation, and networked
ones such as ``remote`` (python-can-remote) when an EV simulator runs in another process.
A reader thread stamps each frame with the monotonic clock and hands it to the loop; a
writer thread drains a bounded queue, so a full transmit buffer or a slow network bus
delays no caller. python-can is imported only when a bus is built.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hal.errors import HalConfigError, HalIOError

log = logging.getLogger(__name__)

STANDARD_ID_MAX = 0x7FF
EXTENDED_ID_MAX = 0x1FFFFFFF


@dataclass(frozen=True, slots=True)
class Frame:
    """One CAN data frame; ``at`` is the monotonic time it was received (0 for frames to send)."""

    id: int
    data: bytes
    extended: bool = False
    at: float = field(default=0.0, compare=False)

    def __post_init__(self) -> None:
        limit = EXTENDED_ID_MAX if self.extended else STANDARD_ID_MAX
        if not 0 <= self.id <= limit:
            raise ValueError(f"CAN id {self.id:#x} does not fit a {'29' if self.extended else '11'}-bit identifier")
        if len(self.data) > 8:
            raise ValueError(f"a classic CAN frame carries at most 8 bytes, not {len(self.data)}")

    def __str__(self) -> str:
        ident = f"{self.id:08X}" if self.extended else f"{self.id:03X}"
        return f"{ident} [{len(self.data)}] {self.data.hex(' ').upper()}"


#: Told every frame received, in the event loop's thread.
FrameHandler = Callable[[Frame], None]


@dataclass
class BusCounters:
    """What a bus has done, for the status page and the bench."""

    received: int = 0
    sent: int = 0
    send_errors: int = 0
    dropped: int = 0
    receive_errors: int = 0


class CanBus(ABC):
    """One CAN controller. Handlers run in the event loop; :meth:`send` only queues."""

    #: Named in every log line and error (``can0 (socketcan)``).
    name: str = "can"

    def __init__(self) -> None:
        self.counters = BusCounters()
        self._handlers: list[FrameHandler] = []
        #: Told ("rx" | "tx", frame) of every frame heard or queued, on the loop (a trace, the bench's timeline).
        self.monitors: list[Callable[[str, Frame], None]] = []

    def subscribe(self, handler: FrameHandler) -> Callable[[], None]:
        """Call ``handler`` with every frame received from now on; returns the way to stop."""
        self._handlers.append(handler)
        return lambda: self._handlers.remove(handler) if handler in self._handlers else None

    def _monitor(self, direction: str, frame: Frame) -> None:
        for monitor in list(self.monitors):
            try:
                monitor(direction, frame)
            except Exception:
                log.exception("%s: monitor %r failed", self.name, monitor)

    def _dispatch(self, frame: Frame) -> None:
        self.counters.received += 1
        if self.monitors:
            self._monitor("rx", frame)
        for handler in list(self._handlers):
            try:
                handler(frame)
            except Exception:
                # One peer's bad frame (or one stack's bug) never stops the others from hearing the bus.
                log.exception("%s: handler %r failed on frame %s", self.name, handler, frame)

    @abstractmethod
    async def open(self) -> None:
        """Connect to the controller and start receiving; call from the event loop."""

    @abstractmethod
    def send(self, frame: Frame) -> bool:
        """Queue ``frame`` for transmission; False when the queue is full (the frame is dropped)."""

    @abstractmethod
    async def close(self) -> None:
        """Stop both threads and release the controller."""


class PythonCanBus(CanBus):
    """Any python-can interface: ``interface``, ``channel`` and ``bitrate`` plus its own keyword options."""

    #: Frames waiting for the controller before :meth:`send` starts dropping them (about 1 s of a busy bus).
    QUEUE_LIMIT = 512

    def __init__(self, *, interface: str, channel: str, bitrate: int | None = None,
                 send_timeout: float = 0.05, **options: Any) -> None:
        super().__init__()
        self.interface = interface
        self.channel = channel
        self.bitrate = bitrate
        self.options = options
        self.send_timeout = send_timeout
        self.name = f"{channel} ({interface})"
        self._bus: Any = None
        self._outbox: queue.Queue[Frame | None] = queue.Queue(self.QUEUE_LIMIT)
        self._running = threading.Event()
        self._threads: list[threading.Thread] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._warned_full = False

    async def open(self) -> None:
        import can  # only a charger with a CAN controller needs python-can loaded

        if self.interface not in can.interfaces.VALID_INTERFACES:
            raise HalConfigError(f"unknown CAN interface {self.interface!r}; python-can knows "
                                 f"{', '.join(sorted(can.interfaces.VALID_INTERFACES))}")
        kwargs = dict(self.options)
        if self.bitrate is not None:
            kwargs["bitrate"] = self.bitrate
        try:
            # Opening a networked interface connects; keep that off the loop too.
            self._bus = await asyncio.to_thread(can.Bus, interface=self.interface, channel=self.channel, **kwargs)
        except (OSError, can.CanError, ValueError, TypeError, ImportError) as exc:
            hint = (f"; bring it up first: ip link set {self.channel} up type can bitrate {self.bitrate or 500000}"
                    if self.interface == "socketcan" else "")
            raise HalIOError(f"CAN bus {self.name}: cannot open ({exc}){hint}") from None
        self._loop = asyncio.get_running_loop()
        self._running.set()
        for target, role in ((self._read, "rx"), (self._write, "tx")):
            thread = threading.Thread(target=target, name=f"can-{self.channel}-{role}", daemon=True)
            thread.start()
            self._threads.append(thread)
        log.info("CAN bus %s open%s", self.name, f" at {self.bitrate} bit/s" if self.bitrate else "")

    def send(self, frame: Frame) -> bool:
        try:
            self._outbox.put_nowait(frame)
        except queue.Full:
            self.counters.dropped += 1
            if not self._warned_full:
                self._warned_full = True
                log.warning("%s: transmit queue full (no ACK on the bus? nobody listening?): frames dropped",
                            self.name)
            return False
        if self._warned_full and self._outbox.qsize() < self.QUEUE_LIMIT // 2:
            self._warned_full = False  # drained for real (not one slot freed by a stuck writer): warn again next time
        if self.monitors:
            self._monitor("tx", frame)
        return True

    async def close(self) -> None:
        if not self._running.is_set():
            return
        self._running.clear()
        # With a full queue the writer still wakes within its poll time and sees the cleared flag.
        with contextlib.suppress(queue.Full):
            self._outbox.put_nowait(None)
        for thread in self._threads:
            await asyncio.to_thread(thread.join, 1.0)
        self._threads.clear()
        await asyncio.to_thread(self._bus.shutdown)
        log.info("CAN bus %s closed", self.name)

    # ---------------------------------------------------------------- threads

    def _read(self) -> None:
        failing = False
        while self._running.is_set():
            try:
                msg = self._bus.recv(0.1)
            except Exception as exc:  # a bus-off or a lost network peer must not end the thread
                self.counters.receive_errors += 1
                if not failing:
                    failing = True
                    log.error("%s: receive failed (%s); retrying", self.name, exc)
                time.sleep(0.1)
                continue
            if failing:
                failing = False
                log.info("%s: receiving again", self.name)
            if msg is None or msg.is_error_frame or msg.is_remote_frame or msg.is_fd:
                continue
            try:
                frame = Frame(msg.arbitration_id, bytes(msg.data), msg.is_extended_id, time.monotonic())
            except ValueError as exc:
                log.warning("%s: dropped a frame that is not classic CAN: %s", self.name, exc)
                continue
            assert self._loop is not None
            try:
                self._loop.call_soon_threadsafe(self._dispatch, frame)
            except RuntimeError:
                return  # the loop is closing

    def _write(self) -> None:
        import can

        while True:
            try:
                frame = self._outbox.get(timeout=0.1)
            except queue.Empty:
                if not self._running.is_set():
                    return
                continue
            if frame is None:
                return
            msg = can.Message(arbitration_id=frame.id, data=frame.data, is_extended_id=frame.extended)
            try:
                self._bus.send(msg, timeout=self.send_timeout)
            except Exception as exc:  # a full controller buffer is counted, not fatal
                self.counters.send_errors += 1
                if self.counters.send_errors == 1 or self.counters.send_errors % 100 == 0:
                    log.warning("%s: send failed (%s), %d so far", self.name, exc, self.counters.send_errors)
                continue
            self.counters.sent += 1
