"""The IEC 61851 control pilot role: PWM out, pilot voltage in, states A-F.

Facts (``shared/reference/hardware.md`` section 1):
- duty = I / 0.6 % for 6-51 A, duty = I / 2.5 + 64 % for 51-80 A;
- the EV reads I = 0.6 * D for 10-85 % and I = (D - 64) * 2.5 for 85-96 %;
- the high level of the pilot is +12/+9/+6/+3/0 V in A/B/C/D/E, and the EVSE
  drives -12 V steady in F; each within +/-1 V after stabilisation;
- while the PWM runs, the low half must read -12 V: the EV's diode blocks it.
  A missing or shorted diode lets the EV's resistors pull the low half up
  towards minus the high level (Yeti: "high + low ~ 0 gives a diode fault").
- x1 is a steady pilot (no oscillator), x2 a running 1 kHz PWM: B1/B2, C1/C2.
"""

from __future__ import annotations

import enum
import logging
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable

log = logging.getLogger(__name__)

MIN_CURRENT_A = 6.0
MAX_CURRENT_A = 80.0
# EVerest clamps 51-52.5 A to 51 A; the two formulas do not meet there, so we
# use the low-range formula right up to 51 A and the high range above it.
_LOW_RANGE_MAX_A = 51.0


class PilotState(enum.Enum):
    """IEC 61851-1 pilot states as seen from the EVSE."""

    A = "A"  # no EV
    B = "B"  # EV connected, not requesting
    C = "C"  # EV requests charge
    D = "D"  # EV requests charge with ventilation
    E = "E"  # CP shorted to PE or EVSE without supply
    F = "F"  # EVSE not available (driven by the EVSE itself)

    @property
    def plugged(self) -> bool:
        """True when a vehicle is connected (B, C or D)."""
        return self in (PilotState.B, PilotState.C, PilotState.D)

    @property
    def requesting(self) -> bool:
        """True when the EV asks for power (C or D)."""
        return self in (PilotState.C, PilotState.D)


def plugged_in(previous: PilotState | None, state: PilotState | None) -> bool:
    """True when ``previous`` -> ``state`` is a vehicle arriving (from A, F, E or no reading to B, C or D)."""
    return state is not None and state.plugged and not (previous is not None and previous.plugged)


def duty_for_current(amps: float) -> float:
    """PWM duty in percent that offers ``amps`` to the EV (IEC 61851-1 Annex A)."""
    if not MIN_CURRENT_A <= amps <= MAX_CURRENT_A:
        raise ValueError(f"pilot current must be {MIN_CURRENT_A:g}-{MAX_CURRENT_A:g} A, got {amps:g} A")
    if amps <= _LOW_RANGE_MAX_A:
        return amps / 0.6
    return amps / 2.5 + 64.0


def current_for_duty(duty: float) -> float | None:
    """The current an EV reads from ``duty`` percent; None when the duty offers no charging.

    3-7 % (digital communication) and 7-8 % (error) offer nothing to a basic EV;
    8-10 % means 6 A; above 97 % nothing is allowed.
    """
    if duty < 8.0 or duty > 97.0:
        return None
    if duty < 10.0:
        return 6.0
    if duty <= 85.0:
        return 0.6 * duty
    if duty <= 96.0:
        return (duty - 64.0) * 2.5
    return 80.0


# Nominal high level per state; a reading within +/-1 V of it classifies.
_NOMINAL_V = {
    PilotState.A: 12.0,
    PilotState.B: 9.0,
    PilotState.C: 6.0,
    PilotState.D: 3.0,
    PilotState.E: 0.0,
    PilotState.F: -12.0,
}
BAND_V = 1.0


def classify_pilot_voltage(volts: float) -> PilotState | None:
    """Map the pilot's high level to a state; None when it lies between bands."""
    for state, nominal in _NOMINAL_V.items():
        if abs(volts - nominal) <= BAND_V:
            return state
    return None


def nominal_voltage(state: PilotState) -> float:
    """The nominal high level of ``state`` in volts."""
    return _NOMINAL_V[state]


LOW_NOMINAL_V = -12.0


def diode_ok(low_volts: float) -> bool:
    """True when the PWM's low half reads -12 V +/- 1 V, i.e. the EV's diode blocks it."""
    return abs(low_volts - LOW_NOMINAL_V) <= BAND_V


def pwm_running(output_level: float) -> bool:
    """True while the oscillator runs (neither steady +12 V nor steady -12 V)."""
    return 0.0 < output_level < 1.0


