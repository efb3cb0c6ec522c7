"""What the EVSE boards (:mod:`hal.evsewb`, :mod:`hal.rapi`) share: their relay as a contactor, their residual
current device as an RCM.

Such a board closes its relay itself at state C while it offers current, so the supervisor's close is a
permission and its open an order to the board; the relay's own report is the mirror contact: while closed at
once, and after an open order once the board has had :data:`OPEN_GRACE` to carry it out (before the first order it
reports nothing: a relay the board closed by itself is not a weld). The board tests its RCD itself; the RCM role
only reads it.
"""

from __future__ import annotations

import threading
import time
from abc import abstractmethod
from typing import Any

from hal.contactor import Contactor
from hal.pilot import ControlPilot
from hal.rcm import ResidualCurrentMonitor

#: How long a board may take to drop its relay after the order.
OPEN_GRACE = 1.0


class BoardLink:
    """One board's link, shared by its roles: opened by the first (:meth:`shared`), closed by the last
    (:meth:`release`). Subclasses set ``status`` (with a monotonic ``at``), ``poll_interval`` and ``timeout``,
    start their threads in :meth:`_begin` and wind them down in :meth:`_end`."""

    _open: dict[Any, BoardLink]
    _guard: threading.Lock
    status: Any = None
    _users = 0
    poll_interval: float
    timeout: float

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._open, cls._guard = {}, threading.Lock()  # each kind of board its own

    @classmethod
    def _key(cls, link: dict[str, Any]) -> Any:
        """What makes two links the same board."""
        return tuple(sorted(link.items()))

    @classmethod
    def shared(cls, **link: Any) -> Any:
        """The board on this link, opened by its first role."""
        key = cls._key(link)
        with cls._guard:
            board = cls._open.get(key)
            if board is None:
                board = cls._open[key] = cls(**link)
                board._begin()
            board._users += 1
            return board

    def release(self) -> None:
        """A role is done with the board; the last one ends the link."""
        with self._guard:
            self._users -= 1
            if self._users > 0:
                return
            for key, board in list(self._open.items()):
                if board is self:
                    del self._open[key]
        self._end()

    def _begin(self) -> None:
        """Start the link's threads (the first role)."""

    def _end(self) -> None:
        """Let the threads send what is queued and close the link (the last role); not waited for, so that the
        caller (the event loop, at shutdown) is not held by a slow serial line."""

    def fresh(self) -> Any:
        """The last report, or None when it is older than a few polls: the board is lost."""
        status = self.status
        if status is None or time.monotonic() - status.at > 3 * self.poll_interval + 2 * self.timeout:
            return None
        return status


class BoardPilot(ControlPilot):
    """A board's pilot: its vehicle state read back as pilot volts, its diode check as the low half."""

    def __init__(self, board: Any) -> None:
        super().__init__()
        self.board = board
        self.measures_low = True
        #: The controller asked for state F: the board offers nothing, the pilot reads -12 V.
        self._unavailable = True
        #: The car's last state, kept through a failure another role reports under its own name.
        self._last_volts = 12.0


class BoardContactor(Contactor):
    """A board's relay; subclasses say how to order it off and how to read it."""

    def __init__(self, board: Any) -> None:
        self.board = board
        self._closed = False
        self._opened_at: float | None = None

    @abstractmethod
    def _order_open(self) -> None:
        """Tell the board to drop its relay now (queued: never waits for the line)."""

    @abstractmethod
    def _relay(self, status: Any) -> bool | None:
        """The relay in a fresh status of the board (None: the board does not report it)."""

    def close(self) -> None:
        self._closed = True

    def open(self) -> None:
        was_closed, self._closed = self._closed, False
        if was_closed or self._opened_at is None:
            self._opened_at = time.monotonic()
        self._order_open()

    @property
    def commanded_closed(self) -> bool:
        return self._closed

    @property
    def feedback_closed(self) -> bool | None:
        status = self.board.fresh()
        relay = None if status is None else self._relay(status)
        if relay is None or self._closed:
            return relay
        if self._opened_at is None or time.monotonic() - self._opened_at < OPEN_GRACE:
            return None
        return relay

    def shutdown(self) -> None:
        try:
            self.open()
        finally:
            self.board.release()


class BoardRcm(ResidualCurrentMonitor):
    """A board's residual current device: a watch thread reports its trips."""

    tests_itself = True

    def __init__(self, board: Any, interval: float, name: str) -> None:
        self.board = board
        self._interval = interval
        self._last = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name=name, daemon=True)
        self._thread.start()

    @abstractmethod
    def _tripped(self, status: Any) -> bool:
        """Whether a fresh status of the board shows the RCD tripped."""

    def _watch(self) -> None:
        while not self._stop.wait(self._interval):
            now = self.tripped
            if now != self._last:
                self._last = now
                callback = self.on_trip
                if callback is not None:
                    callback(now)

    @property
    def tripped(self) -> bool:
        status = self.board.fresh()
        return status is not None and self._tripped(status)

    def set_test(self, active: bool) -> None:
        """Not driven: the board tests its RCD itself (:attr:`tests_itself`)."""

    def close(self) -> None:
        self._stop.set()
        self._thread.join(1)
        self.board.release()
