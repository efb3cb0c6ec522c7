"""The safety supervisor: the only code that closes a contactor, and the keeper of faults.

It is independent of sessions and OCPP. The connector asks for power with
:meth:`SafetySupervisor.request_close`; the supervisor closes only while the
session logic has granted a permit, the pilot reads C or D, the PWM offers
current and no fault is active. Pilot readings arrive through :meth:`on_pilot`
*in the pilot monitor's thread*, and faults through :meth:`raise_fault` from
any thread, so the contactor opens right there, without waiting for the
asyncio loop, the state machine or the network.

A watch thread compares each contactor's mirror contact with its coil: still
closed ``feedback_delay`` after opening is a welded contactor, still open after
closing is one that failed to close. Latching faults stay until their
condition is gone *and* the pilot reads A (vehicle unplugged).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from controller.faults import Fault
from hal.contactor import Contactor
from hal.pilot import ControlPilot, PilotState

log = logging.getLogger(__name__)

WATCH_INTERVAL = 0.005

FaultListener = Callable[[int, dict[Fault, str]], None]


@dataclass
class _Channel:
    contactor: Contactor
    pilot: ControlPilot
    pilot_state: PilotState | None = None
    permit: bool = False
    #: Active faults and a detail each; ``condition_gone`` holds latched ones waiting for an unplug.
    faults: dict[Fault, str] = field(default_factory=dict)
    condition_gone: set[Fault] = field(default_factory=set)
    switched_at: float = 0.0
    feedback_delay: float = 0.2
    lock: threading.RLock = field(default_factory=threading.RLock)


class SafetySupervisor:
    """Grants and revokes contactor closure for every connector; raises, latches and clears faults."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._channels: dict[int, _Channel] = {}
        #: (monotonic time, connector id, reason) of every opening the supervisor forced.
        self.trips: list[tuple[float, int, str]] = []
        #: Told (connector id, active faults) after every change, in the thread that made it.
        self.listeners: list[FaultListener] = []
        self._stop = threading.Event()
        self._watch: threading.Thread | None = None

    def add(self, connector_id: int, contactor: Contactor, pilot: ControlPilot, feedback_delay: float = 0.2) -> None:
        """Supervise a connector's contactor; it starts open and without a permit."""
        contactor.open()
        self._channels[connector_id] = _Channel(contactor, pilot, switched_at=self._clock(),
                                                feedback_delay=feedback_delay)

    # ---------------------------------------------------------------- inputs

    def on_pilot(self, connector_id: int, state: PilotState | None) -> None:
        """A debounced pilot reading (any thread). Opens at once unless the EV asks for power."""
        ch = self._channels[connector_id]
        with ch.lock:
            ch.pilot_state = state
            if ch.contactor.commanded_closed and (state is None or not state.requesting):
                self._open(connector_id, ch, f"pilot {state.value if state else 'invalid'}")
        # State E (CP shorted to PE), or F while the station does not drive it, is a pilot fault.
        driving_f = ch.pilot.offered_current is None and ch.pilot.output_level == 0.0
        if state == PilotState.E or (state == PilotState.F and not driving_f):
            self.raise_fault(connector_id, Fault.PILOT_FAULT, f"pilot state {state.value}")
        elif Fault.PILOT_FAULT in ch.faults:
            self.clear_fault(connector_id, Fault.PILOT_FAULT)
        if state == PilotState.A:
            self._release_latched(connector_id)

    def raise_fault(self, connector_id: int, fault: Fault, detail: str = "") -> None:
        """A fault is present (any thread): the contactor opens now and stays open while it lasts."""
        ch = self._channels[connector_id]
        with ch.lock:
            ch.condition_gone.discard(fault)
            if fault in ch.faults:
                return
            ch.faults[fault] = detail or fault.info.description
            ch.permit = False
            if ch.contactor.commanded_closed:
                self._open(connector_id, ch, fault.info.vendor_code)
            log.error("connector %d: fault %s (%s)", connector_id, fault.info.vendor_code, ch.faults[fault])
            snapshot = dict(ch.faults)
        self._notify(connector_id, snapshot)

    def clear_fault(self, connector_id: int, fault: Fault) -> None:
        """A fault's condition is gone; a latching one also waits for the vehicle to be unplugged."""
        ch = self._channels[connector_id]
        with ch.lock:
            if fault not in ch.faults:
                return
            if fault.info.latching and ch.pilot_state != PilotState.A:
                ch.condition_gone.add(fault)
                log.info("connector %d: %s condition gone; cleared once the vehicle is unplugged",
                         connector_id, fault.info.vendor_code)
                return
            del ch.faults[fault]
            log.info("connector %d: fault %s cleared", connector_id, fault.info.vendor_code)
            snapshot = dict(ch.faults)
        self._notify(connector_id, snapshot)

    def _release_latched(self, connector_id: int) -> None:
        ch = self._channels[connector_id]
        with ch.lock:
            ready = [f for f in ch.condition_gone if f in ch.faults]
            ch.condition_gone.clear()
        for fault in ready:
            self.clear_fault(connector_id, fault)

    def faults(self, connector_id: int) -> dict[Fault, str]:
        """Active faults of a connector."""
        ch = self._channels[connector_id]
        with ch.lock:
            return dict(ch.faults)

    def _notify(self, connector_id: int, faults: dict[Fault, str]) -> None:
        for listener in list(self.listeners):
            try:
                listener(connector_id, faults)
            except Exception:
                log.exception("fault listener failed")

    # ------------------------------------------------------------- switching

    def set_permit(self, connector_id: int, allowed: bool) -> None:
        """The session logic grants (or withdraws) the right to deliver energy."""
        ch = self._channels[connector_id]
        with ch.lock:
            ch.permit = allowed
            if not allowed and ch.contactor.commanded_closed:
                self._switch(ch, close=False)

    def request_close(self, connector_id: int) -> bool:
        """Close the contactor if every condition holds right now; True when closed."""
        ch = self._channels[connector_id]
        with ch.lock:
            state = ch.pilot_state
            if not ch.permit or ch.faults:
                return False
            if state is None or not state.requesting:
                return False
            if ch.pilot.offered_current is None:
                return False  # C1: the EV asks, but no PWM offers current
            self._switch(ch, close=True)
            return True

    def open(self, connector_id: int) -> None:
        """Open a connector's contactor (always allowed)."""
        ch = self._channels[connector_id]
        with ch.lock:
            self._switch(ch, close=False)

    def open_all(self) -> None:
        """Open every contactor and withdraw every permit (shutdown, crash, emergency)."""
        for ch in self._channels.values():
            with ch.lock:
                ch.permit = False
                self._switch(ch, close=False)

    def _open(self, connector_id: int, ch: _Channel, reason: str) -> None:
        self._switch(ch, close=False)
        self.trips.append((self._clock(), connector_id, reason))
        log.info("connector %d: contactor opened by the supervisor (%s)", connector_id, reason)

    def _switch(self, ch: _Channel, *, close: bool) -> None:
        # The switch time moves *before* the coil does, so the watch never pairs a new coil state
        # with an old time (and calls a contactor still moving a failed one).
        if close != ch.contactor.commanded_closed:
            ch.switched_at = self._clock()
        if close:
            ch.contactor.close()
        else:
            ch.contactor.open()

    # ------------------------------------------------------- mirror contacts

    def start_watch(self) -> None:
        """Start comparing mirror contacts with coils (only connectors whose contactor reports feedback)."""
        if any(ch.contactor.feedback_closed is not None for ch in self._channels.values()):
            self._watch = threading.Thread(target=self._watch_loop, name="contactor-watch", daemon=True)
            self._watch.start()

    def stop_watch(self) -> None:
        """Stop the watch thread."""
        self._stop.set()
        if self._watch is not None:
            self._watch.join(timeout=2.0)

    def _watch_loop(self) -> None:
        while not self._stop.wait(WATCH_INTERVAL):
            for cid, ch in self._channels.items():
                self.check_feedback(cid, ch)

    def check_feedback(self, connector_id: int, ch: _Channel | None = None) -> None:
        """Compare one mirror contact with its coil (the watch thread calls this every 5 ms)."""
        ch = ch or self._channels[connector_id]
        with ch.lock:  # a consistent coil state and switch time
            feedback = ch.contactor.feedback_closed
            if feedback is None:
                return
            commanded = ch.contactor.commanded_closed
            settled = self._clock() - ch.switched_at >= ch.feedback_delay
        if feedback and not commanded and settled:
            self.raise_fault(connector_id, Fault.CONTACTOR_WELDED, "mirror contact still closed after opening")
        elif not feedback and commanded and settled:
            self.raise_fault(connector_id, Fault.CONTACTOR_FAILED_TO_CLOSE, "mirror contact open while driven")
        elif feedback == commanded:
            for fault in (Fault.CONTACTOR_WELDED, Fault.CONTACTOR_FAILED_TO_CLOSE):
                if fault in ch.faults and fault not in ch.condition_gone:
                    self.clear_fault(connector_id, fault)

    def self_test(self, connector_id: int) -> bool:
        """Boot self-test with no vehicle: close, check the mirror, open, check again. True when it passed."""
        ch = self._channels[connector_id]
        if ch.contactor.feedback_closed is None or ch.pilot_state not in (None, PilotState.A):
            return True  # nothing to read, or a vehicle is connected: never energise the outlet for a test
        with ch.lock:
            self._switch(ch, close=True)
        time.sleep(ch.feedback_delay)
        closed_ok = ch.contactor.feedback_closed is True
        with ch.lock:
            self._switch(ch, close=False)
        time.sleep(ch.feedback_delay)
        open_ok = ch.contactor.feedback_closed is False
        if not closed_ok:
            self.raise_fault(connector_id, Fault.CONTACTOR_FAILED_TO_CLOSE, "boot self-test: did not close")
        if not open_ok:
            self.raise_fault(connector_id, Fault.CONTACTOR_WELDED, "boot self-test: did not open")
        log.info("connector %d: contactor self-test %s", connector_id, "passed" if closed_ok and open_ok else "FAILED")
        return closed_ok and open_ok
