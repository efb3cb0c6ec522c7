"""A GB/T 27930 BMS (2015, or 2011 without the handshake) as the vehicle side of the bench, from the references.

With the auxiliary supply on it answers the charger's CHM with BHM (a 2011 BMS waits for CRM), CRM
0x00 with BRM (41 or 49 bytes), CRM 0xAA with BCP, CML with BRO 0x00 and, once its relays are closed,
BRO 0xAA; after CRO 0xAA it sends BCL every 50 ms, BCS and BSM every 250 ms. Its battery's voltage
follows its state of charge; at its target it sends BST (SOC reached) and, once the charger has
stopped, BSD. Misbehaviours: ``pause`` (BSM says charging not allowed), ``silent`` (BCL stops),
``no_bst``, ``wrong_bcp`` (BCP's battery voltage 20 % off what its relays put on the outlet); single frames
``padded`` to 8 bytes or at the table length.

The core is a step machine: charger frames in (:meth:`GbtBms.on_frame`), time in (:meth:`GbtBms.tick`),
out come single frames and whole multi-packet messages (the bench's transport sends those).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from controller.charging.gbt.frames import CHARGER, database
from controller.charging.j1939 import Address, frame_id
from hal.can import Frame
from hil.dccircuit import DcCircuit

BMS = 0xF4
PGN = {"BRM": 0x0200, "BCP": 0x0600, "BCS": 0x1100}
PRIORITY = {"BHM": 6, "BRO": 4, "BCL": 6, "BSM": 6, "BST": 4, "BSD": 6, "BEM": 2}


@dataclass
class BmsSpec:
    """The vehicle: its BMS's edition and habits, and its battery."""

    edition: int = 2015
    brm_length: int = 49
    padded: bool = False
    max_voltage: float = 450.0  # BHM and BCP maximum
    rated_voltage: float = 380.0
    empty_voltage: float = 330.0
    full_voltage: float = 410.0
    capacity_kwh: float = 60.0
    soc: float = 50.0
    target_soc: float = 80.0
    max_current: float = 150.0
    request: float = 100.0
    relay_delay: float = 0.5  # CML -> relays closed, BRO 0xAA
    misbehaviours: set[str] = field(default_factory=set)


#: A single frame, or a whole multi-packet message (PGN, bytes) for the bench's transport to send.
Output = Frame | tuple[int, bytes]


