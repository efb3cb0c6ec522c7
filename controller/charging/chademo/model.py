"""The CHAdeMO sequence's vocabulary: its timing budgets, phases, inputs, outputs and stop causes.

Every budget comes from ``hardware.md`` 2.3 and ``dc.md`` 1 and 6, where its source is named.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from controller.domain.faults import Fault
from hal.can import Frame

CYCLE = 0.1  # 0x108/0x109 period
FIRST_FRAME_TIMEOUT = 6.0  # d1 -> first EV frame (EVerest's extra, earlier check)
PERMISSION_TIMEOUT = 8.0  # d1 -> k and 0x102.5.0
COMM_TIMEOUT = 1.0  # 0x102 silent -> stop
INSULATION_TIMEOUT = 20.0  # k -> d2 (the whole cable check)
EV_CONTACTOR_TIMEOUT = 4.0  # d2 -> 0x102.5.3 = 0
FIRST_REQUEST_TIMEOUT = 4.0  # EV contactors closed -> request above 0
RAMP_DOWN = 0.5  # stop -> current at 5 A or less
EV_OPEN_TIMEOUT = 10.0  # 0x109.5.0 cleared -> 0x102.5.3 = 1 (T-time)
D2_TO_D1 = 0.5
SAFE_VOLTAGE = 10.0  # below it: EV contactors open, the outlet may be unlocked
BLED_VOLTAGE = 20.0  # below it after the insulation test: d2 may come on
V09_INLET_CLOSED = 50.0  # a 0.9 EV has no contactor flag: the inlet voltage tells


class Phase(enum.Enum):
    """Where the sequence is."""

    IDLE = "idle"
    WAIT_EV = "wait for the EV's frames"
    WAIT_PERMISSION = "wait for k and the EV's permission"
    CABLE_CHECK = "insulation test"
    WAIT_EV_CONTACTORS = "wait for the EV's contactors"
    WAIT_REQUEST = "wait for the first current request"
    CHARGING = "charging"
    RAMP_DOWN = "current down to 5 A"
    WAIT_EV_OPEN = "welding detection: wait for the EV's contactors to open"
    SHUTDOWN = "d2 off, then d1"
    DONE = "done"


class CheckStep(enum.Enum):
    """The insulation test's own steps."""

    LOCK = "lock"
    CONTACTORS = "close the DC contactors"
    TEST = "measure"
    BLEED = "bleed"


@dataclass
class Inputs:
    """What the sequence reads at each tick."""

    now: float
    k: bool = False  # vehicle charge permission (pin 4, the EV's switch k through the charger's j)
    plugged: bool = False  # pin 7
    locked: bool = False
    contactors_closed: bool = False
    outlet_voltage: float = 0.0
    output_current: float = 0.0
    insulation_ohms: float | None = None  # the IMD's valid reading once the test voltage stands; None: none yet


@dataclass
class Outputs:
    """What the outputs should be after a tick."""

    d1: bool = False
    d2: bool = False
    lock: bool = False
    bleed: bool = False
    power: tuple[float, float] | None = None  # (voltage target, current limit), None: off
    insulation_test: float | None = None  # the test voltage while the test runs
    contactors: bool = False
    frames: list[Frame] = field(default_factory=list)


class Blame(enum.Enum):
    """Which 0x109.5 flag a stop sets for the EV to read."""

    NONE = "none"
    CHARGER = "charger malfunction"  # 0x109.5.1
    BATTERY = "battery incompatible"  # 0x109.5.3
    SYSTEM = "charging system malfunction"  # 0x109.5.4: the EV side misbehaved (dc.md 1.4)


@dataclass(frozen=True)
class Stop:
    """Why a session ended; ``fault`` is the catalogue fault the station reports for it, if any."""

    reason: str
    fault: Fault | None = None
    blame: Blame = Blame.NONE
