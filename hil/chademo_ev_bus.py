"""The bench's CHAdeMO EV on a real CAN bus interface and on the outlet's pins, with the DC circuit's physics.

One thread steps everything the car side owns every ``step`` s: the DC circuit, the EV's own
sequence (a :class:`Car`), the frames it hears and sends (any python-can
interface: ``virtual`` in-process, ``remote`` for another process), and the pins it drives: k
(its permission switch) and the connector-present line; it reads d1 and d2 from the charger's pins. A pin
here is anything with ``state``, ``drive_high()`` and ``drive_low()``: a mock pin, a car link's, a bench GPIO line.
"""

from __future__ import annotations

import functools
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol

import can

from hal.can import Frame
from hil.carbus import HISTORY, GuardedSends
from hil.dccircuit import DcCircuit


class Car(Protocol):
    """The car's side of a CHAdeMO session: :class:`~hil.chademo_ev.ChademoEv`, or a replay of a logged one."""

    circuit: DcCircuit
    k: bool

    def on_frame(self, frame: Frame) -> None:
        """A charger frame."""

    def tick(self, now: float, d1: bool, d2: bool) -> list[Frame]:
        """Advance to ``now``; the frames the car sends now."""


class ChademoEvOnBus:
    """A CHAdeMO car plugged into one outlet."""

    def __init__(self, ev: Car, *, d1: Any, d2: Any, k: Any, plug: Any,
                 interface: str = "virtual", channel: str, step: float = 0.005, **bus: Any) -> None:
        self.ev: Car = ev
        self.circuit = ev.circuit
        self._d1, self._d2, self._k, self._plug = d1, d2, k, plug
        self._bus = can.Bus(interface=interface, channel=channel, **bus)
        self.step = step
        self.plugged = False
        self.heard: deque[tuple[float, Frame]] = deque(maxlen=HISTORY)
        self.said: deque[tuple[float, Frame]] = deque(maxlen=HISTORY)
        #: Called with each charger frame the car hears, from its thread (a bench car reads 0x109 here).
        self.listeners: list[Callable[[Frame], None]] = []
        self._running = threading.Event()
        self._thread: threading.Thread | None = None
        self._send = GuardedSends("CHAdeMO car")
        self._k.drive_low()
        self._plug.drive_low()

    def plug_in(self) -> None:
        """The connector goes into the inlet (pin 7); a car that was plugged in before starts a new session."""
        new_session = getattr(self.ev, "new_session", None)  # a replayed car plays its one session
        if new_session is not None:
            new_session()
        self.plugged = True
        self._plug.drive_high()

    def unplug(self) -> None:
        """The connector leaves the inlet."""
        self.plugged = False
        self._plug.drive_low()

    def start(self) -> None:
        """Run the car's thread."""
        self._running.set()
        self._thread = threading.Thread(target=self._run, name="chademo-ev", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """End the thread and release the bus."""
        self._running.clear()
        if self._thread is not None:
            self._thread.join(1.0)
        self._bus.shutdown()

    def _run(self) -> None:
        last = time.monotonic()
        while self._running.is_set():
            now = time.monotonic()
            self.circuit.step(now - last)
            last = now
            while (msg := self._bus.recv(0)) is not None:
                if not msg.is_extended_id:
                    frame = Frame(msg.arbitration_id, bytes(msg.data), False, now)
                    self.heard.append((now, frame))
                    self.ev.on_frame(frame)
                    for listener in self.listeners:
                        listener(frame)
            d1 = bool(self._d1.state) and self.plugged
            d2 = bool(self._d2.state) and self.plugged
            for frame in self.ev.tick(now, d1, d2):
                self.said.append((now, frame))
                message = can.Message(arbitration_id=frame.id, data=frame.data, is_extended_id=False)
                self._send(functools.partial(self._bus.send, message))
            if self.ev.k != bool(self._k.state):
                (self._k.drive_high if self.ev.k else self._k.drive_low)()
            time.sleep(self.step)
