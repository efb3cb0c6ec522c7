"""The safety supervisor: the only code that closes a contactor, and the keeper of faults.

It is independent of sessions, charging protocols and OCPP. A contactor closes only through
:meth:`SafetySupervisor.request_close`, and only while every *named condition* of its EVSE holds: ``permit``
(the session logic grants energy) plus whatever the charging protocol and the devices require (AC: ``demand``
from the pilot, ``offer`` of the PWM, ``diode``, ``rcm``, ``lock``; DC adds ``insulation``, ``voltage_match``,
``ev_permission``, ``link``), and no fault is active.

Conditions and faults arrive from whichever thread sees them (the pilot monitor, a GPIO callback, the meter
poller) and act right there: losing a condition or raising a fault opens the contactor at once, without waiting
for the asyncio loop, the state machine or the network. The one exception is a *graceful* condition (AC:
``offer``): withdrawing it is the protocol's way to ask the vehicle to stop, so the contactor stays closed for the
stop grace (IEC 61851-1 state C1: 6 s) or until the vehicle stops asking, whichever comes first. A hook may run
just before any opening (DC ramps its power stage down there).

A watch thread compares each contactor's mirror contact with its coil (still closed ``feedback_delay`` after
opening: welded; still open after closing: failed to close) and ends stop graces: every 5 ms while a contactor
switches or a grace runs, every 50 ms while one is closed, every 0.25 s while all are open; a switch wakes it.
Latching faults stay until their condition is gone *and* the vehicle has left.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from controller.domain.faults import Fault
from hal.contactor import Contactor

log = logging.getLogger(__name__)

WATCH_INTERVAL = 0.005
#: The watch's period while a contactor is closed and nothing is switching or stopping.
WATCH_IDLE_INTERVAL = 0.05
#: The watch's period while every contactor is open and settled: nothing is live, and a mirror contact that
#: reads closed is still found (each wake-up of a thread costs more CPU than the look itself).
WATCH_REST_INTERVAL = 0.25
#: How many forced openings and raised faults are kept for benchmarks and diagnosis.
HISTORY = 1000
PERMIT = "permit"

FaultListener = Callable[[int, dict[Fault, str]], None]


@dataclass
class _Channel:
    contactor: Contactor
    feedback_delay: float
    stop_grace: float
    before_open: Callable[[], None] | None
    #: Named closing conditions and whether each holds now; graceful ones open only after the stop grace.
    conditions: dict[str, bool] = field(default_factory=lambda: {PERMIT: False})
    graceful: set[str] = field(default_factory=set)
    close_only: set[str] = field(default_factory=set)
    #: Active faults with a detail each; ``condition_gone`` holds latched ones waiting for the vehicle to leave.
    faults: dict[Fault, str] = field(default_factory=dict)
    condition_gone: set[Fault] = field(default_factory=set)
    #: Whether a vehicle is connected (None: not known yet).
    vehicle: bool | None = None
    switched_at: float = 0.0
    #: When a contactor closed without a graceful condition must open; None while none is due.
    open_deadline: float | None = None
    #: A DC outlet's "the current is down now": past the grace the protocol's ending may keep the contactors
    #: closed (the car opens its own first; welding detection) for up to ``hold_limit`` s more while it holds.
    current_safe: Callable[[], bool] | None = None
    hold_limit: float = 0.0
    lock: threading.RLock = field(default_factory=threading.RLock)


class SafetySupervisor:
    """Grants and revokes contactor closure for every EVSE; raises, latches and clears faults."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._channels: dict[int, _Channel] = {}
        #: (monotonic time, EVSE id, reason) of the last openings the supervisor forced.
        self.trips: deque[tuple[float, int, str]] = deque(maxlen=HISTORY)
        #: (monotonic time, EVSE id, fault) of the last faults raised, stamped as raise_fault is entered.
        self.history: deque[tuple[float, int, Fault]] = deque(maxlen=HISTORY)
        #: Told (EVSE id, active faults) after every change, in the thread that made it.
        self.listeners: list[FaultListener] = []
        self._stop = threading.Event()
        #: Set by a switch: the watch looks now instead of at the end of its resting period.
        self._wake = threading.Event()
        self._watch: threading.Thread | None = None

    def add(self, evse_id: int, contactor: Contactor, feedback_delay: float = 0.2, *, stop_grace: float = 6.0,
            before_open: Callable[[], None] | None = None, current_safe: Callable[[], bool] | None = None,
            hold_limit: float = 0.0) -> None:
        """Supervise an EVSE's contactor; it starts open, without a permit.

        With ``current_safe`` (any thread; True while a fresh reading shows the current down), a contactor past
        its stop grace stays closed while the current is safe, up to ``hold_limit`` s more, so the protocol ends
        the session in its own order.
        """
        contactor.open()
        self._channels[evse_id] = _Channel(contactor, feedback_delay, stop_grace, before_open,
                                           switched_at=self._clock(), current_safe=current_safe,
                                           hold_limit=hold_limit)

    def require(self, evse_id: int, condition: str, *, graceful: bool = False, close_only: bool = False) -> None:
        """Add a condition that must hold before each close; it starts unmet.

        A ``graceful`` one (the protocol's offer) opens a closed contactor only after the stop grace; a
        ``close_only`` one (a check made before closing) never opens it: its failure comes as a fault.
        """
        ch = self._channels[evse_id]
        with ch.lock:
            ch.conditions[condition] = False
            if graceful:
                ch.graceful.add(condition)
            if close_only:
                ch.close_only.add(condition)

    def set_condition(self, evse_id: int, condition: str, holds: bool) -> None:
        """A condition holds, or no longer does (any thread). Losing one opens a closed contactor now.

        Losing a graceful condition starts the stop grace instead; so does withdrawing the permit while a
        graceful one is already lost (the protocol asked the vehicle to stop first, as IEC 61851-1 orders).
        Losing a close-only condition only keeps the next close from happening.
        """
        ch = self._channels[evse_id]
        with ch.lock:
            if condition not in ch.conditions:
                raise KeyError(f"EVSE {evse_id} has no condition {condition!r}")
            ch.conditions[condition] = holds
            if holds or not ch.contactor.commanded_closed or condition in ch.close_only:
                return
            if condition in ch.graceful or (condition == PERMIT and self._stopping(ch)):
                self._arm_grace(ch)
            else:
                self._open(evse_id, ch, f"{condition} lost")

    def set_permit(self, evse_id: int, allowed: bool) -> None:
        """The session logic grants (or withdraws) the right to deliver energy."""
        self.set_condition(evse_id, PERMIT, allowed)

    def holds(self, evse_id: int, condition: str) -> bool:
        """Whether a condition holds now (True for one the EVSE does not have)."""
        return self._channels[evse_id].conditions.get(condition, True)

    def set_vehicle(self, evse_id: int, present: bool | None) -> None:
        """Whether a vehicle is connected (any thread). When it leaves, latched faults whose cause is gone clear."""
        ch = self._channels[evse_id]
        with ch.lock:
            ch.vehicle = present
            ready = [f for f in ch.condition_gone if f in ch.faults] if present is False else []
            if present is False:
                ch.condition_gone.clear()
        for fault in ready:
            self.clear_fault(evse_id, fault)

    def vehicle(self, evse_id: int) -> bool | None:
        """Whether a vehicle is connected (None: not known)."""
        return self._channels[evse_id].vehicle

    # ----------------------------------------------------------------- faults

    def raise_fault(self, evse_id: int, fault: Fault, detail: str = "") -> None:
        """A fault is present (any thread): the contactor opens now and stays open while it lasts."""
        raised_at = self._clock()
        ch = self._channels[evse_id]
        with ch.lock:
            ch.condition_gone.discard(fault)  # present again: a latched one waits for the next departure
            if fault in ch.faults:
                return
            self.history.append((raised_at, evse_id, fault))
            ch.faults[fault] = detail or fault.info.description
            ch.conditions[PERMIT] = False  # the session logic must grant again once the fault is gone
            if ch.contactor.commanded_closed:
                self._open(evse_id, ch, fault.info.code)
            log.error("connector %d: fault %s (%s)", evse_id, fault.info.code, ch.faults[fault])
            snapshot = dict(ch.faults)
        self._notify(evse_id, snapshot)

    def clear_fault(self, evse_id: int, fault: Fault, *, force: bool = False) -> None:
        """A fault's cause is gone; a latching one also waits for the vehicle to leave.

        ``force`` releases a latched fault with the vehicle still connected (a re-close policy).
        """
        ch = self._channels[evse_id]
        with ch.lock:
            if fault not in ch.faults:
                return
            if fault.info.latching and ch.vehicle is not False and not force:
                ch.condition_gone.add(fault)
                log.info("connector %d: %s cause gone; cleared once the vehicle has left", evse_id, fault.info.code)
                return
            del ch.faults[fault]
            ch.condition_gone.discard(fault)
            log.info("connector %d: fault %s cleared", evse_id, fault.info.code)
            snapshot = dict(ch.faults)
        self._notify(evse_id, snapshot)

    def faults(self, evse_id: int) -> dict[Fault, str]:
        """Active faults of an EVSE."""
        ch = self._channels[evse_id]
        with ch.lock:
            return dict(ch.faults)

    def _notify(self, evse_id: int, faults: dict[Fault, str]) -> None:
        for listener in list(self.listeners):
            try:
                listener(evse_id, faults)
            except Exception:
                log.exception("fault listener failed")

    # -------------------------------------------------------------- switching

    def request_close(self, evse_id: int) -> bool:
        """Close the contactor if every condition holds right now; True when closed."""
        ch = self._channels[evse_id]
        with ch.lock:
            blockers = self._blockers(ch)
            if blockers:
                return False
            if not ch.contactor.commanded_closed:
                self._switch(ch, close=True)
                log.info("connector %d: contactor closed (%s hold)", evse_id, ", ".join(ch.conditions))
            return True

    def blocked_by(self, evse_id: int) -> list[str]:
        """What keeps the contactor from closing right now (empty when nothing does)."""
        ch = self._channels[evse_id]
        with ch.lock:
            return self._blockers(ch)

    @staticmethod
    def _blockers(ch: _Channel) -> list[str]:
        # Every condition for closing, in one place: request_close closes only when this is empty.
        return [f.info.code for f in ch.faults] + [name for name, holds in ch.conditions.items() if not holds]

    @staticmethod
    def _stopping(ch: _Channel) -> bool:
        return any(not ch.conditions[name] for name in ch.graceful)

    def closed(self, evse_id: int) -> bool:
        """Whether the contactor is driven closed."""
        return bool(self._channels[evse_id].contactor.commanded_closed)

    def open(self, evse_id: int) -> None:
        """Open an EVSE's contactor (always allowed)."""
        ch = self._channels[evse_id]
        with ch.lock:
            self._switch(ch, close=False)

    def open_all(self) -> None:
        """Open every contactor and withdraw every permit (shutdown, crash, emergency)."""
        for ch in self._channels.values():
            with ch.lock:
                ch.conditions[PERMIT] = False
                self._switch(ch, close=False)

    def _arm_grace(self, ch: _Channel) -> None:
        if ch.open_deadline is None:
            ch.open_deadline = self._clock() + ch.stop_grace

    def _open(self, evse_id: int, ch: _Channel, reason: str) -> None:
        self._switch(ch, close=False)
        self.trips.append((self._clock(), evse_id, reason))
        log.info("connector %d: contactor opened by the supervisor (%s)", evse_id, reason)

    def _switch(self, ch: _Channel, *, close: bool) -> None:
        if not close and ch.contactor.commanded_closed and ch.before_open is not None:
            try:
                ch.before_open()
            except Exception:
                log.exception("hook before opening failed; opening anyway")
        # The switch time moves *before* the coil does, so the watch never pairs a new coil state
        # with an old time (and calls a contactor still moving a failed one).
        if close != ch.contactor.commanded_closed:
            ch.switched_at = self._clock()
            self._wake.set()  # a resting watch looks at once, and then at the switching rate
        if close:
            ch.open_deadline = None
            ch.contactor.close()
        else:
            ch.contactor.open()

    # ----------------------------------------------------------- the watch

    def start_watch(self) -> None:
        """Start the watch thread: mirror contacts against coils, and stop graces."""
        self._watch = threading.Thread(target=self._watch_loop, name="contactor-watch", daemon=True)
        self._watch.start()

    def stop_watch(self) -> None:
        """Stop the watch thread."""
        self._stop.set()
        self._wake.set()
        if self._watch is not None:
            self._watch.join(timeout=2.0)

    def _watch_loop(self) -> None:
        interval = WATCH_INTERVAL
        while True:
            self._wake.wait(interval)
            self._wake.clear()
            if self._stop.is_set():
                return
            for evse_id, ch in self._channels.items():
                self.check_feedback(evse_id, ch)
                self.check_stop_grace(evse_id, ch)
            channels = self._channels.values()
            if any(self._watched(ch) for ch in channels):
                interval = WATCH_INTERVAL
            elif any(ch.contactor.commanded_closed for ch in channels):
                interval = WATCH_IDLE_INTERVAL
            else:
                interval = WATCH_REST_INTERVAL

    def _watched(self, ch: _Channel) -> bool:
        """A channel the watch must look at every few milliseconds: closed with a stop grace due or running, or
        just switched (its mirror contact is due). A contactor settled open, or settled closed with nothing
        stopping, is looked at every WATCH_IDLE_INTERVAL (WATCH_REST_INTERVAL when every contactor is open): a
        weld on an idle open contactor, or a contactor dropping out under a session, is found within it (neither
        leaves anything live that should not be)."""
        with ch.lock:
            stopping = ch.contactor.commanded_closed and (self._stopping(ch) or not ch.conditions[PERMIT])
        return stopping or ch.open_deadline is not None or self._clock() - ch.switched_at < 2 * ch.feedback_delay

    def check_stop_grace(self, evse_id: int, ch: _Channel | None = None) -> None:
        """Open under load a contactor left closed without its graceful conditions or permit past the grace."""
        ch = ch or self._channels[evse_id]
        with ch.lock:
            stopping = self._stopping(ch) or not ch.conditions[PERMIT]
            if not ch.contactor.commanded_closed or not stopping:
                ch.open_deadline = None
                return
            now = self._clock()
            if ch.open_deadline is None:
                ch.open_deadline = now + ch.stop_grace
            elif now >= ch.open_deadline:
                held = ch.current_safe is not None and _safe(ch.current_safe)
                if held and now < ch.open_deadline + ch.hold_limit:
                    return  # the current is down: the protocol's ending decides, for a bounded time
                ch.open_deadline = None
                self._open(evse_id, ch, "the protocol's ending held them past the stop grace and its hold; opened"
                           if held else "vehicle still drawing after the stop grace; opened under load")

    def check_feedback(self, evse_id: int, ch: _Channel | None = None) -> None:
        """Compare one mirror contact with its coil (the watch thread calls this; see the module's docstring)."""
        ch = ch or self._channels[evse_id]
        with ch.lock:  # a consistent coil state and switch time
            feedback = ch.contactor.feedback_closed
            if feedback is None:
                return
            commanded = ch.contactor.commanded_closed
            settled = self._clock() - ch.switched_at >= ch.feedback_delay
        if feedback and not commanded and settled:
            self.raise_fault(evse_id, Fault.CONTACTOR_WELDED, "mirror contact still closed after opening")
        elif not feedback and commanded and settled:
            self.raise_fault(evse_id, Fault.CONTACTOR_FAILED_TO_CLOSE, "mirror contact open while driven")
        elif feedback == commanded:
            for fault in (Fault.CONTACTOR_WELDED, Fault.CONTACTOR_FAILED_TO_CLOSE):
                if fault in ch.faults and fault not in ch.condition_gone:
                    self.clear_fault(evse_id, fault)

    def self_test(self, evse_id: int) -> bool:
        """Boot self-test with no vehicle: close, check the mirror, open, check again. True when it passed; False
        when it failed (and the fault is raised) or when something opened the contactor during it (no verdict)."""
        ch = self._channels[evse_id]
        if ch.contactor.feedback_closed is None or ch.vehicle is not False:
            # Nothing to read, or a vehicle connected, or nobody knows yet (the pilot reads E, F or nothing):
            # never energise the outlet for a test.
            return True
        with ch.lock:
            self._switch(ch, close=True)
        time.sleep(ch.feedback_delay)
        with ch.lock:
            interrupted = not ch.contactor.commanded_closed
            closed_ok = ch.contactor.feedback_closed is True
        if interrupted:
            # Opened meanwhile (a fault, a condition lost): safe, and no verdict on the contacts.
            log.info("connector %d: contactor self-test interrupted (opened during it); not judged", evse_id)
            return False
        with ch.lock:
            self._switch(ch, close=False)
        time.sleep(ch.feedback_delay)
        open_ok = ch.contactor.feedback_closed is False
        if not closed_ok:
            self.raise_fault(evse_id, Fault.CONTACTOR_FAILED_TO_CLOSE, "boot self-test: did not close")
        if not open_ok:
            self.raise_fault(evse_id, Fault.CONTACTOR_WELDED, "boot self-test: did not open")
        log.info("connector %d: contactor self-test %s", evse_id, "passed" if closed_ok and open_ok else "FAILED")
        return closed_ok and open_ok


def _safe(current_safe: Callable[[], bool]) -> bool:
    try:
        return bool(current_safe())
    except Exception:  # a reading that cannot be had is no reading of a safe current
        log.exception("current check failed; the contactor opens")
        return False