def pilot_label(state: PilotState | None, output_level: float) -> str:
    """IEC name of what the pilot shows: ``B1`` (steady, no offer), ``C2`` (PWM running), ``A``, ``F``..."""
    if state is None:
        return "invalid"
    if state in (PilotState.B, PilotState.C, PilotState.D):
        return f"{state.value}{2 if pwm_running(output_level) else 1}"
    return state.value


class ControlPilot(ABC):
    """Drives the pilot PWM and reads the pilot's high level.

    Drivers implement :meth:`_write_duty` and :meth:`read_voltage`; the
    IEC rules (which duty for which current, steady levels) live here.
    """

    #: True when the driver can read the PWM's low half (the diode check); see :meth:`read_low_voltage`.
    measures_low = False

    def __init__(self) -> None:
        self._offered: float | None = None
        self._level = 0.0  # drivers start in state F
        self._epoch = 0

    @property
    def pwm_epoch(self) -> int:
        """Counts PWM starts: a diode check counts only for the PWM run it was made in."""
        return self._epoch

    @property
    def output_level(self) -> float:
        """What the oscillator was last set to: 1.0 steady +12 V, 0.0 steady -12 V (F), else the PWM duty."""
        return self._level

    @property
    def offered_current(self) -> float | None:
        """The current offered on the PWM right now, or None when no PWM runs."""
        return self._offered

    def offer_current(self, amps: float) -> None:
        """Start or change the 1 kHz PWM so that it offers ``amps``."""
        duty = duty_for_current(amps)
        if self._offered is None:
            self._epoch += 1
        self._write_duty(duty / 100.0)
        self._level = duty / 100.0
        self._offered = amps

    def stop_offer(self) -> None:
        """Steady +12 V: the EVSE is ready but offers no current (state x1)."""
        self._write_duty(1.0)
        self._level = 1.0
        self._offered = None

    def write_duty(self, fraction: float) -> None:
        """Any duty (0.0-1.0), for bring-up (``evse probe pilot --duty``); charging uses :meth:`offer_current`."""
        if not 0.0 <= fraction <= 1.0:
            raise ValueError(f"duty must be 0.0-1.0, got {fraction}")
        self._write_duty(fraction)
        self._level = fraction
        self._offered = None

    def set_unavailable(self) -> None:
        """Steady -12 V: state F, the EVSE is not available (also the safe output)."""
        self._write_duty(0.0)
        self._level = 0.0
        self._offered = None

    @abstractmethod
    def _write_duty(self, fraction: float) -> None:
        """Set the oscillator: 1.0 steady high, 0.0 steady low, else PWM at that duty."""

    @abstractmethod
    def read_voltage(self) -> float:
        """Read the pilot's high level in volts (blocking; called from the monitor thread)."""

    def read_low_voltage(self) -> float:
        """Read the PWM's low half in volts (drivers with ``measures_low``; monitor thread)."""
        raise NotImplementedError(f"{type(self).__name__} does not read the pilot's low half")

    def close(self) -> None:
        """Release the hardware; the driver leaves its output in the safe state."""


PilotCallback = Callable[[PilotState | None, float], None]
#: Told (diode ok, PWM epoch the check belongs to, monotonic time) when the confirmed result changes.
DiodeCallback = Callable[[bool, int, float], None]


