"""The GB/T 27930-2015 charger sequence's vocabulary: timing budgets, phases, inputs, outputs, stop causes.

Budgets from ``hardware.md`` 3.5 and ``dc.md`` 2.3-2.4 (GB/T 27930-2015 chapter 8, chapter 10 and
Annex A as transcribed; GB/T 18487.1 as GB/T 34657.1 tests it).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from controller.domain.faults import Fault
from hal.can import Frame

DEFAULT_TIMEOUT = 5.0  # every message and stage unless stated
BHM_TIMEOUT = 5.0  # no BHM: a 2011 BMS; go on with CRM
BCL_TIMEOUT = 1.0  # BCL silent while charging: stop at once
BCS_TIMEOUT = 5.0
BRO_READY_TIMEOUT = 60.0  # BRO = 0xAA
BST_TIMEOUT, BSD_TIMEOUT = 5.0, 10.0  # after CST: the BMS's BST, then its BSD
PAUSE_LIMIT = 600.0  # paused (BSM charging not allowed) longer than 10 min: stop
RECONNECTS = 3
STOP_SLEW = 100.0  # A/s at least when stopping: past the time that takes (and a margin), K1/K2 open anyway
SAFE_VOLTAGE = 10.0  # outside K1/K2 before the insulation test
BLED_VOLTAGE = 60.0  # after the test, and after K1/K2 open
MATCH = 0.05  # measured battery voltage within 5 % of BCP's
#: Seconds after BRO 0xAA the outlet reading gets to show the battery: the car's relays have just closed and the
#: DC meter is polled, so the first reading may still be the discharged outlet's.
VOLTAGE_SETTLE = 1.0
PRECHARGE_BELOW = (1.0, 10.0)  # the output is set this far below the battery before K1/K2 close
PRECHARGE_TARGET = 5.0
INSULATION_TIMEOUT = 30.0  # vendor practice (dc.md 9: the standard gives none)

#: Message periods (s) while each is being sent. CTS (the charger's clock, optional) goes out as all 0xFF: the
#: station sends no time it cannot vouch for.
PERIODS = {"CHM": 0.25, "CRM": 0.25, "CTS": 0.5, "CML": 0.25, "CRO": 0.25, "CCS": 0.05, "CST": 0.01,
           "CSD": 0.25, "CEM": 0.25}


class Phase(enum.Enum):
    """Where the sequence is."""

    IDLE = "idle"
    SELF_CHECK = "lock, auxiliary power, outlet dead"
    HANDSHAKE = "CHM / BHM"
    INSULATION = "insulation test"
    RECOGNITION = "CRM / BRM"
    PARAMETERS = "BCP, CTS/CML, BRO"
    PRECHARGE = "voltage match and pre-charge"
    READY = "CRO until BCS and BCL"
    CHARGING = "charging"
    STOPPING = "CST: current down, K1/K2 open"
    STATISTICS = "BST / BSD / CSD"
    ERROR = "CEM"
    SHUTDOWN = "bleed, auxiliary power off, unlock"
    DONE = "done"


@dataclass
class Inputs:
    """What the sequence reads at each tick."""

    now: float
    connected: bool = False  # CC1 within 3.2-4.8 V
    locked: bool = False
    contactors_closed: bool = False
    outlet_voltage: float = 0.0  # outside K1/K2 (the vehicle side)
    stage_voltage: float = 0.0  # the power stage's own output (behind K1/K2)
    output_current: float = 0.0
    insulation_ohms: float | None = None  # a valid IMD reading while the test runs


@dataclass
class Outputs:
    """What the outputs should be after a tick."""

    aux: bool = False  # K3/K4: the vehicle's auxiliary 12 V
    lock: bool = False
    contactors: bool = False  # K1/K2
    bleed: bool = False
    power: tuple[float, float] | None = None  # (voltage, current limit); None: off
    insulation_test: float | None = None
    frames: list[Frame] = field(default_factory=list)


@dataclass(frozen=True)
class Stop:
    """Why a session ended: the CST field set, and the catalogue fault the station reports, if any."""

    reason: str
    cst: str = "ManualStop"  # ConditionReached | ManualStop | FaultStop | BmsStop
    fault: Fault | None = None
    cst_fault: str | None = None  # a CST fault field (ConnectorFault, EmergencyStop, ...)
    reconnect: bool = False  # a timeout that allows another handshake (not BST/BSD)
