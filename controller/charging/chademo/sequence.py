"""The CHAdeMO charger sequence (IEEE 2030.1.1; protocols 0.9, 1.x and 2.0) as a step machine.

Frames and inputs go in (:meth:`ChademoSequence.on_frame`, :meth:`ChademoSequence.tick` with a
:class:`Inputs` snapshot); what the outputs should be comes out (:class:`Outputs`: d1, d2, the
lock, the bleed resistor, the power stage's set point, the insulation test, whether the DC
contactors are wanted, and the frames due). It touches no bus, so every timing rule is testable
with a fake clock. Steps and limits are those of ``hardware.md`` 2.3 and ``dc.md`` 1 and 6:

1. ``start()``: d1 on; wait for the EV's first 0x102 (6 s), then answer 0x108/0x109 every 100 ms.
2. Wait for k and 0x102.5.0 (8 s from d1); check compatibility (the EV's target above what the
   charger can give, or its minimum below the charger's lowest output: battery incompatible).
3. Lock, set 0x109.5.2; check the outlet is below 10 V (EV contactors open); close the DC contactors
   and run the insulation test; switch the stage off and bleed to below 20 V.
4. d2 on; the EV closes its contactors (0x102.5.3 -> 0 within 4 s; a 0.9 EV: inlet above 50 V or 2 s).
5. The first request above 0 (within 4 s): 0x109.5.0 = 1, 0x109.5.5 = 0; follow min(request, offer).
6. Stop (the EV, k, a flag, 0x102 silent for 1 s, the threshold voltage, the time budget, or the
   station): 0x109.5.5 = 1, current to 5 A within 0.5 s, then 0x109.5.0 = 0 and the stage off; bleed;
   wait for the EV's contactors to open (0x102.5.3 = 1; 10 s), d2 off, 500 ms, d1 off, unlock once the
   outlet is at 10 V or less. The DC contactors stay closed until the EV's are open, so the bleed can
   pull the cable down for the EV's welding check (25 % in 1 s, 10 V in 2 s: dc.md 1.2).
"""

from __future__ import annotations

import logging
from dataclasses import replace

from controller.charging.chademo.frames import (
    EV_EXTENDED,
    EV_LIMITS,
    EV_STATUS,
    EV_TIMES,
    ChargerExtended,
    ChargerLimits,
    ChargerStatus,
    EvExtended,
    EvLimits,
    EvStatus,
    EvTimes,
    MalformedFrame,
    Protocol,
)
from controller.charging.chademo.model import (
    BLED_VOLTAGE,
    COMM_TIMEOUT,
    CYCLE,
    D2_TO_D1,
    EV_CONTACTOR_TIMEOUT,
    EV_OPEN_TIMEOUT,
    FIRST_FRAME_TIMEOUT,
    FIRST_REQUEST_TIMEOUT,
    INSULATION_TIMEOUT,
    PERMISSION_TIMEOUT,
    RAMP_DOWN,
    SAFE_VOLTAGE,
    V09_INLET_CLOSED,
    Blame,
    CheckStep,
    Inputs,
    Outputs,
    Phase,
    Stop,
)
from controller.domain.faults import Fault
from controller.safety.dc import insulation_fault_below
from hal.can import Frame
from hal.dc_power import SAFE_CURRENT, PowerCapabilities

log = logging.getLogger(__name__)


