"""CHAdeMO frames as typed values, through the layouts in ``chademo.dbc`` (read with cantools).

The EV sends 0x100 (limits), 0x101 (times), 0x102 (status) and, from 2.0, 0x110 (extended
functions); the charger answers with 0x108 (its limits), 0x109 (its status) and 0x118. Frames
with an id outside the layout (the V2X pair 0x200/0x201, a maker's 0x700) are not CHAdeMO
charging frames and decode to None; a frame of a known id that is too short raises
:class:`MalformedFrame`, which the session logs and ignores.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from typing import Any

import cantools
from cantools.database.can import Database

from hal.can import Frame

EV_LIMITS, EV_TIMES, EV_STATUS, EV_EXTENDED = 0x100, 0x101, 0x102, 0x110
CHARGER_LIMITS, CHARGER_STATUS, CHARGER_EXTENDED = 0x108, 0x109, 0x118


class MalformedFrame(ValueError):
    """A frame with a CHAdeMO id whose bytes do not fit its layout."""


class Protocol(enum.IntEnum):
    """0x102 byte 0 (the EVerest ieee2030 library maps these one lower: see dc.md 1.1)."""

    BEFORE_0_9 = 0
    V0_9 = 1
    V1 = 2
    V2 = 3


@cache
def database() -> Database:
    """The CHAdeMO layouts, loaded once."""
    text = files("controller.charging.chademo").joinpath("chademo.dbc").read_text(encoding="utf-8")
    db = cantools.database.load_string(text, database_format="dbc")
    assert isinstance(db, Database)
    return db


def signals(frame: Frame) -> dict[str, Any]:
    """Every field of a CHAdeMO frame by its name in ``chademo.dbc``; :class:`MalformedFrame` if it does not fit."""
    try:
        signals = database().decode_message(frame.id, frame.data, decode_choices=False)
    except Exception as exc:  # cantools raises several types for a short or odd frame
        raise MalformedFrame(f"CHAdeMO frame {frame}: {exc}") from None
    assert isinstance(signals, dict)
    return signals


@dataclass(frozen=True, slots=True)
class EvLimits:
    """0x100: the battery's limits."""

    min_current: int
    min_voltage: int
    max_voltage: int
    charged_rate_reference: int

    @classmethod
    def decode(cls, frame: Frame) -> EvLimits:
        s = signals(frame)
        return cls(s["MinChargeCurrent"], s["MinBatteryVoltage"], s["MaxBatteryVoltage"], s["ChargedRateReference"])


@dataclass(frozen=True, slots=True)
class EvTimes:
    """0x101: how long the EV allows charging to take, in seconds (None when it says nothing)."""

    max_charging_s: int | None
    estimated_min: int
    capacity_kwh: float

    @classmethod
    def decode(cls, frame: Frame) -> EvTimes:
        s = signals(frame)
        tens = int(s["MaxChargingTime10s"])
        seconds = tens if tens != 2550 else int(s["MaxChargingTimeMin"]) * 60
        return cls(seconds or None, int(s["EstimatedChargingTime"]), float(s["BatteryCapacity"]))


@dataclass(frozen=True, slots=True)
class EvStatus:
    """0x102: what the EV asks for and how it is."""

    protocol: int
    target_voltage: int
    current_request: int
    fault_over_voltage: bool
    fault_under_voltage: bool
    fault_current_deviation: bool
    fault_high_temperature: bool
    fault_voltage_deviation: bool
    charging_enabled: bool
    shift_not_park: bool
    system_fault: bool
    contactor_open: bool
    normal_stop_request: bool
    legacy_dynamic_control: bool
    discharge_capable: bool
    charged_rate: int

    @classmethod
    def decode(cls, frame: Frame) -> EvStatus:
        s = signals(frame)
        return cls(
            s["ProtocolNumber"], s["TargetVoltage"], s["CurrentRequest"],
            bool(s["FaultOverVoltage"]), bool(s["FaultUnderVoltage"]), bool(s["FaultCurrentDeviation"]),
            bool(s["FaultHighTemperature"]), bool(s["FaultVoltageDeviation"]),
            bool(s["ChargingEnabled"]), bool(s["ShiftNotPark"]), bool(s["SystemFault"]),
            bool(s["ContactorOpen"]), bool(s["NormalStopRequest"]), bool(s["LegacyDynamicControl"]),
            bool(s["DischargeCapable"]), s["ChargedRate"],
        )

    @property
    def faults(self) -> list[str]:
        """The EV's fault flags that are set, by name."""
        names = ("over_voltage", "under_voltage", "current_deviation", "high_temperature", "voltage_deviation")
        return [n for n in names if getattr(self, f"fault_{n}")] + (["system_fault"] if self.system_fault else [])


