"""MeterValue payloads (snake_case) from readings, filtered by the measurand keys.

A measurand key lists names, optionally with a phase: ``Current.Import`` means
every phase the connector has, ``Current.Import.L2`` only L2.
"""

from __future__ import annotations

from typing import Any

from hal.meter import MeterReading

_PHASES = ("L1", "L2", "L3")


def _wanted(measurands: list[str]) -> dict[str, set[str] | None]:
    """measurand -> phases asked for (None: all the connector has)."""
    wanted: dict[str, set[str] | None] = {}
    for item in measurands:
        name, dot, phase = item.rpartition(".L")
        if dot and phase in ("1", "2", "3", "1-N", "2-N", "3-N"):
            current = wanted.get(name, set())
            if current is not None:
                current.add("L" + phase.removesuffix("-N"))
                wanted[name] = current
        else:
            wanted[item] = None
    return wanted


def sampled_values(reading: MeterReading, measurands: list[str], phases: int, context: str) -> list[dict[str, Any]]:
    """The sampledValue list for one reading."""
    wanted = _wanted(measurands)
    values: list[dict[str, Any]] = []

    def add(measurand: str, value: str, unit: str, phase: str | None = None) -> None:
        entry: dict[str, Any] = {"value": value, "context": context, "measurand": measurand, "unit": unit}
        if phase is not None:
            entry["phase"] = phase
        values.append(entry)

    if "Energy.Active.Import.Register" in wanted:
        add("Energy.Active.Import.Register", f"{reading.energy_wh:.0f}", "Wh")
    if "Power.Active.Import" in wanted and reading.power_w is not None:
        add("Power.Active.Import", f"{reading.power_w:.1f}", "W")
    for i, phase in enumerate(_PHASES[:phases]):
        amps_phases, volt_phases = wanted.get("Current.Import", set()), wanted.get("Voltage", set())
        amps, volts = reading.current[i], reading.voltage[i]
        if "Current.Import" in wanted and (amps_phases is None or phase in amps_phases) and amps is not None:
            add("Current.Import", f"{amps:.2f}", "A", phase)
        if "Voltage" in wanted and (volt_phases is None or phase in volt_phases) and volts is not None:
            add("Voltage", f"{volts:.1f}", "V", f"{phase}-N")
    return values


def meter_value(reading: MeterReading, timestamp: str, phases: int, measurands: list[str],
                context: str = "Sample.Periodic") -> dict[str, Any]:
    """One MeterValue: a timestamp and the sampled values."""
    return {"timestamp": timestamp, "sampled_value": sampled_values(reading, measurands, phases, context)}