class PilotMonitor:
    """Polls a pilot's voltage in its own thread, debounces and reports state changes.

    The callback runs *in the monitor thread* with (state, monotonic time of the
    sample that confirmed it), so the safety supervisor can open a contactor
    without waiting for the asyncio loop. A state must be read on
    ``debounce_samples`` consecutive polls to count; a reading between bands
    never counts as a state (it is a transition edge or noise). A pilot that
    reads in no band, or cannot be read at all, for ``invalid_samples``
    consecutive polls is reported as ``None``: a dead or stuck ADC must not
    leave the last good state standing.

    With a pilot that ``measures_low`` and a ``diode_callback``, every poll
    taken while the PWM runs and a vehicle is connected also reads the low
    half; a result confirmed on ``debounce_samples`` polls is reported
    *before* the state change of the same poll, so the supervisor knows the
    diode is there by the time the EV's request for power reaches it.

    It polls at three rates. Every ``poll_interval`` while anything is
    unsettled: a new reading waiting for its debounce, an invalid streak, a
    diode result not yet confirmed for this PWM run. Every ``steady_interval``
    once everything is confirmed (a change is then seen within one steady
    period and confirmed at the fast rate). Every ``idle_interval`` in A or F
    with no PWM running, when nothing can be energised. Waking a thread costs
    more CPU than a sample, so the period is what the monitor's CPU follows.
    """

    def __init__(
        self,
        pilot: ControlPilot,
        callback: PilotCallback,
        *,
        poll_interval: float = 0.002,
        debounce_samples: int = 2,
        name: str = "pilot",
        clock: Callable[[], float] = time.monotonic,
        diode_callback: DiodeCallback | None = None,
        invalid_samples: int = 10,
        steady_interval: float | None = None,
        idle_interval: float | None = None,
    ) -> None:
        self._pilot = pilot
        self._callback = callback
        self._diode_callback = diode_callback if pilot.measures_low else None
        self._interval = poll_interval
        self._steady_interval = max(poll_interval, steady_interval or poll_interval)
        #: The poll period while nothing can be energised: the pilot in A or F with no PWM running (a vehicle
        #: arriving is seen within two of them; everything after it at ``poll_interval``).
        self._idle_interval = max(self._steady_interval, idle_interval or poll_interval)
        self._debounce = max(1, debounce_samples)
        self._invalid = max(self._debounce, invalid_samples)
        self._clock = clock
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"{name}-monitor", daemon=True)
        self.state: PilotState | None = None
        self.read_errors = 0
        #: The last confirmed diode check: (ok, PWM epoch), or None before the first.
        self.diode: tuple[bool, int] | None = None
        self._diode_candidate: tuple[bool, int] | None = None
        self._diode_count = 0

    def start(self) -> None:
        """Start polling."""
        self._thread.start()

    def stop(self) -> None:
        """Stop polling and wait for the thread to end."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2.0)

    def _run(self) -> None:
        candidate: PilotState | None = None
        count = invalid = 0
        failing = reported_invalid = False
        while not self._stop.is_set():
            try:
                level, epoch = self._pilot.output_level, self._pilot.pwm_epoch
                sample = classify_pilot_voltage(self._pilot.read_voltage())
                if self._diode_callback is not None and sample is not None and sample.plugged \
                        and pwm_running(level):
                    self._check_diode(diode_ok(self._pilot.read_low_voltage()), epoch)
                else:
                    self._diode_candidate, self._diode_count = None, 0  # no check now: none half-confirmed
                if failing:
                    log.info("pilot ADC reads again after %d failed reads", self.read_errors)
                    failing = False
            except Exception:
                self.read_errors += 1
                if not failing:
                    log.exception("pilot ADC read failed; retrying every %.3f s", self._interval)
                    failing = True
                sample = None
            invalid = invalid + 1 if sample is None else 0
            if invalid >= self._invalid and not reported_invalid:
                reported_invalid = True
                self.state, candidate, count = None, None, 0
                self._report(None)
            if sample is not None and sample != self.state:
                if sample == candidate:
                    count += 1
                else:
                    candidate, count = sample, 1
                if count >= self._debounce:
                    self.state = sample
                    candidate, count, reported_invalid = None, 0, False
                    self._report(sample)
            elif sample == self.state:
                candidate, count = None, 0
            self._stop.wait(self._next_interval(candidate is not None or invalid > 0, level, epoch))

    def _next_interval(self, unsettled: bool, level: float, epoch: int) -> float:
        if unsettled or self._diode_candidate is not None:
            return self._interval
        pwm = pwm_running(level)
        if self.state in (PilotState.A, PilotState.F) and not pwm:
            return self._idle_interval
        if self._diode_callback is not None and pwm and self.state is not None and self.state.plugged \
                and (self.diode is None or self.diode[1] != epoch):
            return self._interval  # this PWM run's diode check is still to come
        return self._steady_interval

    def _report(self, state: PilotState | None) -> None:
        try:
            self._callback(state, self._clock())
        except Exception:
            log.exception("pilot state handler failed for state %s", state.value if state else "invalid")

    def _check_diode(self, ok: bool, epoch: int) -> None:
        result = (ok, epoch)
        if result == self.diode:
            self._diode_candidate, self._diode_count = None, 0
            return
        if result == self._diode_candidate:
            self._diode_count += 1
        else:
            self._diode_candidate, self._diode_count = result, 1
        if self._diode_count >= self._debounce:
            self.diode = result
            self._diode_candidate, self._diode_count = None, 0
            assert self._diode_callback is not None
            try:
                self._diode_callback(ok, epoch, self._clock())
            except Exception:
                log.exception("diode check handler failed")
