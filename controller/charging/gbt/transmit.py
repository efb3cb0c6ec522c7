"""What a GB/T charger sends in each phase of its sequence, each message at its own period.

Periods from ``hardware.md`` 3.2: CHM, CRM, CML, CRO, CSD and CEM every 250 ms, CTS every 500 ms, CCS
every 50 ms, CST every 10 ms. Each is scheduled on its own absolute clock, re-anchored only if a tick
comes half a period late.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from controller.charging.gbt import frames as gbt
from controller.charging.gbt.model import PERIODS, Inputs, Phase, Stop
from controller.charging.j1939 import frame_id
from hal.can import Frame

if TYPE_CHECKING:
    from controller.charging.gbt.sequence import GbtSequence


class Transmitter:
    """The frames due, from the sequence's state."""

    def __init__(self, seq: GbtSequence) -> None:
        self.seq = seq
        self.due: dict[str, float] = {}

    def _send(self, name: str, now: float) -> bool:
        due = self.due.get(name, now)
        if now < due:
            return False
        self.due[name] = max(due + PERIODS[name], now - PERIODS[name] / 2)
        return True

    def frames(self, io: Inputs) -> list[Frame]:
        """The charger messages due at ``io.now`` in the sequence's phase."""
        seq = self.seq
        now, phase, out = io.now, seq.phase, []
        if phase == Phase.HANDSHAKE and self._send("CHM", now):
            out.append(gbt.encode("CHM", VersionMinor=1, VersionMajor=1))
        if phase == Phase.RECOGNITION and self._send("CRM", now):
            out.append(gbt.encode("CRM", Recognition=gbt.RECOGNISED if seq.brm else gbt.NOT_RECOGNISED,
                                  ChargerNumber=seq.charger_number, RegionCode=0xFFFFFF))
        if phase == Phase.PARAMETERS:
            caps = seq.capabilities
            if self._send("CTS", now):
                out.append(Frame(frame_id(6, 0x0700, gbt.BMS, gbt.CHARGER), b"\xff" * 7, extended=True))  # optional
            if self._send("CML", now):
                out.append(gbt.encode("CML", MaxOutputVoltage=caps.max_voltage, MinOutputVoltage=caps.min_voltage,
                                      MaxOutputCurrent=-min(seq.offer, caps.max_current, 400.0),
                                      MinOutputCurrent=0.0))
        if phase in (Phase.PRECHARGE, Phase.READY) and self._send("CRO", now):
            out.append(gbt.encode("CRO", Ready=gbt.READY if phase == Phase.READY else gbt.NOT_READY))
        if phase == Phase.CHARGING and self._send("CCS", now):
            paused = seq.bsm is not None and not seq.bsm.charging_allowed
            out.append(gbt.encode("CCS", OutputVoltage=max(0.0, io.outlet_voltage),
                                  OutputCurrent=-min(max(io.output_current, 0.0), 400.0),
                                  ChargingTime=int((now - seq.charging_since) // 60),
                                  ChargingAllowed=0 if paused else 1))
        # CST until the BMS's BSD: it answers a BST, and tells a BMS that stops first why the charger did.
        if phase in (Phase.STOPPING, Phase.STATISTICS) and not seq.bsd and self._send("CST", now):
            out.append(self._cst())
        if phase == Phase.STATISTICS and seq.bsd and self._send("CSD", now):
            out.append(gbt.encode("CSD", ChargingTime=int((now - seq.charging_since) // 60) if
                                  seq.charging_since else 0, Energy=min(seq.energy_wh / 1000, 6553.5),
                                  ChargerNumber=seq.charger_number))
        if phase == Phase.ERROR and self._send("CEM", now):
            flags = {n: seq.cem.get(n, 0) for n in ("BrmTimeout", "BcpTimeout", "BroTimeout", "BcsTimeout",
                                                      "BclTimeout", "BstTimeout", "BsdTimeout")}
            out.append(gbt.encode("CEM", **flags))
        return out

    def _cst(self) -> Frame:
        cause = self.seq.stop_cause or Stop("ended")
        fields = {n: 0 for n in ("ConditionReached", "ManualStop", "FaultStop", "BmsStop", "ChargerOverTemperature",
                                 "ConnectorFault", "InternalOverTemperature", "EnergyNotDeliverable",
                                 "EmergencyStop", "OtherFault", "CurrentMismatch", "VoltageAbnormal")}
        fields[cause.cst] = 1
        if cause.cst_fault:
            fields[cause.cst_fault] = 1
        elif cause.cst == "FaultStop":
            fields["OtherFault"] = 1
        return gbt.encode("CST", **fields)
