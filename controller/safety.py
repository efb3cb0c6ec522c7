"""The safety supervisor: the only code that closes a contactor, and the keeper of faults.

It is independent of sessions and OCPP. The connector asks for power with
:meth:`SafetySupervisor.request_close`; the supervisor closes only while the
session logic has granted a permit, the pilot reads C (or D where the site
ventilates), the PWM offers current, the EV's diode was seen during this PWM
run (when the pilot can read the low half), every interlock holds (RCM tested,
cable locked) and no fault is active. Pilot readings arrive through
:meth:`on_pilot` *in the pilot monitor's thread*, and faults through
:meth:`raise_fault` from any thread, so the contactor opens right there,
without waiting for the asyncio loop, the state machine or the network.

A watch thread runs every 5 ms. It compares each contactor's mirror contact
with its coil: still closed ``feedback_delay`` after opening is a welded
contactor, still open after closing is one that failed to close. It also
opens under load a contactor whose EV stays in C for ``ev_stop_timeout``
after the PWM was withdrawn (IEC 61851-1 state C1, 6 s). Latching faults stay
until their condition is gone *and* the pilot reads A (vehicle unplugged).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
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
    ventilation: bool = False
    ev_stop_timeout: float = 6.0
    #: The PWM epoch in which the EV's diode was last seen (-1: never).
    diode_epoch: int = -1
    #: When a closed contactor without an offer (C1) or a permit must open; None while none is due.
    open_deadline: float | None = None
    #: Conditions other devices must confirm before closing (name -> holds now).
    interlocks: dict[str, bool] = field(default_factory=dict)
    lock: threading.RLock = field(default_factory=threading.RLock)


class SafetySupervisor:
    """Grants and revokes contactor closure for every connector; raises, latches and clears faults."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._channels: dict[int, _Channel] = {}
        #: (monotonic time, connector id, reason) of every opening the supervisor forced.
        self.trips: list[tuple[float, int, str]] = []
        #: (monotonic time, connector id, fault) of the last faults raised, stamped as raise_fault is entered.
        self.history: deque[tuple[float, int, Fault]] = deque(maxlen=1000)
        #: Told (connector id, active faults) after every change, in the thread that made it.
        self.listeners: list[FaultListener] = []
        self._stop = threading.Event()
        self._watch: threading.Thread | None = None

    def add(self, connector_id: int, contactor: Contactor, pilot: ControlPilot, feedback_delay: float = 0.2, *,
            ventilation: bool = False, ev_stop_timeout: float = 6.0) -> None:
        """Supervise a connector's contactor; it starts open and without a permit."""
        contactor.open()
        self._channels[connector_id] = _Channel(contactor, pilot, switched_at=self._clock(),
                                                feedback_delay=feedback_delay, ventilation=ventilation,
                                                ev_stop_timeout=ev_stop_timeout)

    def require(self, connector_id: int, interlock: str) -> None:
        """Add an interlock (e.g. "rcm", "lock") that must be confirmed before each close; it starts unmet."""
        ch = self._channels[connector_id]
        with ch.lock:
            ch.interlocks[interlock] = False

    def set_interlock(self, connector_id: int, interlock: str, ok: bool) -> None:
        """Confirm or withdraw an interlock (any thread); withdrawing it opens a closed contactor at once."""
        ch = self._channels[connector_id]
        with ch.lock:
            ch.interlocks[interlock] = ok
            if not ok and ch.contactor.commanded_closed:
                self._open(connector_id, ch, f"{interlock} interlock lost")

    def interlock(self, connector_id: int, interlock: str) -> bool:
        """Whether an interlock holds now."""
        return self._channels[connector_id].interlocks.get(interlock, True)

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
        if state == PilotState.D and not ch.ventilation:
            self.raise_fault(connector_id, Fault.VENTILATION_NOT_AVAILABLE)
        elif Fault.VENTILATION_NOT_AVAILABLE in ch.faults:
            self.clear_fault(connector_id, Fault.VENTILATION_NOT_AVAILABLE)
        if state == PilotState.A:
            # No vehicle, no diode to doubt: a diode fault ends with the car that had it.
            self.clear_fault(connector_id, Fault.DIODE_FAULT)
            self._release_latched(connector_id)

    def on_diode(self, connector_id: int, ok: bool, epoch: int) -> None:
        """The pilot monitor's diode check during PWM run ``epoch`` (monitor thread)."""
        ch = self._channels[connector_id]
        with ch.lock:
            if ok:
                ch.diode_epoch = epoch
        if not ok:
            self.raise_fault(connector_id, Fault.DIODE_FAULT, "PWM low half not at -12 V")

    def raise_fault(self, connector_id: int, fault: Fault, detail: str = "") -> None:
        """A fault is present (any thread): the contactor opens now and stays open while it lasts."""
        raised_at = self._clock()
        ch = self._channels[connector_id]
        with ch.lock:
            ch.condition_gone.discard(fault)
            if fault in ch.faults:
                return
            self.history.append((raised_at, connector_id, fault))
            ch.faults[fault] = detail or fault.info.description
            ch.permit = False
            if ch.contactor.commanded_closed:
                self._open(connector_id, ch, fault.info.vendor_code)
            log.error("connector %d: fault %s (%s)", connector_id, fault.info.vendor_code, ch.faults[fault])
            snapshot = dict(ch.faults)
        self._notify(connector_id, snapshot)

    def clear_fault(self, connector_id: int, fault: Fault, *, force: bool = False) -> None:
        """A fault's condition is gone; a latching one also waits for the vehicle to be unplugged.

        ``force`` releases a latched fault with the vehicle still connected (a re-close policy).
        """
        ch = self._channels[connector_id]
        with ch.lock:
            if fault not in ch.faults:
                return
            if fault.info.latching and ch.pilot_state != PilotState.A and not force:
                ch.condition_gone.add(fault)
                log.info("connector %d: %s condition gone; cleared once the vehicle is unplugged",
                         connector_id, fault.info.vendor_code)
                return
            del ch.faults[fault]
            ch.condition_gone.discard(fault)
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

    def closed(self, connector_id: int) -> bool:
        """Whether the contactor is driven closed."""
        return bool(self._channels[connector_id].contactor.commanded_closed)

    def pilot_state(self, connector_id: int) -> PilotState | None:
        """The last debounced pilot state the supervisor saw."""
        return self._channels[connector_id].pilot_state

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
        """The session logic grants (or withdraws) the right to deliver energy.

        Withdrawn while the PWM still offers current, the contactor opens at once. Withdrawn after the
        PWM (the IEC way to stop), an EV still in C gets ``ev_stop_timeout`` to bring its current
        down and go to B before the watch opens the contactor under load.
        """
        ch = self._channels[connector_id]
        with ch.lock:
            ch.permit = allowed
            requesting = ch.pilot_state is not None and ch.pilot_state.requesting
            if not allowed and ch.contactor.commanded_closed and (
                    ch.pilot.offered_current is not None or not requesting):
                self._switch(ch, close=False)

    def request_close(self, connector_id: int) -> bool:
        """Close the contactor if every condition holds right now; True when closed."""
        ch = self._channels[connector_id]
        with ch.lock:
            if self._blockers(ch):
                return False
            self._switch(ch, close=True)
            return True

    def blocked_by(self, connector_id: int) -> list[str]:
        """What keeps the contactor from closing right now (empty when nothing does)."""
        ch = self._channels[connector_id]
        with ch.lock:
            return self._blockers(ch)

    @staticmethod
    def _blockers(ch: _Channel) -> list[str]:
        # Every condition for closing, in one place: request_close closes only when this is empty.
        reasons = [f.info.vendor_code for f in ch.faults]
        if not ch.permit:
            reasons.append("no permit")
        if ch.pilot_state is None or not ch.pilot_state.requesting:
            reasons.append("pilot not in C or D")
        if ch.pilot.offered_current is None:
            reasons.append("no PWM")  # C1: the EV may ask, but no PWM offers current
        if ch.pilot.measures_low and ch.diode_epoch != ch.pilot.pwm_epoch:
            reasons.append("diode not checked during this PWM run")
        reasons += [f"{name} not ready" for name, ok in ch.interlocks.items() if not ok]
        return reasons

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
        """Start the watch thread: mirror contacts against coils, and the C1 open-under-load timer."""
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
                self.check_stop_timeout(cid, ch)

    def check_stop_timeout(self, connector_id: int, ch: _Channel | None = None) -> None:
        """Open under load a contactor left closed without an offer or a permit for ``ev_stop_timeout``."""
        ch = ch or self._channels[connector_id]
        with ch.lock:
            if not ch.contactor.commanded_closed or (ch.permit and ch.pilot.offered_current is not None):
                ch.open_deadline = None
                return
            now = self._clock()
            if ch.open_deadline is None:
                ch.open_deadline = now + ch.ev_stop_timeout
            elif now >= ch.open_deadline:
                ch.open_deadline = None
                self._open(connector_id, ch, "EV still in C after the PWM stopped; opened under load")

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
