"""The safety supervisor: the only code that closes a contactor.

It is independent of sessions and OCPP. The connector asks for power with
:meth:`SafetySupervisor.request_close`; the supervisor closes only while the
session logic has granted a permit, the pilot reads C or D and the PWM is
offering current. Pilot readings arrive through :meth:`on_pilot` *in the
pilot monitor's thread*, so a C -> B/A/E/F change opens the contactor right
there, without waiting for the asyncio loop, the state machine or the network.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from hal.contactor import Contactor
from hal.pilot import ControlPilot, PilotState

log = logging.getLogger(__name__)


@dataclass
class _Channel:
    contactor: Contactor
    pilot: ControlPilot
    pilot_state: PilotState | None = None
    permit: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)


class SafetySupervisor:
    """Grants and revokes contactor closure for every connector."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._channels: dict[int, _Channel] = {}
        #: (monotonic time, connector id, reason) of every opening the supervisor forced.
        self.trips: list[tuple[float, int, str]] = []

    def add(self, connector_id: int, contactor: Contactor, pilot: ControlPilot) -> None:
        """Supervise a connector's contactor; it starts open and without a permit."""
        contactor.open()
        self._channels[connector_id] = _Channel(contactor, pilot)

    def on_pilot(self, connector_id: int, state: PilotState | None) -> None:
        """A debounced pilot reading (any thread). Opens at once unless the EV asks for power."""
        ch = self._channels[connector_id]
        with ch.lock:
            ch.pilot_state = state
            if ch.contactor.commanded_closed and (state is None or not state.requesting):
                ch.contactor.open()
                reason = f"pilot {state.value if state else 'invalid'}"
                self.trips.append((self._clock(), connector_id, reason))
                log.info("connector %d: contactor opened by the supervisor (%s)", connector_id, reason)

    def set_permit(self, connector_id: int, allowed: bool) -> None:
        """The session logic grants (or withdraws) the right to deliver energy."""
        ch = self._channels[connector_id]
        with ch.lock:
            ch.permit = allowed
            if not allowed and ch.contactor.commanded_closed:
                ch.contactor.open()

    def request_close(self, connector_id: int) -> bool:
        """Close the contactor if every condition holds right now; True when closed."""
        ch = self._channels[connector_id]
        with ch.lock:
            state = ch.pilot_state
            if not ch.permit:
                return False
            if state is None or not state.requesting:
                return False
            if ch.pilot.offered_current is None:
                return False  # C1: the EV asks, but no PWM offers current
            ch.contactor.close()
            return True

    def open(self, connector_id: int) -> None:
        """Open a connector's contactor (always allowed)."""
        ch = self._channels[connector_id]
        with ch.lock:
            ch.contactor.open()

    def is_closed(self, connector_id: int) -> bool:
        """True while the contactor coil is driven."""
        return self._channels[connector_id].contactor.commanded_closed

    def open_all(self) -> None:
        """Open every contactor and withdraw every permit (shutdown, crash, emergency)."""
        for ch in self._channels.values():
            with ch.lock:
                ch.permit = False
                ch.contactor.open()