@dataclass(frozen=True, slots=True)
class EvExtended:
    """0x110 (2.0): the extended functions the EV asks for, and its 16-bit current request."""

    dynamic_control: bool
    high_current_control: bool
    high_voltage_control: bool
    current_request: int

    @classmethod
    def decode(cls, frame: Frame) -> EvExtended:
        s = signals(frame)
        return cls(bool(s["DynamicControl"]), bool(s["HighCurrentControl"]), bool(s["HighVoltageControl"]),
                   s["ExtendedCurrentRequest"])


@dataclass(frozen=True, slots=True)
class ChargerLimits:
    """0x108."""

    welding_detection: bool
    available_voltage: int
    available_current: int
    threshold_voltage: int

    def encode(self) -> Frame:
        """The frame, with every field clamped to its width."""
        return _encode(CHARGER_LIMITS, WeldingDetection=int(self.welding_detection),
                       AvailableVoltage=self.available_voltage, AvailableCurrent=min(self.available_current, 255),
                       ThresholdVoltage=self.threshold_voltage)


@dataclass(frozen=True, slots=True)
class ChargerStatus:
    """0x109."""

    protocol: int
    present_voltage: int
    present_current: int
    charging: bool
    malfunction: bool
    energizing: bool
    battery_incompatible: bool
    system_malfunction: bool
    stop_control: bool
    remaining_s: int | None = None

    def encode(self) -> Frame:
        """The frame; remaining time over 2540 s goes in minutes (byte 6 = 0xFF), as the layout says.

        An unknown remaining time is sent as 0xFF 0xFF, as chargers do before charging starts.
        """
        remaining = self.remaining_s
        if remaining is None:
            tens, minutes = 2550, 255
        elif remaining <= 2540:
            tens, minutes = remaining // 10 * 10, 0
        else:
            tens, minutes = 2550, min(remaining // 60, 255)
        return _encode(CHARGER_STATUS, ProtocolNumber=self.protocol,
                       PresentVoltage=max(0, min(self.present_voltage, 0xFFFF)),
                       PresentCurrent=max(0, min(self.present_current, 255)), DischargeCompatible=0,
                       Charging=int(self.charging), ChargerMalfunction=int(self.malfunction),
                       Energizing=int(self.energizing), BatteryIncompatible=int(self.battery_incompatible),
                       SystemMalfunction=int(self.system_malfunction), StopControl=int(self.stop_control),
                       RemainingTime10s=tens, RemainingTimeMin=minutes)


@dataclass(frozen=True, slots=True)
class ChargerExtended:
    """0x118 (2.0): the extended functions the charger grants."""

    dynamic_control: bool
    high_current_control: bool = False
    high_voltage_control: bool = False

    def encode(self) -> Frame:
        """The frame; "permission to reset max charging time" stays 1 (this charger never asks the EV to)."""
        return _encode(CHARGER_EXTENDED, DynamicControl=int(self.dynamic_control),
                       HighCurrentControl=int(self.high_current_control),
                       HighVoltageControl=int(self.high_voltage_control), ResetMaxChargingTime=1)


def _encode(frame_id: int, **signals: int) -> Frame:
    return Frame(frame_id, bytes(database().encode_message(frame_id, signals, strict=True)))
