"""The GB/T 27930-2015 charger sequence (2011 BMSs as an option) as a step machine.

Single-frame BMS messages go in through :meth:`GbtSequence.on_frame`, the multi-packet ones (BRM,
BCP, BCS) through :meth:`GbtSequence.on_message` once the J1939 transport has them whole; time and
measurements through :meth:`GbtSequence.tick`, which returns the outputs and the frames due. Flow
(``dc.md`` 2.3-2.4, ``hardware.md`` 3.5): lock, auxiliary power, outlet below 10 V; CHM until BHM (no
BHM in 5 s: a 2011 BMS, go on); insulation test at min(BHM, rated) on closed K1/K2, fault at 100 ohm/V,
bleed to 60 V; CRM 0x00 until BRM, CRM 0xAA until BCP; CTS and CML until BRO 0xAA (60 s); battery
voltage within 5 % of BCP, output 1-10 V below it, K1/K2 closed, CRO 0xAA; CCS every 50 ms following BCL
(BCL silent 1 s or BCS 5 s: stop; BSM's pause and alarms); CST every 10 ms, current at 100 A/s or faster
to 5 A, K1/K2 open, BST (5 s), BSD (10 s), CSD; CEM on a timeout, then a new handshake up to three times.
"""

from __future__ import annotations

import logging
from dataclasses import replace

from controller.charging.gbt import frames as gbt
from controller.charging.gbt.model import (
    BCL_TIMEOUT,
    BCS_TIMEOUT,
    BHM_TIMEOUT,
    BLED_VOLTAGE,
    BRO_READY_TIMEOUT,
    BSD_TIMEOUT,
    BST_TIMEOUT,
    DEFAULT_TIMEOUT,
    INSULATION_TIMEOUT,
    MATCH,
    PAUSE_LIMIT,
    PRECHARGE_BELOW,
    PRECHARGE_TARGET,
    RECONNECTS,
    SAFE_VOLTAGE,
    STOP_SLEW,
    VOLTAGE_SETTLE,
    Inputs,
    Outputs,
    Phase,
    Stop,
)
from controller.charging.gbt.transmit import Transmitter
from controller.charging.j1939 import Address, Message
from controller.domain.faults import Fault
from controller.safety.dc import insulation_fault_below
from hal.can import Frame
from hal.dc_power import SAFE_CURRENT, PowerCapabilities

log = logging.getLogger(__name__)

_BMS_PF = {0x27: "BHM", 0x09: "BRO", 0x10: "BCL", 0x11: "BCS", 0x13: "BSM", 0x19: "BST", 0x1C: "BSD", 0x1E: "BEM"}
_TP_PGN = {0x0200: "BRM", 0x0600: "BCP", 0x1100: "BCS"}
WARNING_OHMS_PER_VOLT = 500.0
STOP_MARGIN = 0.2  # s beyond the 100 A/s ramp before K1/K2 open under load (and the station says so)


