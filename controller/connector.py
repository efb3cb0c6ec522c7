"""One connector's charging logic: a ``transitions`` machine whose states are OCPP statuses.

Inputs are facts: the debounced pilot state, the latest meter reading, and
session commands (authorise, stop). After each input :meth:`Connector._reconcile`
fires whichever trigger the facts call for; the machine refuses any trigger
not allowed from the current state (``MachineError``), which keeps impossible
sequences out.

AC flow: plug (B) -> Preparing; authorised (card or remote) -> transaction
starts, the cable lock closes and the RCM's test is confirmed (where fitted),
then the PWM offers current; EV to C -> the supervisor closes the contactor
-> Charging; EV back to B -> SuspendedEV (contactor open); stop -> PWM off,
then permit withdrawn -> Finishing until unplugged -> Available. Unplugging at
any point ends the transaction (EVDisconnected).

The offer is the smallest of the connector's maximum and its named limits
(cable rating from PP, site share, temperature derating, overcurrent). A lower
offer goes on the PWM at once; a higher one at most every 5 s (IEC 61851-1,
as EVerest does); below 6 A nothing can be offered and the connector waits in
SuspendedEVSE with a steady pilot.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from transitions import Machine

from controller.clock import Clock
from controller.events import (
    ConnectorStatus,
    Event,
    StatusChanged,
    StopReason,
    Transaction,
    TransactionEnded,
    TransactionStarted,
)
from controller.faults import Fault
from controller.safety import SafetySupervisor
from hal.meter import MeterReading
from hal.pilot import MIN_CURRENT_A, ControlPilot, PilotState, pilot_label, plugged_in

log = logging.getLogger(__name__)

S = ConnectorStatus
_ENERGY_STATES = [S.CHARGING.value, S.SUSPENDED_EV.value, S.SUSPENDED_EVSE.value]
_SESSION_STATES = [S.PREPARING.value, *_ENERGY_STATES]

TRANSITIONS: list[dict[str, object]] = [
    {"trigger": "plug", "source": S.AVAILABLE.value, "dest": S.PREPARING.value},
    {"trigger": "present", "source": [S.AVAILABLE.value, S.RESERVED.value], "dest": S.PREPARING.value},
    {"trigger": "reserve", "source": S.AVAILABLE.value, "dest": S.RESERVED.value},
    {"trigger": "unreserve", "source": S.RESERVED.value, "dest": S.AVAILABLE.value},
    {"trigger": "cancel", "source": S.PREPARING.value, "dest": S.AVAILABLE.value},
    {"trigger": "charge", "source": [S.PREPARING.value, S.SUSPENDED_EV.value, S.SUSPENDED_EVSE.value],
     "dest": S.CHARGING.value},
    {"trigger": "suspend_ev", "source": [S.PREPARING.value, S.CHARGING.value, S.SUSPENDED_EVSE.value],
     "dest": S.SUSPENDED_EV.value},
    {"trigger": "suspend_evse", "source": [S.PREPARING.value, S.CHARGING.value, S.SUSPENDED_EV.value],
     "dest": S.SUSPENDED_EVSE.value},
    {"trigger": "finish", "source": _SESSION_STATES, "dest": S.FINISHING.value},
    {"trigger": "unplug", "source": [*_SESSION_STATES, S.FINISHING.value], "dest": S.AVAILABLE.value},
    {"trigger": "fail", "source": [*_SESSION_STATES, S.AVAILABLE.value, S.FINISHING.value, S.RESERVED.value],
     "dest": S.FAULTED.value},
    {"trigger": "recover", "source": S.FAULTED.value, "dest": S.AVAILABLE.value},
    {"trigger": "disable",
     "source": [S.AVAILABLE.value, S.PREPARING.value, S.FINISHING.value, S.FAULTED.value, S.RESERVED.value],
     "dest": S.UNAVAILABLE.value},
    {"trigger": "enable", "source": S.UNAVAILABLE.value, "dest": S.AVAILABLE.value},
]
#: Raising the offered current waits this long after the previous PWM change (IEC 61851-1; EVerest 5000 ms).
PWM_RAISE_INTERVAL = 5.0
#: State F pulse that wakes an EV asleep in B2 (ISO 15118-3 t_step_EF).
WAKEUP_PULSE = 4.0


class LockPort(Protocol):
    """A socket's cable lock as the connector sees it (``controller.devices.LockControl``)."""

    def want(self, locked: bool) -> None:
        """Move to (or stay in) this position; the result reaches the supervisor's "lock" interlock."""

    async def unlock(self) -> bool:
        """Unlock now and wait for the result; True when the cable is free."""


