"""IEC 61851-1 on the AC control pilot: the charging protocol of a Type 2 (or Type 1) outlet.

Everything the pilot means lives here, on two threads:

- In the pilot monitor's thread, each debounced state goes straight to the supervisor: ``demand`` (C, or D),
  the pilot faults (E, an F the station does not drive, D without ventilation, an unreadable pilot), the diode
  seen on the PWM's low half during this PWM run, and whether a vehicle is there. Faults are raised before the
  EVSE hears of the state, and a departure releases latched faults only after it, so the EVSE sees a short as a
  fault (not an unplug) and a cleared latch with no car (no spurious Preparing).
- On the loop, the state becomes a :class:`VehicleStatus` for the EVSE; a plug-in reads the cable's PP rating
  and starts the RCM's test; the offer becomes a PWM duty: at most the smallest limit, nothing below 6 A, lower
  at once but higher only 5 s after the last change (the rate EVerest keeps, as IEC 61851-1 asks); an EV asleep
  in B2 gets one 4 s state-F pulse (ISO 15118-3 t_step_EF) per session.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable

from controller.clock import Clock
from controller.config import PilotSection
from controller.domain.faults import Fault
from controller.domain.types import Answer, PowerLimit
from controller.evse.port import ChargingProtocol, VehicleStatus
from controller.safety.lock import LOCK, LockControl
from controller.safety.rcm import RCM, RcmControl
from controller.safety.supervisor import SafetySupervisor
from hal.pilot import MAX_CURRENT_A, MIN_CURRENT_A, ControlPilot, PilotMonitor, PilotState, pilot_label, plugged_in
from hal.proximity import ProximityError, ProximityInput, cable_rating

log = logging.getLogger(__name__)

DEMAND, OFFER, DIODE = "demand", "offer", "diode"
CABLE = "cable"
#: Raising the offered current waits this long after the previous PWM change (IEC 61851-1; EVerest 5000 ms).
PWM_RAISE_INTERVAL = 5.0
#: The pilot's poll period while nothing can be energised (A or F, no PWM): a vehicle is seen within 0.1 s of
#: plugging in, a dead ADC within 50 ms and ``invalid_after`` (nothing is live meanwhile).
IDLE_POLL = 0.05
#: State F pulse that wakes an EV asleep in B2 (ISO 15118-3 t_step_EF).
WAKEUP_PULSE = 4.0
#: Until smart charging measures the line voltage, a limit in watts is turned into amps at the nominal voltage.
NOMINAL_VOLTS = 230.0
#: A phase carrying at least this much current is one the EV charges on.
PHASE_IN_USE_A = 2.0

_VEHICLE = {None: VehicleStatus.UNKNOWN, PilotState.A: VehicleStatus.ABSENT, PilotState.B: VehicleStatus.CONNECTED,
            PilotState.C: VehicleStatus.REQUESTING, PilotState.D: VehicleStatus.REQUESTING,
            PilotState.E: VehicleStatus.ERROR, PilotState.F: VehicleStatus.ERROR}

ToLoop = Callable[..., None]


class Iec61851(ChargingProtocol):
    """One AC outlet's pilot, its PP input, and the RCM and cable lock around it."""

    def __init__(self, evse_id: int, pilot: ControlPilot, supervisor: SafetySupervisor, settings: PilotSection, *,
                 phases: int, to_loop: ToLoop, clock: Clock | None = None, proximity: ProximityInput | None = None,
                 rcm: RcmControl | None = None, lock: LockControl | None = None) -> None:
        super().__init__()
        self.id = evse_id
        self.pilot = pilot
        self.supervisor = supervisor
        self.settings = settings
        self.phases = phases
        self.clock = clock or Clock()
        self.proximity = proximity
        self.rcm = rcm
        self.lock = lock
        self._to_loop = to_loop
        self.pwm_raise_interval = PWM_RAISE_INTERVAL
        self.wakeup_after = settings.wakeup_after
        self.wakeup_pulse = WAKEUP_PULSE
        self.state: PilotState | None = None
        self._pwm_changed_at = float("-inf")
        self._raise_handle: asyncio.TimerHandle | None = None
        self._wakeup_handle: asyncio.TimerHandle | None = None
        self._woken_handle: asyncio.TimerHandle | None = None
        self._waking = False
        self._ev_requested = False
        self._diode_lock = threading.Lock()
        supervisor.require(evse_id, DEMAND)
        supervisor.require(evse_id, OFFER, graceful=True)
        if pilot.measures_low:
            # Needed to close; a new PWM run while closed (an offer back within the stop grace) does not open.
            supervisor.require(evse_id, DIODE, close_only=True)
        else:
            log.warning("connector %d: pilot.adc_low_channel not set: no diode check (IEC 61851-1 asks for one "
                        "before closing)", evse_id)
        self.monitor = PilotMonitor(pilot, self.on_sample, poll_interval=settings.poll_interval,
                                    debounce_samples=settings.debounce_samples, name=f"pilot{evse_id}",
                                    diode_callback=self.on_diode,
                                    invalid_samples=round(settings.invalid_after / settings.poll_interval),
                                    steady_interval=settings.steady_interval, idle_interval=IDLE_POLL)

    def start(self) -> None:
        """From state F to a steady +12 V (ready), then watch the pilot."""
        self.pilot.stop_offer()
        self.monitor.start()

    def stop(self) -> None:
        """Stop watching the pilot."""
        self.monitor.stop()

    # ------------------------------------------------- the monitor's thread

    def on_sample(self, state: PilotState | None, _t: float) -> None:
        """A debounced pilot state (the monitor thread calls this).

        The order matters: a lost demand opens first; the faults the state shows are raised, and an arriving
        vehicle is known, before the EVSE hears of the state (a short ends the session as a fault, not an
        unplug; no contactor self-test with a car there); a departure is heard before the faults it clears
        go (no Preparing without a car).
        """
        if self._waking and state == PilotState.F:
            return  # our own wake-up pulse, not a fault or an unplug
        sup = self.supervisor
        demand = state is not None and state.requesting
        if not demand:
            sup.set_condition(self.id, DEMAND, False)  # C -> B, unplug, short: open now
        driving_f = self.pilot.offered_current is None and self.pilot.output_level == 0.0
        shown = {
            Fault.PILOT_FAULT: (state == PilotState.E or (state == PilotState.F and not driving_f),
                                f"pilot state {state.value if state else ''}"),
            Fault.PILOT_UNREADABLE: (state is None, "no pilot state readable"),
            Fault.VENTILATION_NOT_AVAILABLE: (state == PilotState.D and not self.settings.ventilation, ""),
        }
        for fault, (present, detail) in shown.items():
            if present:
                sup.raise_fault(self.id, fault, detail)
        if state is not None and state.plugged:
            sup.set_vehicle(self.id, True)
        departing = state == PilotState.A
        if not departing:
            self._clear([f for f, (present, _) in shown.items() if not present])
        if demand:
            sup.set_condition(self.id, DEMAND, True)
        self._to_loop(self._pilot_changed, state)
        if departing:
            # No vehicle, no diode to doubt; and latched faults whose cause is gone may go with it.
            self._clear([*shown, Fault.DIODE_FAULT])
            sup.set_vehicle(self.id, False)

    def _clear(self, faults: list[Fault]) -> None:
        active = self.supervisor.faults(self.id)
        for fault in faults:
            if fault in active:
                self.supervisor.clear_fault(self.id, fault)

    def on_diode(self, ok: bool, epoch: int, _t: float) -> None:
        """A confirmed diode check of PWM run ``epoch`` (the monitor thread calls this)."""
        # Reported before the state change of the same poll: a good diode may let the close go ahead.
        if not ok:
            self.supervisor.raise_fault(self.id, Fault.DIODE_FAULT, "PWM low half not at -12 V")
            return
        with self._diode_lock:  # the check and the PWM run it belongs to, against a restart on the loop
            if epoch != self.pilot.pwm_epoch:
                return
            self.supervisor.set_condition(self.id, DIODE, True)
        self._to_loop(self._refresh)

    # ------------------------------------------------------------ the loop

    def _refresh(self) -> None:
        if self.evse is not None:
            self.evse.refresh()

    def _pilot_changed(self, state: PilotState | None) -> None:
        if self._waking and state == PilotState.F:
            return
        previous, self.state = self.state, state
        if state != previous:
            log.info("connector %d: pilot %s", self.id, pilot_label(state, self.pilot.output_level))
        if plugged_in(previous, state):
            self._read_cable()
            if self.rcm is not None:
                self.rcm.on_vehicle(True)
        elif state == PilotState.A:
            if self.proximity is not None and self.evse is not None:
                self.evse.set_limit(CABLE, None)
                self.supervisor.clear_fault(self.id, Fault.PROXIMITY_FAULT)
            if self.rcm is not None:
                self.rcm.on_vehicle(False)
            if self.lock is not None:
                self.lock.on_vehicle(False)
        vehicle = _VEHICLE[state]
        if vehicle == VehicleStatus.REQUESTING:
            self._ev_requested = True
            self._cancel(self._wakeup_handle)
            self._wakeup_handle = None
        if self.evse is not None:
            self.evse.on_vehicle(vehicle)
        self._arm_wakeup()

    def _read_cable(self) -> None:
        # A socket: the cable's PP resistor caps what may be offered through it.
        if self.proximity is None or self.evse is None:
            return
        try:
            ohms = self.proximity.read_ohms()
            amps = cable_rating(ohms)
        except ProximityError as exc:
            self.supervisor.raise_fault(self.id, Fault.PROXIMITY_FAULT, str(exc))
            return
        except Exception as exc:
            self.supervisor.raise_fault(self.id, Fault.PROXIMITY_FAULT, f"PP read failed: {exc}")
            return
        log.info("connector %d: cable PP %.0f ohm, rated %.0f A", self.id, ohms, amps)
        self.evse.set_limit(CABLE, PowerLimit(amps=amps))

    # ---------------------------------------------------------- the port

    @property
    def offered_amps(self) -> float | None:
        """What the PWM tells the EV now."""
        return self.pilot.offered_current

    def prepare(self) -> bool:
        # Lock the cable and have the RCM tested before any PWM: the EV never asks for power into an
        # outlet that is not ready, so a refused close (SuspendedEVSE) means a real problem.
        if self.lock is not None:
            self.lock.want(True)
        return self.supervisor.holds(self.id, LOCK) and self.supervisor.holds(self.id, RCM)

    def volts(self) -> float:
        # The meter's volts per phase: a watts limit on a 207 V supply allows more amps than on 230 V.
        reading = self.evse.reading if self.evse is not None else None
        measured = [v for v in (reading.voltage if reading is not None else ()) if v]
        return sum(measured) / len(measured) if measured else NOMINAL_VOLTS

    def phases_in_use(self) -> int:
        """The phases the EV draws on (the outlet's, until it draws): a single-phase car on a three-phase
        outlet may take a watts limit as three times the amps."""
        reading = self.evse.reading if self.evse is not None else None
        drawing = sum(1 for a in (reading.current if reading is not None else ()) if a is not None
                      and a >= PHASE_IN_USE_A)
        return min(drawing, self.phases) if drawing else self.phases

    def offer(self, limit: PowerLimit) -> bool:
        amps = limit.amps_at(self.volts(), self.phases_in_use())
        target = MAX_CURRENT_A if amps is None else min(amps, MAX_CURRENT_A)
        offered = self.pilot.offered_current
        now = self.clock.monotonic()
        if target < MIN_CURRENT_A:
            if offered is not None:
                self._stop_pwm()
                self._pwm_changed_at = now  # a pause is a change: resuming is a raise and waits like one
            return False
        if offered is not None and target < offered:
            self._set_pwm(target, now)
        elif offered is None or target > offered:
            wait = self._pwm_changed_at + self.pwm_raise_interval - now
            if wait <= 0:
                self._set_pwm(target, now)
            else:
                if self._raise_handle is None:
                    self._raise_handle = asyncio.get_running_loop().call_later(wait, self._raise_due)
                if offered is None:
                    return False  # still paused: nothing is on the PWM until the wait is over
        self._arm_wakeup()
        return True

    def withdraw(self) -> None:
        self._cancel(self._raise_handle)
        self._raise_handle = None
        self._stop_pwm()
        self._pwm_changed_at = float("-inf")  # the next PWM run is a new start, not a raise: it waits for nothing

    def release(self, unlock: bool) -> None:
        for handle in (self._wakeup_handle, self._woken_handle):
            self._cancel(handle)
        self._wakeup_handle = self._woken_handle = None
        self._waking = self._ev_requested = False
        if self.lock is not None and unlock:
            self.lock.want(False)

    def disable(self) -> None:
        # Unavailable: a steady +12 V and nothing offered; a vehicle is still seen arriving and leaving.
        self.withdraw()

    @property
    def has_lock(self) -> bool:
        return self.lock is not None

    async def unlock(self) -> Answer:
        if self.lock is None:
            return Answer.NOT_SUPPORTED
        return Answer.ACCEPTED if await self.lock.unlock() else Answer.FAILED

    # --------------------------------------------------------------- PWM

    def _set_pwm(self, amps: float, now: float) -> None:
        with self._diode_lock:
            if self.pilot.offered_current is None and self.pilot.measures_low:
                # A new PWM run: the EV must show its diode again before the contactor may close.
                self.supervisor.set_condition(self.id, DIODE, False)
            self.pilot.offer_current(amps)
        self.supervisor.set_condition(self.id, OFFER, True)
        self._pwm_changed_at = now
        log.info("connector %d: offering %.1f A", self.id, amps)

    def _stop_pwm(self) -> None:
        self.pilot.stop_offer()  # PWM off first: the EV gets its IEC time to stop before the contactor opens
        self.supervisor.set_condition(self.id, OFFER, False)

    def _raise_due(self) -> None:
        self._raise_handle = None
        self._refresh()

    def _arm_wakeup(self) -> None:
        if (self.wakeup_after <= 0 or self._ev_requested or self._wakeup_handle is not None
                or self.pilot.offered_current is None or self.state != PilotState.B):
            return
        self._wakeup_handle = asyncio.get_running_loop().call_later(self.wakeup_after, self._wake_up)

    def _wake_up(self) -> None:
        self._wakeup_handle = None
        if self._ev_requested or self.state != PilotState.B or self.pilot.offered_current is None:
            return
        log.info("connector %d: EV asleep in B2 for %.0f s; wake-up pulse (state F, %.1f s)", self.id,
                 self.wakeup_after, self.wakeup_pulse)
        self._ev_requested = True  # once per session
        self._waking = True
        self.pilot.set_unavailable()
        self.supervisor.set_condition(self.id, OFFER, False)
        self._woken_handle = asyncio.get_running_loop().call_later(self.wakeup_pulse, self._wake_up_done)

    def _wake_up_done(self) -> None:
        self._woken_handle = None
        self._waking = False
        self.pilot.stop_offer()  # back to a steady pilot; the next look offers again (a new PWM run)
        self._pwm_changed_at = float("-inf")  # at once: the point of the pulse is a car that wakes to a PWM
        self._refresh()

    @staticmethod
    def _cancel(handle: asyncio.TimerHandle | None) -> None:
        if handle is not None:
            handle.cancel()
