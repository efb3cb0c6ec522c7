"""An AC EV at the far end of the pilot wire, and the contactor it charges through.

The EV sets the pilot voltage the controller's ADC reads (through the same
front-end mapping the controller is configured with), follows the PWM it sees
and draws min(requested, offered) current while the contactor is closed.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from hal.pilot import PilotState, current_for_duty, nominal_voltage
from hil.gpio import MockMcp3008, WatchedPin, WatchedPWMPin
from hil.timeline import Timeline


class ContactorSim:
    """A contactor coil pin whose mirror contact (if wired) follows the coil after ``delay`` s."""

    def __init__(
        self,
        connector_id: int,
        coil: WatchedPin,
        timeline: Timeline,
        mirror: WatchedPin | None = None,
        mirror_type: str = "nc",
        delay: float = 0.02,
    ) -> None:
        self.connector_id = connector_id
        self.closed = bool(coil.state)
        self._timeline = timeline
        self._mirror = mirror
        self._mirror_nc = mirror_type == "nc"
        self._delay = delay
        #: Injected faults: the main contacts welded shut, or stuck open whatever the coil does.
        self.welded = False
        self.stuck_open = False
        self.listeners: list[Callable[[bool], None]] = []
        coil.observers.append(self._on_coil)
        self._set_mirror(self.closed)

    def _on_coil(self, t: float, value: float) -> None:
        self.closed = bool(value)
        self._timeline.record("contactor", self.connector_id, "closed" if self.closed else "open", t)
        for listener in self.listeners:
            listener(self.closed)
        if self._mirror is not None:
            # The contacts settle into wherever the coil is *then* (quick on/off pairs must not reorder).
            threading.Timer(self._delay, lambda: self._set_mirror(self.closed)).start()

    def inject(self, *, welded: bool | None = None, stuck_open: bool | None = None) -> None:
        """Weld the contacts or stick them open (None leaves that fault as it is); the mirror follows."""
        if welded is not None:
            self.welded = welded
        if stuck_open is not None:
            self.stuck_open = stuck_open
        self._set_mirror(self.closed)

    def settle(self) -> None:
        """Drive the mirror contact again (opening the input device applied its pull-up over it)."""
        self._set_mirror(self.closed)

    def _set_mirror(self, closed: bool) -> None:
        if self._mirror is None:
            return
        closed = True if self.welded else False if self.stuck_open else closed
        # The input has a pull-up; the contact pulls it low (active) when made.
        made = not closed if self._mirror_nc else closed
        self._mirror.drive(made, active_high=False)


class AcEvSimulator:
    """A car: plugged or not, S2 open (B) or closed (C/D), and how much current it wants.

    Mode ``auto`` is a car that wants to charge: it closes S2 when it sees a PWM
    and opens it when the PWM goes. ``B``, ``C`` and ``D`` hold S2 as told,
    whatever the PWM does (``C`` is a car that ignores a stop); ``E`` shorts CP
    to PE (a damaged cable or inlet); ``sleep`` stays in B until a state F pulse
    wakes it, then behaves as ``auto``.

    Misbehaviour: ``lag`` seconds before it follows a lower offer or a stop (a
    slow car), ``overdraw`` amps above what it was offered (whatever it asked
    for), and a missing
    ``diode`` (the PWM's low half then mirrors the high level). With a low-half
    channel and a PP channel wired, it drives those ADC inputs too.
    """

    def __init__(
        self,
        connector_id: int,
        *,
        pwm: WatchedPWMPin,
        contactor: ContactorSim,
        adc: MockMcp3008,
        adc_channel: int,
        volts_at_zero: float,
        volts_at_full: float,
        phases: int,
        timeline: Timeline,
        on_current: Callable[[float], None],
        adc_low_channel: int | None = None,
        pp_channel: int | None = None,
        pp_pullup_ohms: float = 1000.0,
    ) -> None:
        self.connector_id = connector_id
        self.phases = phases
        self.plugged = False
        self.mode = "auto"
        self.requested_amps = 32.0
        self.drawn_amps = 0.0
        self.pilot_state = PilotState.A
        self._pwm = pwm
        self._contactor = contactor
        self._adc = adc
        self._channel = adc_channel
        self._v0 = volts_at_zero
        self._span = volts_at_full - volts_at_zero
        self._timeline = timeline
        self._on_current = on_current
        self._lock = threading.RLock()
        self._low_channel = adc_low_channel
        self._pp_channel = pp_channel
        self._pp_pullup = pp_pullup_ohms
        #: The cable's PP-PE resistor (220 ohm: a 32 A cable).
        self.cable_ohms = 220.0
        self.diode = True
        self.lag = 0.0
        self.overdraw = 0.0
        self.duty = float(pwm.state)
        #: The duty the car has acted on (lags ``duty`` downwards by ``lag`` s).
        self.seen_duty = self.duty
        self._lag_timer: threading.Timer | None = None
        pwm.observers.append(self._on_pwm)
        contactor.listeners.append(lambda _closed: self._update())
        self._update()

    # ------------------------------------------------------------ the driver

    def plug(self) -> None:
        """Connect the cable; the car wants to charge (mode auto)."""
        with self._lock:
            self.plugged, self.mode = True, "auto"
            self._update()

    def unplug(self) -> None:
        """Pull the cable."""
        with self._lock:
            self.plugged = False
            self._update()

    def set_mode(self, mode: str) -> None:
        """Hold S2 as B, C or D, short CP to PE (E), follow the PWM (auto), or sleep in B until woken."""
        if mode not in ("auto", "sleep", "B", "C", "D", "E"):
            raise ValueError(f"EV mode must be auto, sleep, B, C, D or E, got {mode!r}")
        with self._lock:
            self.mode = mode
            self._update()

    def draw(self, amps: float) -> None:
        """How much current the car asks for."""
        with self._lock:
            self.requested_amps = max(0.0, amps)
            self._update()

    def set_behaviour(self, *, lag: float | None = None, overdraw: float | None = None,
                      diode: bool | None = None, cable_ohms: float | None = None) -> None:
        """Misbehave (None leaves a setting as it is)."""
        with self._lock:
            if lag is not None:
                self.lag = max(0.0, lag)
            if overdraw is not None:
                self.overdraw = max(0.0, overdraw)
            if diode is not None:
                self.diode = diode
            if cable_ohms is not None:
                self.cable_ohms = cable_ohms
            self._update()

    @staticmethod
    def _amps(duty: float) -> float | None:
        return current_for_duty(duty * 100.0) if 0.0 < duty < 1.0 else None

    @property
    def offered_amps(self) -> float | None:
        """The current the PWM offers, as the car has taken it in."""
        return self._amps(self.seen_duty)

    # --------------------------------------------------------------- physics

    def _on_pwm(self, t: float, value: float) -> None:
        with self._lock:
            self.duty = value
            self._timeline.record("pwm", self.connector_id, round(value * 100.0, 2), t)
            if self.mode == "sleep" and value <= 0.0:
                self.mode = "auto"  # a state F pulse wakes it
            new, seen = self._amps(value), self._amps(self.seen_duty)
            lower = seen is not None and (new is None or new < seen)
            if self._lag_timer is not None:
                self._lag_timer.cancel()
                self._lag_timer = None
            if lower and self.lag > 0:
                # A slow car: keeps acting on the old offer for a while.
                self._lag_timer = threading.Timer(self.lag, self._catch_up)
                self._lag_timer.daemon = True
                self._lag_timer.start()
            else:
                self.seen_duty = value
            self._update()

    def _catch_up(self) -> None:
        with self._lock:
            self._lag_timer = None
            self.seen_duty = self.duty
            self._update()

    def _update(self) -> None:
        with self._lock:
            if not self.plugged:
                state = PilotState.A
            elif self.mode == "auto":
                state = PilotState.C if self.offered_amps is not None else PilotState.B
            elif self.mode == "sleep":
                state = PilotState.B
            else:
                state = PilotState(self.mode)
            # Steady low from the EVSE (state F) drowns whatever the car does.
            volts = -12.0 if self.duty <= 0.0 else nominal_voltage(state)
            self._adc.inputs[self._channel] = (volts - self._v0) / self._span
            if self._low_channel is not None:
                if self.duty >= 1.0:
                    low = volts  # steady +12 V: no low half, the detector follows the high level
                elif self.duty <= 0.0 or not self.plugged or self.diode:
                    low = -12.0
                else:
                    low = -volts  # no diode: the car's resistors load the low half like the high one
                self._adc.inputs[self._low_channel] = (low - self._v0) / self._span
            if self._pp_channel is not None:
                ohms = self.cable_ohms if self.plugged else float("inf")
                self._adc.inputs[self._pp_channel] = 1.0 if ohms == float("inf") else ohms / (ohms + self._pp_pullup)
            if state != self.pilot_state:
                self.pilot_state = state
                self._timeline.record("pilot", self.connector_id, state.value)
            offered = self.offered_amps
            amps = 0.0
            if self._contactor.closed and state.requesting and offered is not None:
                # An overdrawing car takes more than it was offered, whatever it asked for.
                amps = offered + self.overdraw if self.overdraw else min(self.requested_amps, offered)
            if amps != self.drawn_amps:
                self.drawn_amps = amps
                self._on_current(amps)