STATES = [S.AVAILABLE, S.PREPARING, S.CHARGING, S.SUSPENDED_EV, S.SUSPENDED_EVSE, S.FINISHING, S.FAULTED,
          S.UNAVAILABLE, S.RESERVED]


@dataclass
class Session:
    """An authorisation waiting for, or attached to, a transaction."""

    id_tag: str
    source: str  # "card" or "remote"
    parent_id_tag: str | None = None
    reservation_id: int | None = None


@dataclass(frozen=True)
class Reservation:
    """ReserveNow: this connector is kept for an idTag (or its group) until ``expires_at`` (monotonic)."""

    reservation_id: int
    id_tag: str
    parent_id_tag: str | None
    expires_at: float

    def admits(self, id_tag: str, parent_id_tag: str | None) -> bool:
        """The reserved idTag itself, or a card with the reservation's parentIdTag."""
        if id_tag.casefold() == self.id_tag.casefold():
            return True
        return bool(self.parent_id_tag and parent_id_tag and self.parent_id_tag.casefold() == parent_id_tag.casefold())


class Connector:
    """A connector's state machine and the session attached to it."""

    state: str  # set by transitions
    # Trigger methods that transitions adds to the model (declared for type checkers only).
    plug: Callable[[], bool]
    present: Callable[[], bool]
    cancel: Callable[[], bool]
    charge: Callable[[], bool]
    suspend_ev: Callable[[], bool]
    suspend_evse: Callable[[], bool]
    finish: Callable[[], bool]
    unplug: Callable[[], bool]
    fail: Callable[[], bool]
    recover: Callable[[], bool]
    disable: Callable[[], bool]
    enable: Callable[[], bool]
    reserve: Callable[[], bool]
    unreserve: Callable[[], bool]

    def __init__(
        self,
        connector_id: int,
        *,
        max_current: float,
        phases: int,
        pilot: ControlPilot,
        supervisor: SafetySupervisor,
        emit: Callable[[Event], None],
        clock: Clock | None = None,
        connection_timeout: float = 60.0,
        wakeup_after: float = 0.0,
        lock: LockPort | None = None,
    ) -> None:
        self.id = connector_id
        self.max_current = max_current
        self.phases = phases
        self.pilot = pilot
        self.supervisor = supervisor
        self.clock = clock or Clock()
        self.connection_timeout = connection_timeout
        #: OCPP StopTransactionOnEVSideDisconnect: false keeps the transaction open through an unplug.
        self.stop_on_ev_disconnect = True
        #: OCPP UnlockConnectorOnEVSideDisconnect: false keeps a socket's cable locked after the EV end is pulled
        #: (until UnlockConnector or the next session), so the cable stays with the station.
        self.unlock_on_ev_disconnect = True
        self.reservation: Reservation | None = None
        self._reservation_timer: asyncio.TimerHandle | None = None
        #: ChangeAvailability Inoperative received while a transaction runs: applied when it ends.
        self.inoperative_pending = False
        #: Energy register (Wh) at which delivery stops for an idTag the CSMS invalidated (None: no cap).
        self.energy_cap_wh: float | None = None
        self._emit = emit
        self.pilot_state: PilotState | None = None
        self.reading: MeterReading | None = None
        self.session: Session | None = None
        self.transaction: Transaction | None = None
        #: Monotonic time the EV was plugged in (to route a shared card reader).
        self.plugged_at: float | None = None
        self._timeout_handle: asyncio.TimerHandle | None = None
        #: Active faults (from the supervisor) and a flagged condition that does not stop charging.
        self.faults: dict[Fault, str] = {}
        #: Conditions reported with the status without stopping (first raised shows), e.g. a lost reader.
        self.warnings: list[Fault] = []
        #: Named current limits (A) below max_current: "cable", "site", "temperature", "overcurrent".
        self.limits: dict[str, float] = {}
        self.pwm_raise_interval = PWM_RAISE_INTERVAL
        self._pwm_changed_at = float("-inf")
        self._raise_handle: asyncio.TimerHandle | None = None
        #: Wake-up of an EV asleep in B2: after ``wakeup_after`` s (0: never), a state F pulse, once per session.
        self.wakeup_after = wakeup_after
        self.wakeup_pulse = WAKEUP_PULSE
        self._wakeup_handle: asyncio.TimerHandle | None = None
        self._waking = False
        self._ev_requested = False
        self.lock = lock
        self.machine = Machine(
            model=self,
            states=[s.value for s in STATES],
            transitions=TRANSITIONS,
            initial=S.AVAILABLE.value,
            auto_transitions=False,
            after_state_change="_after_state_change",
        )

    # ----------------------------------------------------------------- inputs

    @property
    def status(self) -> ConnectorStatus:
        """The status OCPP reports for this connector."""
        return ConnectorStatus(self.state)

    def on_pilot(self, state: PilotState | None) -> None:
        """A debounced pilot state change (on the loop thread)."""
        if self._waking and state == PilotState.F:
            return  # our own wake-up pulse, not an unplug
        if state != self.pilot_state:
            log.info("connector %d: pilot %s", self.id, pilot_label(state, self.pilot.output_level))
        previous = self.pilot_state
        self.pilot_state = state
        if plugged_in(previous, state):
            self.plugged_at = self.clock.monotonic()
        elif state is not None and not state.plugged:
            self.plugged_at = None
        self._reconcile()

    def on_faults(self, faults: dict[Fault, str]) -> None:
        """The supervisor's fault set for this connector changed (on the loop thread)."""
        previous = self.faults
        self.faults = faults
        if faults and self.state == S.FAULTED.value and set(faults) != set(previous):
            self._after_state_change()  # still Faulted, but for another reason: report it
        self._reconcile()

    def refresh(self) -> None:
        """Something the supervisor waits for changed (diode seen, RCM tested, cable locked): look again."""
        self._reconcile()

    def set_limit(self, name: str, amps: float | None) -> None:
        """Set (or lift, with None) a named current limit; the PWM follows under the IEC rate rule."""
        if amps is None:
            if self.limits.pop(name, None) is None:
                return
        elif self.limits.get(name) == amps:
            return
        else:
            self.limits[name] = amps
        log.info("connector %d: %s limit %s; offer limit now %.1f A", self.id, name,
                 "lifted" if amps is None else f"{amps:.1f} A", self.offer_limit())
        self._reconcile()

    def offer_limit(self) -> float:
        """The current this connector may offer now: its maximum and every limit, the smallest."""
        return min([self.max_current, *self.limits.values()])

    def flag(self, warning: Fault, active: bool) -> None:
        """Report (or stop reporting) a condition with the status without stopping, e.g. a lost reader."""
        if active == (warning in self.warnings):
            return
        if active:
            self.warnings.append(warning)
        else:
            self.warnings.remove(warning)
        self._after_state_change()

    def on_meter(self, reading: MeterReading) -> None:
        """A new meter reading."""
        self.reading = reading
        if (self.session is not None and self.transaction is None) or self.energy_cap_wh is not None:
            self._reconcile()

    def deauthorize(self, stop: bool, max_energy_wh: int) -> None:
        """The CSMS invalidated the running transaction's idTag: stop it, or cap its energy."""
        tx = self.transaction
        if tx is None:
            return
        if stop:
            log.info("connector %d: idTag %s invalid at the CSMS; stopping", self.id, tx.id_tag)
            self.stop(StopReason.DE_AUTHORIZED)
            return
        self.energy_cap_wh = tx.meter_start_wh + max_energy_wh
        log.info("connector %d: idTag %s invalid at the CSMS; energy capped at %d Wh", self.id, tx.id_tag,
                 max_energy_wh)
        self._reconcile()

    def authorize(self, id_tag: str, source: str, parent_id_tag: str | None = None) -> bool:
        """Attach an accepted authorisation; False when this connector cannot take one now."""
        allowed = (S.AVAILABLE.value, S.PREPARING.value, S.RESERVED.value)
        if self.session is not None or self.state not in allowed:
            return False
        if self.pilot_state in (PilotState.E, PilotState.F):
            return False
        reservation_id = None
        if self.reservation is not None:
            if not self.reservation.admits(id_tag, parent_id_tag):
                log.info("connector %d: reserved for %s; %s refused", self.id, self.reservation.id_tag, id_tag)
                return False
            reservation_id = self.reservation.reservation_id
            self._drop_reservation()
        self.session = Session(id_tag, source, parent_id_tag, reservation_id)
        log.info("connector %d: %s authorised by %s", self.id, id_tag, source)
        if self.state in (S.AVAILABLE.value, S.RESERVED.value):
            self.present()
        if not (self.pilot_state and self.pilot_state.plugged):
            self._arm_connection_timeout()
        self._reconcile()
        return True

    def stop(self, reason: StopReason, id_tag: str | None = None) -> bool:
        """End the session (card, remote, unplug); False when there is none."""
        if self.session is None:
            return False
        if self.transaction is None:
            log.info("connector %d: authorisation for %s withdrawn before charging", self.id, self.session.id_tag)
            self._end_session()
            self.cancel()
            return True
        self._end_transaction(reason, id_tag)
        if self.pilot_state and self.pilot_state.plugged:
            self.finish()
        else:
            self.unplug()
        self._apply_scheduled_availability()
        return True

    def reserve_for(self, reservation: Reservation) -> str:
        """ReserveNow on this connector: Accepted, Occupied, Faulted or Unavailable."""
        if self.state == S.FAULTED.value:
            return "Faulted"
        if self.state == S.UNAVAILABLE.value:
            return "Unavailable"
        replacing = self.reservation is not None and self.reservation.reservation_id == reservation.reservation_id
        if self.state != S.AVAILABLE.value and not replacing:
            return "Occupied"
        self._drop_reservation()
        self.reservation = reservation
        delay = max(0.0, reservation.expires_at - self.clock.monotonic())
        self._reservation_timer = asyncio.get_running_loop().call_later(delay, self._reservation_expired)
        if self.state == S.AVAILABLE.value:
            self.reserve()
        log.info("connector %d: reserved for %s (reservation %d, %.0f s)", self.id, reservation.id_tag,
                 reservation.reservation_id, delay)
        return "Accepted"

    def cancel_reservation(self) -> None:
        """CancelReservation, or expiry: the connector is free again."""
        self._drop_reservation()
        if self.state == S.RESERVED.value:
            self.unreserve()
            self._reconcile()

    def _drop_reservation(self) -> None:
        if self._reservation_timer is not None:
            self._reservation_timer.cancel()
            self._reservation_timer = None
        self.reservation = None

    def _reservation_expired(self) -> None:
        self._reservation_timer = None
        if self.reservation is not None:
            log.info("connector %d: reservation %d expired", self.id, self.reservation.reservation_id)
            self.cancel_reservation()

    def set_operative(self, operative: bool) -> str:
        """ChangeAvailability for this connector: Accepted, or Scheduled while a transaction runs."""
        if operative:
            self.inoperative_pending = False
            if self.state == S.UNAVAILABLE.value:
                self.enable()
                self._reconcile()
            return "Accepted"
        if self.transaction is not None:
            self.inoperative_pending = True
            return "Scheduled"
        if self.session is not None:
            self._end_session()
        if self.state != S.UNAVAILABLE.value:
            self.disable()
        return "Accepted"

    def _apply_scheduled_availability(self) -> None:
        if self.inoperative_pending and self.transaction is None:
            self.inoperative_pending = False
            self.disable()

    # -------------------------------------------------------------- the logic

    def _reconcile(self) -> None:
        if self.state == S.UNAVAILABLE.value:
            return  # no sessions, no energy; the pilot stays at steady +12 V
        state = self.pilot_state
        if self.faults:
            if self.state != S.FAULTED.value:
                if self.transaction is not None:
                    meter_only = set(self.faults) == {Fault.METER_COMM_LOST}
                    self._end_transaction(StopReason.OTHER if meter_only else StopReason.EMERGENCY_STOP, None)
                else:
                    self._end_session()
                self._drop_reservation()
                self.fail()
            return
        if self.state == S.RESERVED.value:
            return  # waiting for the reserved card
        if self.state == S.FAULTED.value:
            if state is not None:
                self.recover()
            else:
                return
        plugged = state is not None and state.plugged
        if not plugged:
            if self.transaction is not None and not self.stop_on_ev_disconnect:
                # The transaction outlives the cable: no energy, no PWM, until it is plugged in again.
                self.supervisor.open(self.id)
                self.pilot.stop_offer()
                if self.state != S.SUSPENDED_EV.value:
                    self.suspend_ev()
            elif self.transaction is not None:
                self._end_transaction(StopReason.EV_DISCONNECTED, None)
                self.unplug()
                self._apply_scheduled_availability()
            elif self.state == S.FINISHING.value or (self.state == S.PREPARING.value and self.session is None):
                self.unplug()
            return
        if self.state == S.AVAILABLE.value:
            self.plug()
        if self.state == S.FINISHING.value or self.session is None:
            return
        if self.transaction is None and not self._start_transaction():
            return
        if self._energy_capped():
            return
        if not self._interlocks_ready():
            return
        if not self._update_offer():
            if self.state != S.SUSPENDED_EVSE.value:
                log.info("connector %d: less than %g A available; waiting", self.id, MIN_CURRENT_A)
                self.suspend_evse()
            return
        assert state is not None
        if state.requesting:
            self._ev_requested = True
            self._cancel_wakeup()
            if self.state != S.CHARGING.value:
                if self.supervisor.request_close(self.id):
                    self.charge()
                elif self.state != S.SUSPENDED_EVSE.value:
                    log.warning("connector %d: EV requests power but the supervisor refuses (%s)", self.id,
                                ", ".join(self.supervisor.blocked_by(self.id)))
                    self.suspend_evse()
        else:
            if self.state in (S.CHARGING.value, S.SUSPENDED_EVSE.value):
                self.supervisor.open(self.id)
                self.suspend_ev()
            self._arm_wakeup()

    def _interlocks_ready(self) -> bool:
        # Lock the cable and have the RCM tested before any PWM: the EV never asks for power into an
        # outlet that is not ready, so a refused close (SuspendedEVSE) means a real problem.
        if self.lock is not None:
            self.lock.want(True)
        return self.supervisor.interlock(self.id, "lock") and self.supervisor.interlock(self.id, "rcm")

    def _update_offer(self) -> bool:
        """Bring the PWM towards the offer limit; False when it is below 6 A and nothing is offered."""
        target = self.offer_limit()
        offered = self.pilot.offered_current
        now = self.clock.monotonic()
        if target < MIN_CURRENT_A:
            if offered is not None:
                self.pilot.stop_offer()
                self._pwm_changed_at = now
            return False
        if offered is None or target < offered:
            self._set_pwm(target, now)
        elif target > offered:
            wait = self._pwm_changed_at + self.pwm_raise_interval - now
            if wait <= 0:
                self._set_pwm(target, now)
            elif self._raise_handle is None:
                self._raise_handle = asyncio.get_running_loop().call_later(wait, self._raise_due)
        return True

    def _set_pwm(self, amps: float, now: float) -> None:
        self.pilot.offer_current(amps)
        self._pwm_changed_at = now
        log.info("connector %d: offering %.1f A", self.id, amps)

    def _raise_due(self) -> None:
        self._raise_handle = None
        self._reconcile()

    def _arm_wakeup(self) -> None:
        if (self.wakeup_after <= 0 or self._ev_requested or self._wakeup_handle is not None
                or self.transaction is None or self.pilot.offered_current is None):
            return
        self._wakeup_handle = asyncio.get_running_loop().call_later(self.wakeup_after, self._wake_up)

    def _cancel_wakeup(self) -> None:
        if self._wakeup_handle is not None:
            self._wakeup_handle.cancel()
            self._wakeup_handle = None

    def _wake_up(self) -> None:
        self._wakeup_handle = None
        if self.transaction is None or self._ev_requested or self.pilot_state != PilotState.B:
            return
        log.info("connector %d: EV asleep in B2 for %.0f s; wake-up pulse (state F, %.1f s)", self.id,
                 self.wakeup_after, self.wakeup_pulse)
        self._ev_requested = True  # once per session
        self._waking = True
        self.pilot.set_unavailable()
        asyncio.get_running_loop().call_later(self.wakeup_pulse, self._wake_up_done)

    def _wake_up_done(self) -> None:
        self._waking = False
        if self.transaction is None:
            return  # the session ended during the pulse, which already put the pilot back to steady +12 V
        self.pilot.stop_offer()  # back to a steady pilot; the next reconcile offers again
        self._reconcile()

    def _energy_capped(self) -> bool:
        if self.energy_cap_wh is None or self.reading is None or self.reading.energy_wh < self.energy_cap_wh:
            return False
        self.pilot.stop_offer()  # PWM first: the EV gets its IEC time to stop before the contactor opens
        self.supervisor.set_permit(self.id, False)
        if self.state != S.SUSPENDED_EVSE.value:
            log.info("connector %d: energy cap for an invalid idTag reached; no more energy", self.id)
            self.suspend_evse()
        return True

    def _start_transaction(self) -> bool:
        assert self.session is not None
        if self.reading is None:
            log.error(
                "connector %d: no meter reading yet, so no transaction for %s (charging waits for the meter)",
                self.id, self.session.id_tag,
            )
            return False
        self._cancel_connection_timeout()
        self.transaction = Transaction(
            connector_id=self.id,
            id_tag=self.session.id_tag,
            meter_start_wh=round(self.reading.energy_wh),
            started_at=self.clock.utcnow(),
            start_reading=self.reading,
            reservation_id=self.session.reservation_id,
        )
        self.supervisor.set_permit(self.id, True)
        log.info("connector %d: transaction %s started for %s at %d Wh", self.id,
                 self.transaction.local_id, self.session.id_tag, self.transaction.meter_start_wh)
        self._emit(TransactionStarted(self.transaction))
        return True

    def _end_transaction(self, reason: StopReason, id_tag: str | None) -> None:
        tx = self.transaction
        assert tx is not None
        # Energy first: ending the session withdraws the permit (opens the contactor), then the PWM.
        self.transaction = None
        self._end_session(unlock=self.unlock_on_ev_disconnect or reason != StopReason.EV_DISCONNECTED)
        tx.meter_stop_wh = round(self.reading.energy_wh) if self.reading else tx.meter_start_wh
        tx.stopped_at = self.clock.utcnow()
        tx.stop_reason = reason
        tx.stop_id_tag = id_tag
        tx.stop_reading = self.reading
        log.info("connector %d: transaction %s ended (%s) at %d Wh, %d Wh delivered", self.id, tx.local_id,
                 reason.value, tx.meter_stop_wh, tx.meter_stop_wh - tx.meter_start_wh)
        self._emit(TransactionEnded(tx))

    def _end_session(self, unlock: bool = True) -> None:
        self._cancel_connection_timeout()
        self._cancel_wakeup()
        if self._raise_handle is not None:
            self._raise_handle.cancel()
            self._raise_handle = None
        self.session = None
        self.energy_cap_wh = None
        self._ev_requested = False
        # PWM first, then the permit: an EV in C gets its IEC time (ev_stop_timeout) to go to B before the
        # supervisor opens under load; one that follows the PWM has the contactor opened as it leaves C.
        self.pilot.stop_offer()
        self.supervisor.set_permit(self.id, False)
        if self.lock is not None and unlock:
            self.lock.want(False)

    def _arm_connection_timeout(self) -> None:
        self._cancel_connection_timeout()
        self._timeout_handle = asyncio.get_running_loop().call_later(
            self.connection_timeout, self._connection_timed_out
        )

    def _cancel_connection_timeout(self) -> None:
        if self._timeout_handle is not None:
            self._timeout_handle.cancel()
            self._timeout_handle = None

    def _connection_timed_out(self) -> None:
        self._timeout_handle = None
        if self.session is not None and self.transaction is None:
            log.info("connector %d: no cable within %.0f s; authorisation for %s dropped",
                     self.id, self.connection_timeout, self.session.id_tag)
            self.stop(StopReason.OTHER)

    def _after_state_change(self) -> None:
        warning = self.warnings[0] if self.warnings else None
        fault = next(iter(self.faults), None) if self.state == S.FAULTED.value else warning
        if fault is None:
            log.info("connector %d: status %s", self.id, self.state)
            self._emit(StatusChanged(self.id, self.status))
            return
        detail = self.faults.get(fault, fault.info.description)
        log.info("connector %d: status %s (%s: %s)", self.id, self.state, fault.info.vendor_code, detail)
        self._emit(StatusChanged(self.id, self.status, fault.info.ocpp16_code, detail[:50], fault.info.vendor_code))
