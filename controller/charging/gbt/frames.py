"""GB/T 27930-2015 messages as typed values, through the layouts in ``gbt27930.dbc`` (read with cantools).

Charger (0x56) and BMS (0xF4) talk in 29-bit PDU1 frames at 250 kbit/s. Rules kept here:

- Currents are 0.1 A/bit with a -400 A offset and charging is negative; the typed values give
  charging current as a positive number.
- What the charger sends has the table's length (CHM 3 bytes, CRO 1, CCS 8 ...) and every bit no
  field uses set to 1 (7.9); what a BMS sends is taken at the table's length or padded to 8.
- BRM is 41 bytes, or 49 with the optional BMS software version; its VIN (bytes 25-41) is read
  as text. A 2011 BMS's shorter frames are accepted where the 2015 fields are only additions.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from typing import Any

import cantools
from cantools.database.can import Database, Message

from hal.can import Frame

CHARGER, BMS = 0x56, 0xF4
RECOGNISED, NOT_RECOGNISED = 0xAA, 0x00
READY, NOT_READY = 0xAA, 0x00


class MalformedFrame(ValueError):
    """A frame (or reassembled message) with a GB/T id whose bytes do not fit its layout."""


@cache
def database() -> Database:
    """The GB/T layouts, loaded once."""
    text = files("controller.charging.gbt").joinpath("gbt27930.dbc").read_text(encoding="utf-8")
    db = cantools.database.load_string(text, database_format="dbc")
    assert isinstance(db, Database)
    return db


def pgn_of(name: str) -> int:
    """The PGN of a message (PF << 8; PDU1)."""
    return database().get_message_by_name(name).frame_id >> 8 & 0xFF00


@cache
def _fill(message: Message) -> bytes:
    """All ones except the bits a field uses."""
    used = bytearray(message.length)
    for signal in message.signals:
        for bit in range(signal.start, signal.start + signal.length):
            used[bit // 8] |= 1 << bit % 8
    return bytes(~b & 0xFF for b in used)


def encode(name: str, **values: float) -> Frame:
    """A charger message, filled with 1s where no field is, at its table length."""
    message = database().get_message_by_name(name)
    data = bytes(message.encode(values, strict=True))
    filled = bytes(d | f for d, f in zip(data, _fill(message), strict=True))
    return Frame(message.frame_id, filled, extended=True)


def decode(name: str, data: bytes, *, shortest: int | None = None) -> dict[str, Any]:
    """The fields of a BMS message; ``shortest`` lets an older, shorter layout through (missing fields absent)."""
    message = database().get_message_by_name(name)
    need = message.length
    if len(data) < (shortest or need):
        raise MalformedFrame(f"GB/T {name}: {len(data)} bytes, at least {shortest or need} expected")
    body = bytes(data[:need])
    try:
        fields = message.decode(body, decode_choices=False, allow_truncated=len(body) < need)
    except Exception as exc:  # cantools raises several types for bytes that do not fit
        raise MalformedFrame(f"GB/T {name} {body.hex(' ')}: {exc}") from None
    assert isinstance(fields, dict)
    return fields


@dataclass(frozen=True, slots=True)
class Brm:
    """BMS and vehicle recognition."""

    version: tuple[int, int]
    battery_type: int
    rated_capacity_ah: float
    rated_voltage: float
    vin: str
    software: bytes | None

    @classmethod
    def decode(cls, data: bytes) -> Brm:
        if not 41 <= len(data) <= 49:
            raise MalformedFrame(f"GB/T BRM: {len(data)} bytes, 41 to 49 expected")
        s = decode("BRM", data.ljust(49, b"\xff"))
        vin = data[24:41].decode("ascii", errors="replace").strip("\x00\xff ")
        return cls((int(s["VersionMajor"]), int(s["VersionMinor"])), int(s["BatteryType"]),
                   float(s["RatedCapacity"]), float(s["RatedVoltage"]), vin, data[41:49] if len(data) == 49 else None)


@dataclass(frozen=True, slots=True)
class Bcp:
    """Battery charging parameters."""

    max_cell_voltage: float
    max_current: float  # charging, positive
    nominal_energy_kwh: float
    max_voltage: float
    max_temperature: float
    soc: float
    battery_voltage: float

    @classmethod
    def decode(cls, data: bytes) -> Bcp:
        s = decode("BCP", data)
        return cls(float(s["MaxCellVoltage"]), -float(s["MaxChargeCurrent"]), float(s["NominalEnergy"]),
                   float(s["MaxChargeVoltage"]), float(s["MaxTemperature"]), float(s["Soc"]),
                   float(s["BatteryVoltage"]))


@dataclass(frozen=True, slots=True)
class Bcl:
    """Battery charging demand."""

    voltage: float
    current: float  # charging, positive
    constant_current: bool

    @classmethod
    def decode(cls, data: bytes) -> Bcl:
        s = decode("BCL", data)
        return cls(float(s["VoltageDemand"]), -float(s["CurrentDemand"]), int(s["Mode"]) == 2)


@dataclass(frozen=True, slots=True)
class Bcs:
    """Battery charging status."""

    voltage: float
    current: float  # charging, positive
    soc: int
    remaining_min: int

    @classmethod
    def decode(cls, data: bytes) -> Bcs:
        # Some BMSs send BCS as one 8-byte frame, losing the remaining time's high byte (dc.md 3): keep the rest.
        s = decode("BCS", data, shortest=8)
        remaining = int(s["RemainingTime"]) if "RemainingTime" in s else 0
        return cls(float(s["MeasuredVoltage"]), -float(s["MeasuredCurrent"]), int(s["Soc"]), remaining)


@dataclass(frozen=True, slots=True)
class Bsm:
    """Battery status: which alarms are set, and whether charging is allowed (pause otherwise)."""

    alarms: tuple[str, ...]
    charging_allowed: bool

    @classmethod
    def decode(cls, data: bytes) -> Bsm:
        s = decode("BSM", data)
        names = ("CellVoltageState", "SocState", "OverCurrent", "OverTemperature", "Insulation", "ConnectorState")
        # 00 is normal; 01 / 10 abnormal (high, low); 11 not available.
        return cls(tuple(n for n in names if int(s[n]) in (1, 2)), int(s["ChargingAllowed"]) == 1)


@dataclass(frozen=True, slots=True)
class Bst:
    """Why the BMS stops: the reasons whose 2-bit field is 01."""

    reasons: tuple[str, ...]

    @classmethod
    def decode(cls, data: bytes) -> Bst:
        s = decode("BST", data)
        return cls(tuple(name for name, value in s.items() if int(value) == 1))
