"""One EVSE's session logic: a ``transitions`` machine whose states are the statuses an operator sees.

Inputs are facts: the vehicle's status from the charging protocol, the supervisor's fault set, the latest meter
reading, and session commands (authorise, stop, reserve, availability). After each input :meth:`Evse._reconcile`
fires whichever trigger the facts call for; the machine refuses any trigger not allowed from the current state
(``MachineError``), which keeps impossible sequences out.

Flow: vehicle connected -> Preparing; authorised (card or remote) -> transaction starts and the permit is
granted; the protocol prepares the outlet (cable lock, safety devices) and offers the limit; the vehicle asks
for energy -> the supervisor closes the contactor -> Charging; the vehicle pauses -> SuspendedEV (contactor
open); less than the protocol can offer -> SuspendedEVSE; stop -> the offer is withdrawn, then the permit ->
Finishing until the vehicle leaves -> Available. The vehicle leaving ends the transaction (EVDisconnected),
unless the policy keeps it open.

The EVSE knows no pilot and no CAN frame: it talks to a :class:`~controller.evse.port.ChargingProtocol`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from transitions import Machine

from controller.clock import Clock
from controller.domain.events import (
    AuthorizationWithdrawn,
    Authorized,
    ChargingStateChanged,
    Deauthorized,
    Event,
    LimitChanged,
    StatusChanged,
    Transaction,
    TransactionEnded,
    TransactionStarted,
    VehicleConnected,
    VehicleDeparted,
    VehicleDetected,
)
from controller.domain.faults import Fault
from controller.domain.types import (
    Answer,
    AuthDecision,
    AuthStatus,
    ChargingState,
    EvseStatus,
    IdToken,
    PowerLimit,
    StopReason,
    TriggerReason,
)
from controller.evse.bookings import Bookings
from controller.evse.limits import LimitStack
from controller.evse.policy import TransactionPolicy
from controller.evse.port import ChargingProtocol, VehicleStatus
from controller.evse.reservation import ReservationSlot
from controller.evse.session import Session, describe
from controller.evse.transitions import STATES, TRANSITIONS
from controller.safety.supervisor import SafetySupervisor
from hal.meter import MeterReading

log = logging.getLogger(__name__)

S = EvseStatus
_CHARGING_STATE = {S.CHARGING: ChargingState.CHARGING, S.SUSPENDED_EV: ChargingState.SUSPENDED_EV,
                   S.SUSPENDED_EVSE: ChargingState.SUSPENDED_EVSE}


class Evse(Bookings):
    """An EVSE's state machine, its session and its limits."""

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

    def __init__(self, evse_id: int, *, maximum: PowerLimit, phases: int, protocol: ChargingProtocol,
                 supervisor: SafetySupervisor, emit: Callable[[Event], None], clock: Clock | None = None,
                 policy: TransactionPolicy | None = None) -> None:
        self.id = evse_id
        self.phases = phases
        self.protocol = protocol
        self.supervisor = supervisor
        self.clock = clock or Clock()
        self.policy = policy or TransactionPolicy()
        self.limits = LimitStack(maximum)
        self._emit = emit
        self.vehicle = VehicleStatus.UNKNOWN
        self.reading: MeterReading | None = None
        self.session: Session | None = None
        self.transaction: Transaction | None = None
        #: The id the next transaction here takes, when a protocol opened it before charging could start (2.0.1
        #: TxStartPoint EVConnected or Authorized); None: a new one.
        self.next_transaction_id: str | None = None
        self.reservations = ReservationSlot(evse_id, self.clock, self._reservation_expired)
        #: ChangeAvailability Inoperative received while a transaction runs: applied when it ends.
        self.inoperative_pending = False
        #: Reset OnIdle of this EVSE received while a transaction runs: done when it ends.
        self.reset_pending = False
        #: Energy register (Wh) at which delivery stops for an identifier the CSMS invalidated (None: no cap).
        self.energy_cap_wh: float | None = None
        #: Monotonic time the vehicle was connected (to route a shared card reader).
        self.plugged_at: float | None = None
        self._timeout_handle: asyncio.TimerHandle | None = None
        #: Active faults (from the supervisor), and conditions reported with the status without stopping.
        self.faults: dict[Fault, str] = {}
        self.warnings: list[Fault] = []
        self.machine = Machine(model=self, states=[s.value for s in STATES], transitions=TRANSITIONS,
                               initial=S.AVAILABLE.value, auto_transitions=False,
                               after_state_change="_after_state_change")
        protocol.attach(self)

    # ----------------------------------------------------------------- inputs

    @property
    def status(self) -> EvseStatus:
        """The status this EVSE reports."""
        return EvseStatus(self.state)

    def on_vehicle(self, status: VehicleStatus) -> None:
        """The charging protocol's view of the vehicle changed (loop thread)."""
        previous, self.vehicle = self.vehicle, status
        if status.plugged and not previous.plugged:
            self.plugged_at = self.clock.monotonic()
            self._emit(VehicleConnected(self.id))
            self._emit(VehicleDetected(self.id))
        elif previous.plugged and not status.plugged:
            self.plugged_at = None
            self._emit(VehicleDeparted(self.id))
        self._reconcile()

    def on_faults(self, faults: dict[Fault, str]) -> None:
        """The supervisor's fault set for this EVSE changed (loop thread)."""
        previous = self.faults
        self.faults = faults
        if faults and self.state == S.FAULTED.value and set(faults) != set(previous):
            self._after_state_change()  # still Faulted, but for another reason: report it
        self._reconcile()

    def refresh(self) -> None:
        """Something the protocol or the supervisor waited for changed: look again."""
        self._reconcile()

    def set_limit(self, name: str, limit: PowerLimit | None) -> None:
        """Set (or lift, with None) a named limit; the protocol follows under its own rules."""
        if not self.limits.set(name, limit):
            return
        effective = self.limits.effective()
        log.info("connector %d: %s limit %s; offer limit now %s", self.id, name,
                 "lifted" if limit is None else describe(limit), describe(effective))
        self._emit(LimitChanged(self.id, effective))
        self._reconcile()

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

    # --------------------------------------------------------------- commands

    def authorize(self, id_token: IdToken, trigger: TriggerReason, decision: AuthDecision | None = None, *,
                  remote_start_id: int | None = None, at: float | None = None) -> bool:
        """Attach an accepted authorisation (``at``: when the card was tapped, monotonic; now by default); False
        when this EVSE cannot take one now."""
        allowed = (S.AVAILABLE.value, S.PREPARING.value, S.RESERVED.value)
        if self.session is not None or self.state not in allowed or self.vehicle == VehicleStatus.ERROR:
            return False
        group = decision.group if decision is not None else None
        reservation_id = None
        if self.reservation is not None:
            if not self.reservation.admits(id_token, group):
                log.info("connector %d: reserved for %s; %s refused", self.id, self.reservation.id_token.value,
                         id_token.value)
                return False
            reservation_id = self.reservation.reservation_id
            self.reservations.drop()
        self.session = Session(id_token, trigger, decision, reservation_id, remote_start_id,
                               self.clock.monotonic() if at is None else at)
        log.info("connector %d: %s authorised (%s)", self.id, id_token.value, trigger.value)
        self._emit(Authorized(self.id, id_token, decision or AuthDecision(AuthStatus.ACCEPTED)))
        if self.state in (S.AVAILABLE.value, S.RESERVED.value):
            self.present()
        if not self.vehicle.plugged:
            self._arm_connection_timeout()
        self._reconcile()
        return True

    def stop(self, reason: StopReason, id_token: IdToken | None = None,
             trigger: TriggerReason = TriggerReason.STOP_AUTHORIZED) -> bool:
        """End the session (card, remote, reset, unplug); False when there is none."""
        if self.session is None:
            return False
        if self.transaction is None:
            log.info("connector %d: authorisation for %s withdrawn before charging", self.id,
                     self.session.id_token.value)
            self._withdraw_session(reason, trigger)
            self.cancel()
            return True
        self._end_transaction(reason, id_token, trigger)
        if self.vehicle.plugged:
            self.finish()
        else:
            self.unplug()
        self._apply_scheduled_availability()
        return True

    def deauthorize(self, stop: bool, max_energy_wh: int) -> None:
        """The CSMS invalidated the running transaction's identifier: stop it, or cap its energy."""
        tx = self.transaction
        if tx is None:
            if self.session is not None and stop:  # the CSMS refused the card before charging began
                log.info("connector %d: %s invalid at the CSMS; authorisation withdrawn", self.id,
                         self.session.id_token.value)
                self.stop(StopReason.DE_AUTHORIZED, trigger=TriggerReason.DEAUTHORIZED)
            return
        self._emit(Deauthorized(self.id, tx.id_token))
        if stop:
            log.info("connector %d: %s invalid at the CSMS; stopping", self.id, tx.id_token.value)
            self.stop(StopReason.DE_AUTHORIZED, trigger=TriggerReason.DEAUTHORIZED)
            return
        self.energy_cap_wh = tx.meter_start_wh + max_energy_wh
        log.info("connector %d: %s invalid at the CSMS; energy capped at %d Wh", self.id, tx.id_token.value,
                 max_energy_wh)
        self._reconcile()

    async def unlock(self) -> Answer:
        """UnlockConnector: ends the transaction (UnlockCommand), then frees the cable.

        Without a cable lock there is nothing to free: NOT_SUPPORTED, and the session goes on (UnlockConnector
        is not a way to stop a transaction, OCPP 1.6 §5.18; EVerest's default, StopTransactionIfUnlockNotSupported
        = false, does the same).
        """
        if not self.protocol.has_lock:
            return Answer.NOT_SUPPORTED
        if self.transaction is not None:
            self.stop(StopReason.UNLOCK_COMMAND, trigger=TriggerReason.UNLOCK_COMMAND)
        return await self.protocol.unlock()

    def close(self) -> None:
        """The station shuts down: stop this EVSE's timers (a reservation stays kept for the next start)."""
        self.reservations.close()
        self._cancel_connection_timeout()

    # -------------------------------------------------------------- the logic

    def _reconcile(self) -> None:
        if self.state == S.UNAVAILABLE.value:
            return  # no sessions, no energy
        vehicle = self.vehicle
        if self.faults:
            if self.state != S.FAULTED.value:
                if self.transaction is not None:
                    self._end_transaction(self._fault_reason(), None, TriggerReason.ABNORMAL_CONDITION)
                elif self.session is not None:
                    self._withdraw_session(self._fault_reason(), TriggerReason.ABNORMAL_CONDITION)
                else:
                    self._end_session()
                self._remove_reservation()
                self.fail()
                self._apply_scheduled_availability()  # a reset or Inoperative waiting for the transaction's end
            return
        if self.state == S.RESERVED.value:
            return  # waiting for the reserved card
        if self.state == S.FAULTED.value:
            if vehicle == VehicleStatus.UNKNOWN:
                return
            self.recover()
        if not vehicle.plugged:
            self._vehicle_gone()
            return
        if self.state == S.AVAILABLE.value:
            self.plug()
        if self.state == S.FINISHING.value or self.session is None:
            return
        if self.transaction is None and not self._start_transaction():
            return
        if self._energy_capped() or not self.protocol.prepare():
            return
        if not self.protocol.offer(self.limits.effective()):
            if self.state != S.SUSPENDED_EVSE.value:
                log.info("connector %d: less available than can be offered; waiting", self.id)
                self.suspend_evse()
            return
        if vehicle == VehicleStatus.REQUESTING:
            if self.state != S.CHARGING.value:
                if self.supervisor.request_close(self.id):
                    self.charge()
                elif self.state != S.SUSPENDED_EVSE.value:
                    log.warning("connector %d: the EV asks for energy but the supervisor refuses (%s)", self.id,
                                ", ".join(self.supervisor.blocked_by(self.id)))
                    self.suspend_evse()
        elif self.state in (S.CHARGING.value, S.SUSPENDED_EVSE.value):
            self.supervisor.open(self.id)
            self.suspend_ev()

    def _vehicle_gone(self) -> None:
        if self.transaction is not None and not self.policy.stop_on_ev_disconnect:
            # The transaction outlives the cable: no energy, nothing offered, until it is plugged in again.
            self.supervisor.open(self.id)
            self.protocol.withdraw()
            if self.state != S.SUSPENDED_EV.value:
                self.suspend_ev()
        elif self.transaction is not None:
            self._end_transaction(StopReason.EV_DISCONNECTED, None, TriggerReason.EV_DEPARTED)
            self.unplug()
            self._apply_scheduled_availability()
        elif self.state == S.FINISHING.value or (self.state == S.PREPARING.value and self.session is None):
            self.unplug()

    def _fault_reason(self) -> StopReason:
        reasons = [f.info.stop_reason for f in self.faults]
        return next((r for r in reasons if r != StopReason.OTHER), StopReason.OTHER)

    def _energy_capped(self) -> bool:
        if self.energy_cap_wh is None or self.reading is None or self.reading.energy_wh < self.energy_cap_wh:
            return False
        self.protocol.withdraw()  # the offer first: the EV gets its time to stop before the contactor opens
        self.supervisor.set_permit(self.id, False)
        if self.state != S.SUSPENDED_EVSE.value:
            log.info("connector %d: energy cap for an invalid identifier reached; no more energy", self.id)
            self.suspend_evse()
        return True

    def _start_transaction(self) -> bool:
        session = self.session
        assert session is not None
        if self.reading is None:
            log.error("connector %d: no meter reading yet, so no transaction for %s (charging waits for the meter)",
                      self.id, session.id_token.value)
            return False
        self._cancel_connection_timeout()
        opened, self.next_transaction_id = self.next_transaction_id, None
        self.transaction = Transaction(
            evse_id=self.id, id_token=session.id_token, meter_start_wh=round(self.reading.energy_wh),
            started_at=self.clock.utcnow(), trigger=session.trigger, reservation_id=session.reservation_id,
            remote_start_id=session.remote_start_id, start_reading=self.reading,
        )
        if opened is not None:
            self.transaction.local_id = opened
        self.supervisor.set_permit(self.id, True)
        log.info("connector %d: transaction %s started for %s at %d Wh", self.id, self.transaction.local_id,
                 session.id_token.value, self.transaction.meter_start_wh)
        self._emit(TransactionStarted(self.transaction))
        return True

    def _end_transaction(self, reason: StopReason, id_token: IdToken | None, trigger: TriggerReason) -> None:
        tx = self.transaction
        assert tx is not None
        self.transaction = None
        self._end_session(unlock=self.policy.unlock_on_ev_disconnect or reason != StopReason.EV_DISCONNECTED)
        tx.meter_stop_wh = round(self.reading.energy_wh) if self.reading else tx.meter_start_wh
        tx.stopped_at = self.clock.utcnow()
        tx.stop_reason = reason
        tx.stop_trigger = trigger
        tx.stop_id_token = id_token
        tx.stop_reading = self.reading
        log.info("connector %d: transaction %s ended (%s) at %d Wh, %d Wh delivered", self.id, tx.local_id,
                 reason.value, tx.meter_stop_wh, tx.meter_stop_wh - tx.meter_start_wh)
        self._emit(TransactionEnded(tx))

    def _withdraw_session(self, reason: StopReason, trigger: TriggerReason) -> None:
        session = self.session
        assert session is not None
        self._end_session()
        self._emit(AuthorizationWithdrawn(self.id, session.id_token, reason, trigger))

    def _end_session(self, unlock: bool = True) -> None:
        self._cancel_connection_timeout()
        self.session = None
        self.energy_cap_wh = None
        # The offer first, then the permit: a vehicle still drawing gets the protocol's time to stop before the
        # supervisor opens under load; one that stops has the contactor opened as it does.
        self.protocol.withdraw()
        self.supervisor.set_permit(self.id, False)
        self.protocol.release(unlock)

    def _arm_connection_timeout(self) -> None:
        self._cancel_connection_timeout()
        self._timeout_handle = asyncio.get_running_loop().call_later(self.policy.connection_timeout,
                                                                     self._connection_timed_out)

    def _cancel_connection_timeout(self) -> None:
        if self._timeout_handle is not None:
            self._timeout_handle.cancel()
            self._timeout_handle = None

    def _connection_timed_out(self) -> None:
        self._timeout_handle = None
        if self.session is not None and self.transaction is None:
            log.info("connector %d: no cable within %.0f s; authorisation for %s dropped", self.id,
                     self.policy.connection_timeout, self.session.id_token.value)
            self.stop(StopReason.TIMEOUT, trigger=TriggerReason.EV_CONNECT_TIMEOUT)

    def _after_state_change(self) -> None:
        status = self.status
        if status in _CHARGING_STATE and self.transaction is not None:
            self._emit(ChargingStateChanged(self.id, _CHARGING_STATE[status]))
        fault = next(iter(self.faults), None) if status == S.FAULTED else None
        fault = fault or (self.warnings[0] if self.warnings else None)
        if fault is None:
            log.info("connector %d: status %s", self.id, status.value)
            self._emit(StatusChanged(self.id, status))
            return
        detail = self.faults.get(fault, fault.info.description)
        log.info("connector %d: status %s (%s: %s)", self.id, status.value, fault.info.code, detail)
        self._emit(StatusChanged(self.id, status, fault, detail))