class ChademoSequence:
    """One CHAdeMO outlet's session, from d1 to unlock."""

    def __init__(self, capabilities: PowerCapabilities, *, welding_detection: bool = True) -> None:
        self.capabilities = capabilities
        self.welding_detection = welding_detection
        self.phase = Phase.IDLE
        self._reset()

    def _reset(self) -> None:
        self.stop_cause: Stop | None = None
        self.ev_limits: EvLimits | None = None
        self.ev_times: EvTimes | None = None
        self.ev: EvStatus | None = None
        self.ev_extended: EvExtended | None = None
        self.offer = 0.0  # amps the station allows now
        self._out = Outputs()
        self._since = 0.0  # when the phase began
        self._started = 0.0  # d1 on
        self._last_ev = 0.0  # the last 0x102
        self._next_frame = 0.0
        self._available_current = 0  # 0x108.3 as sent
        self._available_voltage = int(self.capabilities.max_voltage)
        self._threshold = 0
        self._check = CheckStep.LOCK
        self._charging_since = 0.0
        self._stop_requested: Stop | None = None
        self._now = 0.0
        self.keep_locked = False

    # ---------------------------------------------------------------- commands

    def start(self, now: float, offer: float) -> None:
        """Begin a session (the EVSE prepared and authorised it): d1 on."""
        if self.phase not in (Phase.IDLE, Phase.DONE):
            return
        self._reset()
        self.offer = offer
        self._started = now
        self._enter(Phase.WAIT_EV, now)
        self._out.d1 = True

    def set_offer(self, amps: float) -> None:
        """The station's limit changed (smart charging, a site share, a lower temperature limit)."""
        self.offer = max(0.0, amps)

    def stop(self, reason: str = "station", *, emergency: bool = False) -> None:
        """The station ends the session (a card, the CSMS, a fault handled in order).

        ``emergency`` changes nothing here: CHAdeMO's frames have no e-stop flag; the stage is already off.
        """
        if self.phase not in (Phase.IDLE, Phase.DONE) and self._stop_requested is None:
            self._stop_requested = Stop(reason)

    @property
    def active(self) -> bool:
        """A session is under way (d1 is on)."""
        return self.phase not in (Phase.IDLE, Phase.DONE)

    @property
    def next_frame_at(self) -> float:
        """When the next 0x108/0x109 pair is due (infinity while none is: before the EV's first frame)."""
        if self.phase in (Phase.IDLE, Phase.WAIT_EV, Phase.DONE):
            return float("inf")
        return self._next_frame

    @property
    def threshold(self) -> int:
        """The negotiated maximum voltage (0x108.4-5), 0 until the EV's permission."""
        return self._threshold

    @property
    def last_ev_frame(self) -> float:
        """When the EV's last 0x102 arrived."""
        return self._last_ev

    @property
    def delivering(self) -> bool:
        """Current may flow (from the first request to the end of the ramp-down)."""
        return self.phase in (Phase.CHARGING, Phase.RAMP_DOWN)

    # ---------------------------------------------------------------- inputs

    def on_frame(self, frame: Frame, now: float) -> None:
        """Take an EV frame; malformed ones are logged and ignored, V2X and maker frames ignored."""
        if frame.extended or not self.active:
            return
        try:
            if frame.id == EV_STATUS:
                self.ev = EvStatus.decode(frame)
                self._last_ev = now
            elif frame.id == EV_LIMITS:
                self.ev_limits = EvLimits.decode(frame)
            elif frame.id == EV_TIMES:
                self.ev_times = EvTimes.decode(frame)
            elif frame.id == EV_EXTENDED:
                self.ev_extended = EvExtended.decode(frame)
        except MalformedFrame as exc:
            log.warning("CHAdeMO: %s; ignored", exc)

    def tick(self, io: Inputs) -> Outputs:
        """Advance to ``io.now``; returns a copy of the outputs (frames due since the last tick included)."""
        self._now = io.now
        self._out.frames = []
        if self.phase == Phase.DONE and self._out.lock and io.outlet_voltage <= SAFE_VOLTAGE \
                and not self.keep_locked:
            self._out.lock = self._out.bleed = False  # the outlet is dead now: it may be unlocked
        if self.active:
            self._step(io)
            if self.phase not in (Phase.IDLE, Phase.WAIT_EV, Phase.DONE) and io.now >= self._next_frame:
                self._next_frame = max(self._next_frame + CYCLE, io.now - CYCLE / 2)
                self._out.frames = self._frames(io)
        return replace(self._out)

    # ---------------------------------------------------------------- the steps

    def _step(self, io: Inputs) -> None:
        ev = self.ev
        since = io.now - self._since
        if self.phase == Phase.WAIT_EV:
            if ev is not None:
                self._enter(Phase.WAIT_PERMISSION, io.now)
                self._next_frame = io.now
                self._available_current = int(min(self.offer, self.capabilities.max_current, 255))
            elif io.now - self._started > FIRST_FRAME_TIMEOUT:
                self._end(io, Stop("the EV sent nothing after d1", Fault.EV_COMM_LOST))
            return
        assert ev is not None
        if self._stopping(io):
            return
        if self.phase == Phase.WAIT_PERMISSION:
            if io.k and ev.charging_enabled:
                problem = self._incompatible()
                if problem:
                    self._begin_stop(io, Stop(problem, blame=Blame.BATTERY))
                    return
                self._threshold = min(self.ev_limits.max_voltage if self.ev_limits else ev.target_voltage,
                                      self._available_voltage)
                self._enter(Phase.CABLE_CHECK, io.now)
                self._check = CheckStep.LOCK
                self._out.lock = True
            elif io.now - self._started > PERMISSION_TIMEOUT:
                self._end(io, Stop("no charge permission (k and 0x102.5.0) 8 s after d1"))
        elif self.phase == Phase.CABLE_CHECK:
            self._cable_check(io, since)
        elif self.phase == Phase.WAIT_EV_CONTACTORS:
            closed = (not ev.contactor_open) if ev.protocol >= Protocol.V1 else (
                io.outlet_voltage > V09_INLET_CLOSED or since >= 2.0)
            if closed:
                self._out.bleed = False
                self._enter(Phase.WAIT_REQUEST, io.now)
            elif since > EV_CONTACTOR_TIMEOUT:
                self._begin_stop(io, Stop("the EV did not close its contactors within 4 s of d2"))
        elif self.phase == Phase.WAIT_REQUEST:
            if self._request() > 0:
                self._enter(Phase.CHARGING, io.now)
                self._charging_since = io.now
            elif since > FIRST_REQUEST_TIMEOUT:
                self._begin_stop(io, Stop("the EV asked for no current within 4 s of closing its contactors"))
        if self.phase in (Phase.WAIT_REQUEST, Phase.CHARGING):
            amps = min(self._request(), self._limit())
            self._out.power = (float(self._threshold), float(amps)) if self.phase == Phase.CHARGING else None

    def _cable_check(self, io: Inputs, since: float) -> None:
        out = self._out
        if since > INSULATION_TIMEOUT:
            self._begin_stop(io, Stop("the insulation test did not finish in time", Fault.INSULATION_FAULT,
                                      Blame.CHARGER))
        elif self._check == CheckStep.LOCK and io.locked:
            if io.outlet_voltage >= SAFE_VOLTAGE:
                self._begin_stop(io, Stop(f"{io.outlet_voltage:.0f} V at the outlet before the insulation test: "
                                          "the EV's contactors are not open", Fault.VOLTAGE_MISMATCH, Blame.SYSTEM))
                return
            self._check = CheckStep.CONTACTORS
            out.contactors = True
        elif self._check == CheckStep.CONTACTORS and io.contactors_closed:
            self._check = CheckStep.TEST
            out.insulation_test = self._test_voltage()
            out.power = (out.insulation_test, 2.0)
        elif self._check == CheckStep.TEST and io.insulation_ohms is not None:
            volts = out.insulation_test or 0.0
            out.insulation_test = None
            out.power = None
            if io.insulation_ohms <= insulation_fault_below(volts):
                self._begin_stop(io, Stop(f"insulation test failed: {io.insulation_ohms / 1000:.0f} kOhm at "
                                          f"{volts:.0f} V", Fault.INSULATION_FAULT, Blame.CHARGER))
                return
            self._check = CheckStep.BLEED
            out.bleed = True
        elif self._check == CheckStep.BLEED and io.outlet_voltage < BLED_VOLTAGE:
            out.d2 = True  # the bleed stays on: the EV closes its contactors only into a dead inlet
            self._enter(Phase.WAIT_EV_CONTACTORS, io.now)

    def _stopping(self, io: Inputs) -> bool:
        """Run the stop sequence, or start it if something asks for it; True while it runs."""
        if self.phase == Phase.RAMP_DOWN:
            if abs(io.output_current) <= SAFE_CURRENT or io.now - self._since >= RAMP_DOWN:
                if abs(io.output_current) > SAFE_CURRENT:
                    log.error("CHAdeMO: current still %.1f A after the 0.5 s ramp-down", io.output_current)
                self._out.power = None
                self._out.bleed = True
                self._enter(Phase.WAIT_EV_OPEN, io.now)
            return True
        if self.phase == Phase.WAIT_EV_OPEN:
            ev = self.ev
            assert ev is not None
            opened = ev.contactor_open if ev.protocol >= Protocol.V1 else io.now - self._since >= 4.0
            silent = io.now - self._last_ev > COMM_TIMEOUT
            timed_out = io.now - self._since > EV_OPEN_TIMEOUT
            if ((opened or silent) and io.outlet_voltage <= SAFE_VOLTAGE) or timed_out:
                if timed_out:
                    log.error("CHAdeMO: after 10 s the EV's contactors are %s and the outlet is at %.0f V",
                              "open" if opened else "not reported open", io.outlet_voltage)
                self._out.d2 = False
                self._out.contactors = False
                self._enter(Phase.SHUTDOWN, io.now)
            return True
        if self.phase == Phase.SHUTDOWN:
            if io.now - self._since >= D2_TO_D1:
                self._end(io, self.stop_cause or Stop("ended"))
            return True
        cause = self._stop_requested or self._ev_stop(io)
        if cause is not None:
            self._begin_stop(io, cause)
            return True
        return False

    def _ev_stop(self, io: Inputs) -> Stop | None:
        ev = self.ev
        assert ev is not None
        if io.now - self._last_ev > COMM_TIMEOUT:
            return Stop("0x102 silent for more than 1 s", Fault.EV_COMM_LOST)
        if not io.plugged:
            return Stop("the connector left the inlet", Fault.CONNECTOR_LOST)
        if self.phase in (Phase.WAIT_PERMISSION, Phase.CABLE_CHECK) and ev.normal_stop_request:
            return Stop("the EV asked to stop before charging")
        if self.phase == Phase.WAIT_PERMISSION:
            return None  # k and 0x102.5.0 are what this phase waits for
        if not ev.charging_enabled:
            return Stop("the EV cleared 0x102.5.0")
        if not io.k:
            return Stop("k opened (the EV withdrew its permission)")
        if ev.faults:
            return Stop(f"the EV reports {', '.join(ev.faults)}")
        if ev.shift_not_park:
            return Stop("the EV's shift lever left park")
        if self.phase == Phase.CHARGING:
            if io.outlet_voltage >= self._threshold > 0:
                return Stop(f"threshold voltage {self._threshold} V reached")
            budget = self.ev_times.max_charging_s if self.ev_times else None
            if budget and io.now - self._charging_since >= budget:
                return Stop("the EV's maximum charging time is used up")
        return None

    def _begin_stop(self, io: Inputs, cause: Stop) -> None:
        self.stop_cause = cause
        log.info("CHAdeMO: stopping: %s", cause.reason)
        self._out.insulation_test = None
        if self._out.contactors:
            # Energy may be flowing, or the cable is live from the test: ramp down, bleed, wait for the EV.
            self._out.power = (self._out.power[0], 0.0) if self._out.power else None
            self._enter(Phase.RAMP_DOWN, io.now)
        else:
            self._out.power = None
            self._out.d2 = False
            self._enter(Phase.SHUTDOWN, io.now)

    def _end(self, io: Inputs, cause: Stop) -> None:
        self.stop_cause = cause
        out = self._out
        out.d1 = out.d2 = out.contactors = False
        out.power = None
        out.insulation_test = None
        out.bleed = io.outlet_voltage > SAFE_VOLTAGE
        out.lock = out.lock and io.outlet_voltage > SAFE_VOLTAGE  # never unlock a live connector (see tick)
        self._enter(Phase.DONE, io.now)
        log.info("CHAdeMO: session over (%s)", cause.reason)

    # ---------------------------------------------------------------- helpers

    def _enter(self, phase: Phase, now: float) -> None:
        if phase != self.phase:
            log.debug("CHAdeMO: %s -> %s", self.phase.value, phase.value)
        self.phase = phase
        self._since = now

    def _incompatible(self) -> str | None:
        ev = self.ev
        assert ev is not None
        if ev.target_voltage > self._available_voltage:
            return f"the EV's target {ev.target_voltage} V is above the charger's {self._available_voltage} V"
        lowest = self.ev_limits.min_voltage if self.ev_limits else 0
        if 0 < lowest < self.capabilities.min_voltage:
            return (f"the EV's minimum {lowest} V is below the charger's lowest output "
                    f"{self.capabilities.min_voltage:.0f} V")
        return None

    def _request(self) -> float:
        ev = self.ev
        if ev is None:
            return 0.0
        if ev.current_request == 0xFF and self.ev_extended is not None and self.ev_extended.high_current_control:
            return float(self.ev_extended.current_request)
        return float(ev.current_request)

    def _dynamic(self) -> bool:
        ev = self.ev
        return bool((self.ev_extended and self.ev_extended.dynamic_control) or (ev and ev.legacy_dynamic_control))

    def _limit(self) -> float:
        """The most the charger gives now: its offer, its power at the present voltage, and 0x108.3 as sent."""
        voltage = max(float(self.ev.target_voltage if self.ev else 0), 1.0)
        return min(self.offer, self.capabilities.current_at(voltage), float(self._available_current)
                   if not self._dynamic() else self.capabilities.max_current)

    def _test_voltage(self) -> float:
        """IEC 61851-23 CC.4.1.2 (CHAdeMO's own rule was not found: dc.md 5)."""
        ev_max = float(self.ev_limits.max_voltage if self.ev_limits else self.ev.target_voltage if self.ev else 0)
        top = self.capabilities.max_voltage
        return min(ev_max + 50, 500.0, top) if ev_max <= 500 else min(top, 1.1 * ev_max)

    def _frames(self, io: Inputs) -> list[Frame]:
        ev = self.ev
        assert ev is not None
        if self._dynamic() and self.phase == Phase.CHARGING:
            self._available_current = int(min(self.offer, self.capabilities.max_current, 255))
        limits = ChargerLimits(self.welding_detection, self._available_voltage, self._available_current,
                               self._threshold or min(self._available_voltage,
                                                      self.ev_limits.max_voltage if self.ev_limits else 0))
        # 0x109.5.0 stays set through the ramp-down until the current is at 5 A (the Leaf log shows both
        # it and 0x109.5.5 set while the current falls); 0x109.5.5 is set whenever not charging.
        charging = self.phase == Phase.CHARGING or (self.phase == Phase.RAMP_DOWN
                                                    and abs(io.output_current) > SAFE_CURRENT)
        blame = self.stop_cause.blame if self.stop_cause else Blame.NONE
        status = ChargerStatus(
            protocol=max(1, min(ev.protocol, Protocol.V2)),
            present_voltage=round(io.outlet_voltage), present_current=round(abs(io.output_current)),
            charging=charging, malfunction=blame == Blame.CHARGER,
            energizing=self._out.lock and (io.outlet_voltage > SAFE_VOLTAGE or (io.k and ev.charging_enabled)),
            battery_incompatible=blame == Blame.BATTERY, system_malfunction=blame == Blame.SYSTEM,
            stop_control=self.phase != Phase.CHARGING, remaining_s=self._remaining())
        frames = [limits.encode(), status.encode()]
        if ev.protocol >= Protocol.V2 and self.ev_extended is not None:
            frames.append(ChargerExtended(dynamic_control=self.ev_extended.dynamic_control).encode())
        return frames

    def _remaining(self) -> int | None:
        times = self.ev_times
        if times is None or times.max_charging_s is None:
            return None
        if self.phase != Phase.CHARGING:
            return times.max_charging_s
        return max(0, int(times.max_charging_s - (self._now - self._charging_since)))