class GbtSequence:
    """One GB/T outlet's session, from CC1 to unlock."""

    def __init__(self, capabilities: PowerCapabilities, *, charger_number: int = 1) -> None:
        self.capabilities = capabilities
        self.charger_number = charger_number
        self.phase = Phase.IDLE
        self._reset()

    def _reset(self) -> None:
        self.stop_cause: Stop | None = None
        self.bhm_voltage: float | None = None
        self.brm: gbt.Brm | None = None
        self.bcp: gbt.Bcp | None = None
        self.bcl: gbt.Bcl | None = None
        self.bcs: gbt.Bcs | None = None
        self.bsm: gbt.Bsm | None = None
        self.bro: int | None = None
        self.bst: gbt.Bst | None = None
        self.bsd = False
        self.offer = 0.0
        self.attempts = 0
        self.insulation_warning = False
        self._out = Outputs()
        self._since = 0.0
        self._seen: dict[str, float] = {}
        self._tx = Transmitter(self)
        self.cem: dict[str, int] = {}
        self.charging_since = 0.0
        self._paused_since: float | None = None
        self.energy_wh = 0.0
        self._last_tick: float | None = None
        self._stop_requested: Stop | None = None
        self._test_voltage = 0.0
        self._stop_bound = STOP_MARGIN
        self.keep_locked = False
        self._bem = False

    # ---------------------------------------------------------------- commands

    def start(self, now: float, offer: float) -> None:
        """Begin a session (authorised, the connector in): lock and auxiliary power."""
        if self.active:
            return
        self._reset()
        self.offer = offer
        self._out.lock = True
        self._out.aux = True
        self._enter(Phase.SELF_CHECK, now)

    def set_offer(self, amps: float) -> None:
        """The station's limit changed."""
        self.offer = max(0.0, amps)

    def stop(self, reason: str = "station", *, emergency: bool = False) -> None:
        """The station ends the session; ``emergency``: CST says "charger emergency stop" (SPN3522)."""
        if self.active and self._stop_requested is None:
            self._stop_requested = Stop(reason, "FaultStop", cst_fault="EmergencyStop") if emergency \
                else Stop(reason, "ManualStop")

    @property
    def active(self) -> bool:
        """A session is under way."""
        return self.phase not in (Phase.IDLE, Phase.DONE)

    def last_seen(self, name: str) -> float:
        """When the BMS's last ``name`` message arrived (-infinity: never this session)."""
        return self._seen.get(name, float("-inf"))

    @property
    def next_due(self) -> float:
        """When the next charger message is due (infinity before any is scheduled)."""
        return min(self._tx.due.values(), default=float("inf"))

    @property
    def delivering(self) -> bool:
        """Current may flow."""
        return self.phase in (Phase.CHARGING, Phase.STOPPING)

    # ---------------------------------------------------------------- inputs

    def on_frame(self, frame: Frame, now: float) -> bool:
        """A single-frame BMS message; True when it was one (whatever became of it)."""
        if not frame.extended:
            return False
        addr = Address.of(frame.id)
        name = _BMS_PF.get(addr.pgn >> 8 & 0xFF)
        if name is None or addr.destination != gbt.CHARGER or addr.source != gbt.BMS:
            return False
        self._take(name, frame.data, now)
        return True

    def on_message(self, message: Message) -> None:
        """A multi-packet BMS message from the transport."""
        name = _TP_PGN.get(message.pgn)
        if name is not None and message.source == gbt.BMS:
            self._take(name, message.data, message.at)

    def _take(self, name: str, data: bytes, now: float) -> None:
        if not self.active:
            return
        try:
            if name == "BHM":
                self.bhm_voltage = float(gbt.decode("BHM", data)["MaxChargeVoltage"])
            elif name == "BRM":
                self.brm = gbt.Brm.decode(data)
            elif name == "BCP":
                self.bcp = gbt.Bcp.decode(data)
            elif name == "BRO":
                self.bro = int(gbt.decode("BRO", data)["Ready"])
            elif name == "BCL":
                self.bcl = gbt.Bcl.decode(data)
            elif name == "BCS":
                self.bcs = gbt.Bcs.decode(data)
            elif name == "BSM":
                self.bsm = gbt.Bsm.decode(data)
            elif name == "BST":
                self.bst = gbt.Bst.decode(data)
            elif name == "BSD":
                self.bsd = True
            elif name == "BEM":
                log.warning("GB/T: the BMS reports a timeout (BEM %s)", data.hex(" "))
                self._bem = True
        except gbt.MalformedFrame as exc:
            log.warning("%s; ignored", exc)
            return
        self._seen[name] = now

    # ---------------------------------------------------------------- time

    def tick(self, io: Inputs) -> Outputs:
        """Advance to ``io.now``; returns a copy of the outputs with the frames due."""
        if self._last_tick is not None and self.delivering:
            self.energy_wh += io.outlet_voltage * io.output_current * (io.now - self._last_tick) / 3600
        self._last_tick = io.now
        self._out.frames = []
        if self.phase == Phase.DONE and self._out.lock and io.outlet_voltage < BLED_VOLTAGE and not self.keep_locked:
            self._out.lock = self._out.bleed = False  # the connector is dead now: it may be unlocked
        if self.active:
            self._step(io)
            self._out.frames = self._tx.frames(io)
        return replace(self._out)

    def _step(self, io: Inputs) -> None:
        since = io.now - self._since
        if self.phase in (Phase.STOPPING, Phase.STATISTICS, Phase.ERROR, Phase.SHUTDOWN):
            self._ending(io, since)
            return
        cause = self._stop_requested or self._watch(io)
        if cause is not None:
            self._begin_stop(io, cause)
            return
        if self._bem and self.phase not in (Phase.SELF_CHECK, Phase.HANDSHAKE, Phase.INSULATION):
            self._bem = False
            if self.phase == Phase.CHARGING or self._out.contactors:
                self._begin_stop(io, Stop("the BMS reported a timeout (BEM)", "FaultStop"))  # energy first: stop
            else:
                self._error(io, None)
            return
        handler = {Phase.SELF_CHECK: self._self_check, Phase.HANDSHAKE: self._handshake,
                   Phase.INSULATION: self._insulation, Phase.RECOGNITION: self._recognition,
                   Phase.PARAMETERS: self._parameters, Phase.PRECHARGE: self._precharge,
                   Phase.READY: self._ready, Phase.CHARGING: self._charging}[self.phase]
        handler(io, since)

    def _watch(self, io: Inputs) -> Stop | None:
        if not io.connected and self.phase != Phase.SELF_CHECK:
            return Stop("CC1 left 4 V: the connector is not fully in", "FaultStop", Fault.CONNECTOR_LOST,
                        "ConnectorFault")
        if self.bst is not None and self.phase in (Phase.PARAMETERS, Phase.PRECHARGE, Phase.READY, Phase.CHARGING):
            return Stop(f"the BMS stopped ({', '.join(self.bst.reasons) or 'no reason'})", "BmsStop")
        return None

    def _self_check(self, io: Inputs, since: float) -> None:
        if io.connected and io.locked:
            if io.outlet_voltage >= SAFE_VOLTAGE:
                self._begin_stop(io, Stop(f"{io.outlet_voltage:.0f} V outside K1/K2 before the insulation test",
                                          "FaultStop", Fault.VOLTAGE_MISMATCH))
                return
            self._enter(Phase.HANDSHAKE, io.now)
        elif since > DEFAULT_TIMEOUT:
            self._begin_stop(io, Stop("the connector did not lock or CC1 is not at 4 V", "FaultStop",
                                      Fault.LOCK_FAILURE if io.connected else Fault.CONNECTOR_LOST))

    def _handshake(self, io: Inputs, since: float) -> None:
        if self.bhm_voltage is not None:
            if self.bhm_voltage < self.capabilities.min_voltage:
                self._begin_stop(io, Stop(f"the BMS allows {self.bhm_voltage:.0f} V, below the charger's lowest "
                                          f"output {self.capabilities.min_voltage:.0f} V"))
                return
            self._test_voltage = min(self.bhm_voltage, self.capabilities.max_voltage)
            self._enter(Phase.INSULATION, io.now)
        elif since > BHM_TIMEOUT:
            # A 2011 BMS sends no BHM (it starts with CRM): test at the charger's own rating, capped at 500 V
            # until the BMS says more (L: the 2011 text was not read).
            log.info("GB/T: no BHM in 5 s: a 2011 BMS")
            self._test_voltage = min(self.capabilities.max_voltage, 500.0)
            self._enter(Phase.INSULATION, io.now)

    def _insulation(self, io: Inputs, since: float) -> None:
        out = self._out
        if since > INSULATION_TIMEOUT:
            self._begin_stop(io, Stop("the insulation test did not finish", "FaultStop", Fault.INSULATION_FAULT))
        elif out.insulation_test is None and not out.bleed:
            out.contactors = True
            if io.contactors_closed:
                out.insulation_test = self._test_voltage
                out.power = (self._test_voltage, 2.0)
        elif out.insulation_test is not None and io.insulation_ohms is not None:
            volts = self._test_voltage
            # Stage off and the bleed on with K1/K2 still closed, so both sides come down before they open.
            out.insulation_test, out.power, out.bleed = None, None, True
            if io.insulation_ohms <= insulation_fault_below(volts):
                self._begin_stop(io, Stop(f"insulation {io.insulation_ohms / 1000:.0f} kOhm at {volts:.0f} V",
                                          "FaultStop", Fault.INSULATION_FAULT))
                return
            self.insulation_warning = io.insulation_ohms <= WARNING_OHMS_PER_VOLT * volts
        elif out.bleed and max(io.stage_voltage, io.outlet_voltage) < BLED_VOLTAGE:
            out.bleed = out.contactors = False
            self._enter(Phase.RECOGNITION, io.now)

    def _recognition(self, io: Inputs, since: float) -> None:
        if self.brm is None:
            if since > DEFAULT_TIMEOUT:
                self._error(io, "BrmTimeout")
        elif self.bcp is not None:
            if self.bcp.max_voltage < self.capabilities.min_voltage:
                self._begin_stop(io, Stop(f"the battery's maximum {self.bcp.max_voltage:.0f} V is below the "
                                          "charger's lowest output"))
                return
            self._enter(Phase.PARAMETERS, io.now)
        elif io.now - self._seen.get("BRM", io.now) > DEFAULT_TIMEOUT:
            self._error(io, "BcpTimeout")

    def _parameters(self, io: Inputs, since: float) -> None:
        if self.bro == gbt.READY:
            self._enter(Phase.PRECHARGE, io.now)
        elif (self.bro is None and since > DEFAULT_TIMEOUT) or since > BRO_READY_TIMEOUT:
            self._error(io, "BroTimeout")

    def _precharge(self, io: Inputs, since: float) -> None:
        bcp = self.bcp
        assert bcp is not None
        caps, out = self.capabilities, self._out
        battery = io.outlet_voltage
        if out.power is None:
            if abs(battery - bcp.battery_voltage) > MATCH * bcp.battery_voltage or not (
                    caps.min_voltage <= battery <= caps.max_voltage):
                if since < VOLTAGE_SETTLE:
                    return
                self._begin_stop(io, Stop(f"battery at {battery:.0f} V, BCP says {bcp.battery_voltage:.0f} V "
                                          f"(5 %) and the output can give {caps.min_voltage:.0f}-"
                                          f"{caps.max_voltage:.0f} V", "FaultStop", Fault.VOLTAGE_MISMATCH,
                                          "VoltageAbnormal"))
                return
            out.power = (battery - PRECHARGE_TARGET, 1.0)
        low, high = PRECHARGE_BELOW
        if not out.contactors and battery - high <= io.stage_voltage <= battery - low:
            out.contactors = True
        if io.contactors_closed:
            self._enter(Phase.READY, io.now)
        elif since > 15.0:
            self._begin_stop(io, Stop("the output did not match the battery in 15 s", "FaultStop",
                                      Fault.VOLTAGE_MISMATCH, "VoltageAbnormal"))

    def _ready(self, io: Inputs, since: float) -> None:
        if self.bcl is not None and self.bcs is not None:
            self.charging_since = io.now
            self._enter(Phase.CHARGING, io.now)
        elif since > (BCL_TIMEOUT if self.bcs is not None else BCS_TIMEOUT):
            self._error(io, "BclTimeout" if self.bcs is not None else "BcsTimeout")

    def _charging(self, io: Inputs, since: float) -> None:
        bcl, bcp, bsm = self.bcl, self.bcp, self.bsm
        assert bcl is not None and bcp is not None
        if io.now - self._seen.get("BCL", io.now) > BCL_TIMEOUT:
            self._begin_stop(io, Stop("BCL silent for more than 1 s", "FaultStop", Fault.EV_COMM_LOST))
            return
        if io.now - self._seen.get("BCS", io.now) > BCS_TIMEOUT:
            self._begin_stop(io, Stop("BCS silent for more than 5 s", "FaultStop", Fault.EV_COMM_LOST))
            return
        if bsm is not None and bsm.alarms:
            self._begin_stop(io, Stop(f"the BMS reports {', '.join(bsm.alarms)}", "FaultStop"))
            return
        paused = bsm is not None and not bsm.charging_allowed
        if paused and self._paused_since is None:
            self._paused_since = io.now
        elif not paused:
            self._paused_since = None
        if self._paused_since is not None and io.now - self._paused_since > PAUSE_LIMIT:
            self._begin_stop(io, Stop("paused for more than 10 minutes"))
            return
        volts = min(bcl.voltage, bcp.max_voltage, self.capabilities.max_voltage)
        amps = 0.0 if paused else min(bcl.current, bcp.max_current, self.offer,
                                      self.capabilities.current_at(max(volts, 1.0)))
        self._out.power = (volts, max(0.0, amps))

    # ---------------------------------------------------------------- ending

    def _begin_stop(self, io: Inputs, cause: Stop) -> None:
        self.stop_cause = cause
        self._stop_bound = max(0.0, abs(io.output_current) - SAFE_CURRENT) / STOP_SLEW + STOP_MARGIN
        log.info("GB/T: stopping: %s", cause.reason)
        out = self._out
        out.insulation_test = None
        if cause.fault == Fault.CONNECTOR_LOST:
            out.power = None  # 5 A within 50 ms: the stage off at once, no ramp
        elif out.power is not None:
            out.power = (out.power[0], 0.0)
        if out.contactors or io.contactors_closed:
            self._enter(Phase.STOPPING, io.now)
        else:
            out.power = None
            self._enter(Phase.STATISTICS if self.phase not in (Phase.SELF_CHECK, Phase.HANDSHAKE,
                                                                 Phase.INSULATION) else Phase.SHUTDOWN, io.now)
            out.bleed = True

    def _error(self, io: Inputs, timeout: str | None) -> None:
        """A timeout (ours, named for CEM) or the BMS's BEM (None): CEM for 5 s, then a new handshake or the end."""
        self.cem = {timeout: 1} if timeout else {}
        if timeout in ("BstTimeout", "BsdTimeout"):
            # The session had ended already: CEM says which message never came; no new handshake, no fault.
            log.warning("GB/T: %s timed out at the end of the session", timeout.removesuffix("Timeout"))
        else:
            # No fault yet: a new handshake may follow; the fault comes once the reconnects are used up.
            reason = f"{timeout.removesuffix('Timeout')} timed out" if timeout else "the BMS reported a timeout (BEM)"
            self.stop_cause = Stop(reason, "FaultStop", reconnect=True)
            log.warning("GB/T: %s", reason)
        out = self._out
        out.power, out.insulation_test, out.contactors, out.bleed = None, None, False, True
        self._enter(Phase.ERROR, io.now)

    def _ending(self, io: Inputs, since: float) -> None:
        out = self._out
        if self.phase == Phase.STOPPING:
            # Contactors the supervisor opened (a fault) leave nothing to ramp down: bleed the outlet at once
            # rather than wait for a stage reading (100 ms polls, or the stop bound if one is lost).
            if abs(io.output_current) <= SAFE_CURRENT or since > self._stop_bound or not io.contactors_closed:
                if abs(io.output_current) > SAFE_CURRENT:
                    log.error("GB/T: %.1f A still flowing %.1f s after the stop (100 A/s or faster was due)",
                              io.output_current, self._stop_bound)
                out.power, out.contactors, out.bleed = None, False, True
                self._enter(Phase.STATISTICS, io.now)
        elif self.phase == Phase.STATISTICS:
            if self.bst is None and since > BST_TIMEOUT:
                self._error(io, "BstTimeout")
            elif self.bst is not None and self.bsd:
                if "CSD" in self._tx.due and since > 1.0:
                    self._enter(Phase.SHUTDOWN, io.now)
            elif self.bst is not None and since > BSD_TIMEOUT:
                self._error(io, "BsdTimeout")
        elif self.phase == Phase.ERROR:
            if since > DEFAULT_TIMEOUT:
                cause = self.stop_cause
                if cause is not None and cause.reconnect and self.attempts < RECONNECTS and io.connected:
                    self.attempts += 1
                    log.info("GB/T: reconnecting (%d of %d)", self.attempts, RECONNECTS)
                    self._restart_handshake(io)
                else:
                    if cause is not None and cause.reconnect:
                        self.stop_cause = replace(cause, fault=Fault.EV_COMM_LOST)  # the reconnects are used up
                    self._enter(Phase.SHUTDOWN, io.now)
        elif self.phase == Phase.SHUTDOWN and (io.outlet_voltage < BLED_VOLTAGE or since > DEFAULT_TIMEOUT):
            # The connector is what a hand touches: the stage behind open K1/K2 may still hold a charge.
            live = io.outlet_voltage >= BLED_VOLTAGE
            out.aux = out.contactors = False
            out.lock = out.bleed = live  # never unlock a live connector: bleed on, unlock once it is dead (tick)
            self._enter(Phase.DONE, io.now)
            log.info("GB/T: session over (%s)", self.stop_cause.reason if self.stop_cause else "ended")

    def _restart_handshake(self, io: Inputs) -> None:
        self.stop_cause = None
        self._bem = False
        self.bhm_voltage = self.bro = None
        self.brm = self.bcp = self.bcl = self.bcs = self.bsm = None
        self._seen.clear()
        self.cem = {}
        self._out.bleed = False
        self._enter(Phase.HANDSHAKE, io.now)

    # ---------------------------------------------------------------- frames

    def _enter(self, phase: Phase, now: float) -> None:
        if phase != self.phase:
            log.debug("GB/T: %s -> %s", self.phase.value, phase.value)
        self.phase = phase
        self._since = now
        self._tx.due.clear()
