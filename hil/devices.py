"""The far end of the safety devices on the bench: an RCM module, a cable lock, a status LED.

Each one sits on gpiozero mock pins and behaves like the part: the RCM trips
while its test input is driven (after ``trip_delay``) or while a residual
current is injected; the lock's position switch follows the motor after
``travel`` unless the lock is jammed; the LED reports each colour it shows.
"""

from __future__ import annotations

import threading

from hil.gpio import WatchedPin
from hil.timeline import Timeline


class RcmSim:
    """A 6 mA DC / 30 mA AC module: fault output, test input."""

    def __init__(self, connector_id: int, fault: WatchedPin, test: WatchedPin, timeline: Timeline, *,
                 fault_active_high: bool = True, test_active_high: bool = True, trip_delay: float = 0.03) -> None:
        self.connector_id = connector_id
        self._fault = fault
        self._high = fault_active_high
        self._test_high = test_active_high
        self._timeline = timeline
        self.trip_delay = trip_delay
        #: Injected: a residual current flows; ``dead``: the module never trips (its self-test fails).
        self.residual = False
        self.dead = False
        self._testing = False
        self.tripped = False
        test.observers.append(self._on_test)
        self._set(False)

    def _on_test(self, _t: float, value: float) -> None:
        self._testing = bool(value) == self._test_high
        threading.Timer(self.trip_delay, self._refresh).start()

    def inject(self, *, residual: bool | None = None, dead: bool | None = None) -> None:
        """Start or end a residual current, or kill the module."""
        if residual is not None:
            self.residual = residual
        if dead is not None:
            self.dead = dead
        self._refresh()

    def _refresh(self) -> None:
        self._set(not self.dead and (self.residual or self._testing))

    def _set(self, tripped: bool) -> None:
        if tripped != self.tripped:
            self.tripped = tripped
            self._timeline.record("rcm", self.connector_id, "tripped" if tripped else "ok")
        self._fault.drive(tripped, self._high)

    def settle(self) -> None:
        """Drive the output again (opening the input device applied its pull resistor over it)."""
        self._set(self.tripped)


class LockSim:
    """A socket lock: the position switch follows the motor after ``travel`` s unless jammed."""

    def __init__(self, connector_id: int, lock: WatchedPin, unlock: WatchedPin, switch: WatchedPin,
                 timeline: Timeline, *, switch_active_high: bool = True, travel: float = 0.05) -> None:
        self.connector_id = connector_id
        self._switch = switch
        self._high = switch_active_high
        self._timeline = timeline
        self.travel = travel
        self.locked = False
        #: Injected: the lock does not move (and, if it was locked, has given way).
        self.jammed = False
        lock.observers.append(lambda _t, v: self._motor(True) if v else None)
        unlock.observers.append(lambda _t, v: self._motor(False) if v else None)
        self._set(False)

    def _motor(self, towards_locked: bool) -> None:
        threading.Timer(self.travel, lambda: None if self.jammed else self._set(towards_locked)).start()

    def inject(self, jammed: bool) -> None:
        """Jam the lock; a locked lock gives way (the cable could be pulled)."""
        self.jammed = jammed
        if jammed and self.locked:
            self._set(False)

    def _set(self, locked: bool) -> None:
        if locked != self.locked:
            self._timeline.record("lock", self.connector_id, "locked" if locked else "unlocked")
        self.locked = locked
        self._switch.drive(locked, self._high)

    def settle(self) -> None:
        """Drive the switch again (opening the input device applied its pull resistor over it)."""
        self._set(self.locked)


class LedSim:
    """Three LED pins; ``colour`` is what a person would see, each change on the timeline."""

    def __init__(self, connector_id: int, red: WatchedPin, green: WatchedPin, blue: WatchedPin,
                 timeline: Timeline, active_high: bool = True) -> None:
        self.connector_id = connector_id
        self._pins = (red, green, blue)
        self._high = active_high
        self._timeline = timeline
        self.colour = (0, 0, 0)
        for pin in self._pins:
            pin.observers.append(lambda _t, _v: self._changed())

    def _changed(self) -> None:
        colour = tuple(int(bool(p.state) == self._high) for p in self._pins)
        if colour != self.colour:
            self.colour = (colour[0], colour[1], colour[2])
            self._timeline.record("led", self.connector_id, "".join("RGB"[i] for i in range(3) if colour[i]) or "off")
