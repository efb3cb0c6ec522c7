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

    def _set_mirror(self, closed: bool) -> None:
        if self._mirror is None:
            return
        closed = True if self.welded else False if self.stuck_open else closed
        # The input has a pull-up; the contact pulls it low (active) when made.
        made = not closed if self._mirror_nc else closed
        if made:
            self._mirror.drive_low()
        else:
            self._mirror.drive_high()


class AcEvSimulator:
    """A car: plugged or not, S2 open (B) or closed (C/D), and how much current it wants.

    Mode ``auto`` is a car that wants to charge: it closes S2 when it sees a PWM
    and opens it when the PWM goes. ``B``, ``C`` and ``D`` hold S2 as told,
    whatever the PWM does; ``E`` shorts CP to PE (a damaged cable or inlet).
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
        self.duty = float(pwm.state)
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
        """Hold S2 as B, C or D, short CP to PE (E), or follow the PWM (auto)."""
        if mode not in ("auto", "B", "C", "D", "E"):
            raise ValueError(f"EV mode must be auto, B, C, D or E, got {mode!r}")
        with self._lock:
            self.mode = mode
            self._update()

    def draw(self, amps: float) -> None:
        """How much current the car asks for."""
        with self._lock:
            self.requested_amps = max(0.0, amps)
            self._update()

    @property
    def offered_amps(self) -> float | None:
        """The current the PWM offers, as the car reads it."""
        if 0.0 < self.duty < 1.0:
            return current_for_duty(self.duty * 100.0)
        return None

    # --------------------------------------------------------------- physics

    def _on_pwm(self, t: float, value: float) -> None:
        with self._lock:
            self.duty = value
            self._timeline.record("pwm", self.connector_id, round(value * 100.0, 2), t)
            self._update()

    def _update(self) -> None:
        with self._lock:
            if not self.plugged:
                state = PilotState.A
            elif self.mode == "auto":
                state = PilotState.C if self.offered_amps is not None else PilotState.B
            else:
                state = PilotState(self.mode)
            # Steady low from the EVSE (state F) drowns whatever the car does.
            volts = -12.0 if self.duty <= 0.0 else nominal_voltage(state)
            self._adc.inputs[self._channel] = (volts - self._v0) / self._span
            if state != self.pilot_state:
                self.pilot_state = state
                self._timeline.record("pilot", self.connector_id, state.value)
            offered = self.offered_amps
            flowing = self._contactor.closed and state.requesting and offered is not None
            amps = min(self.requested_amps, offered) if flowing and offered is not None else 0.0
            if amps != self.drawn_amps:
                self.drawn_amps = amps
                self._on_current(amps)