class GbtBms:
    """The BMS side of one session."""

    def __init__(self, spec: BmsSpec, circuit: DcCircuit) -> None:
        self.spec = spec
        self.circuit = circuit
        self.soc = spec.soc
        self.new_session()

    def new_session(self) -> None:
        """Plugged in again: the sequence starts over (the battery keeps its charge)."""
        self.stage = "off"
        self.relays = False
        self.stopped = False  # the BMS has sent BST
        self.charger_stopped = False
        self._cml_at: float | None = None
        self._due: dict[str, float] = {}
        self._last: float | None = None
        self.voltage()

    def voltage(self) -> float:
        """Open-circuit battery voltage at the present SoC (also onto the circuit)."""
        s = self.spec
        volts = s.empty_voltage + (s.full_voltage - s.empty_voltage) * self.soc / 100
        self.circuit.battery_voltage = volts
        return volts

    def stop(self) -> None:
        """The driver ends charging from the car: BST, then the relays once the current is down."""
        if self.stage in ("parameters", "preparing", "ready", "charging"):
            self.stage = "stopping"

    @property
    def phase(self) -> str:
        """Where the BMS's side of the session is (its stage), as a bench report names it."""
        return self.stage

    def on_frame(self, frame: Frame) -> None:
        """A charger frame."""
        if not frame.extended:
            return
        addr = Address.of(frame.id)
        if addr.source != CHARGER or addr.destination != BMS:
            return
        name = {0x26: "CHM", 0x01: "CRM", 0x08: "CML", 0x0A: "CRO", 0x12: "CCS", 0x1A: "CST", 0x1D: "CSD",
                0x1F: "CEM"}.get(addr.pgn >> 8)
        if name == "CHM" and self.stage == "powered" and self.spec.edition >= 2015:
            self.stage = "handshake"
        elif name == "CRM":
            recognised = frame.data[0] == 0xAA
            if recognised and self.stage in ("identify", "handshake", "powered"):
                self.stage = "parameters"
            elif not recognised and self.stage in ("powered", "handshake"):
                self.stage = "identify"
        elif name == "CML" and self.stage == "parameters":
            self.stage = "preparing"
        elif name == "CRO" and frame.data[0] == 0xAA and self.stage == "ready":
            self.stage = "charging"
        elif name == "CST":
            self.charger_stopped = True
            if self.stage in ("charging", "ready", "preparing", "parameters"):
                self.stage = "stopping"
        elif name == "CEM":
            self.stage = "powered"  # a timeout: the charger starts again from the handshake
            self.relays = False

    def tick(self, now: float, aux: bool) -> list[Output]:
        """Advance to ``now`` with the auxiliary supply ``aux``; what the BMS sends now."""
        dt, self._last = (now - self._last) if self._last is not None else 0.0, now
        if not aux:
            self.stage, self.relays = "off", False
            self.circuit.ev_contactor_closed = False
            return []
        if self.stage == "off":
            self.stage = "powered"
        self._charge(dt)
        s, bad, out = self.spec, self.spec.misbehaviours, []
        if self.stage == "preparing":
            if self._cml_at is None:
                self._cml_at = now
            if now - self._cml_at >= s.relay_delay:
                self.relays = True
                self.stage = "ready"
        if self.stage == "charging" and self.soc >= s.target_soc and not self.stopped:
            self.stage = "stopping"
        if self.stage == "stopping" and self.relays and abs(self.circuit.current) <= 5 and self.charger_stopped:
            self.relays = False
        self.circuit.ev_contactor_closed = self.relays
        for name, period in self._sending():
            if name == "BCL" and "silent" in bad:
                continue
            if name == "BST" and "no_bst" in bad:
                continue
            if now >= self._due.get(name, now):
                self._due[name] = max(self._due.get(name, now) + period, now - period / 2)
                out.append(self._message(name))
                if name == "BST":
                    self.stopped = True
        return out

    def _sending(self) -> list[tuple[str, float]]:
        stage = self.stage
        return {
            "handshake": [("BHM", 0.25)],
            "identify": [("BRM", 0.25)],
            "parameters": [("BCP", 0.5)],
            "preparing": [("BRO", 0.25)],
            "ready": [("BRO", 0.25)],
            "charging": [("BCL", 0.05), ("BCS", 0.25), ("BSM", 0.25)],
            "stopping": [("BST", 0.01)] + ([("BSD", 0.25)] if self.charger_stopped and not self.relays else []),
        }.get(stage, [])

    def _charge(self, dt: float) -> None:
        if self.relays and self.circuit.current > 0:
            self.soc = min(100.0, self.soc + self.circuit.current * self.circuit.outlet_voltage * dt / 3600
                           / (self.spec.capacity_kwh * 1000) * 100)
        self.voltage()

    def _message(self, name: str) -> Output:
        s, db = self.spec, database()
        volts = self.circuit.outlet_voltage if self.relays else self.voltage()
        table: dict[str, dict[str, float]] = {
            "BHM": {"MaxChargeVoltage": s.max_voltage},
            "BRO": {"Ready": 0xAA if self.relays else 0x00},
            "BCL": {"VoltageDemand": s.max_voltage, "CurrentDemand": -min(s.request, s.max_current), "Mode": 2},
            "BSM": {"HighestCellNumber": 1, "MaxTemperature": 30, "MaxTemperatureProbe": 1, "MinTemperature": 25,
                    "MinTemperatureProbe": 2, "CellVoltageState": 0, "SocState": 0, "OverCurrent": 0,
                    "OverTemperature": 0, "Insulation": 0, "ConnectorState": 0,
                    "ChargingAllowed": 0 if "pause" in s.misbehaviours else 1},
            "BST": {"SocReached": 1 if self.soc >= s.target_soc else 0, "TotalVoltageReached": 0,
                    "CellVoltageReached": 0, "ChargerStopped": 1 if self.charger_stopped else 0,
                    **{f: 0 for f in ("InsulationFault", "ConnectorOverTemperature", "BmsOverTemperature",
                                      "ConnectorFault", "BatteryOverTemperature", "HvRelayFault",
                                      "DetectionPoint2Fault", "OtherFault", "OverCurrent", "VoltageAbnormal")}},
            "BSD": {"Soc": round(self.soc), "MinCellVoltage": 3.9, "MaxCellVoltage": 3.95, "MinTemperature": 25,
                    "MaxTemperature": 30},
            "BCP": {"MaxCellVoltage": 4.2, "MaxChargeCurrent": -s.max_current, "NominalEnergy": s.capacity_kwh,
                    "MaxChargeVoltage": s.max_voltage, "MaxTemperature": 55, "Soc": self.soc,
                    "BatteryVoltage": self.voltage() * (1.2 if "wrong_bcp" in s.misbehaviours else 1.0)},
            "BCS": {"MeasuredVoltage": volts, "MeasuredCurrent": -max(0.0, self.circuit.current),
                    "HighestCellVoltage": 3.95, "HighestCellGroup": 1, "Soc": round(self.soc), "RemainingTime": 30},
        }
        values = table.get(name, {})
        if name == "BRM":
            head = bytes([0x01, 0x01, 0x00, 0x03]) + (150 * 10).to_bytes(2, "little") \
                + round(s.rated_voltage * 10).to_bytes(2, "little")
            body = head + b"CATL" + bytes(4) + bytes([30, 6, 15]) + bytes(3) + bytes([1, 0xFF]) + b"LFV2A21K0G3000001"
            body += b"V2.01.00"
            return PGN["BRM"], body[:s.brm_length]
        message = db.get_message_by_name(name)
        data = bytes(message.encode(values))
        if name in PGN:
            return PGN[name], data
        if s.padded:
            data = data.ljust(8, b"\xff")
        return Frame(frame_id(PRIORITY[name], message.frame_id >> 8 & 0xFF00, CHARGER, BMS), data,
                              extended=True)

