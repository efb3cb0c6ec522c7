"""The one configuration file: TOML, validated at start, every problem reported at once.

The schema is the dataclasses in :mod:`controller.config.sections` (and :mod:`~controller.config.dc` for a
DC connector). Field metadata says what a value may be (``choices``, ``min``, ``max``); :func:`load_config`
walks the file against them, then checks the rules between keys (:mod:`~controller.config.rules`), and
collects every problem as ``FILE: key.path = value: expected ...``.
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
import types
import typing
from pathlib import Path
from typing import Any

from controller.config.dc import CanSection, DcIoSection, DcPowerSection, ImdSection
from controller.config.rules import ConfigError, check_rules, csms_url_problem, redact
from controller.config.sections import (
    ApiSection,
    Config,
    ConnectorSection,
    ContactorSection,
    FirmwareSection,
    LedSection,
    LockSection,
    MeterSection,
    OcppSection,
    PilotSection,
    ProximitySection,
    RcmSection,
    RfidSection,
    SimSection,
    StationSection,
    TemperatureSection,
)

__all__ = [
    "INSTALLED_CONFIG", "ApiSection", "CanSection", "Config", "ConfigError", "ConnectorSection", "ContactorSection",
    "DcIoSection", "DcPowerSection",
    "FirmwareSection", "ImdSection", "LedSection", "LockSection", "MeterSection", "OcppSection", "PilotSection",
    "ProximitySection", "RcmSection", "RfidSection", "SimSection", "StationSection", "TemperatureSection",
    "config_path",
    "csms_url_problem", "default_config", "load_config", "parse_config", "redact",
]


#: Where the installer puts the charger's config (systemd/install.sh); the tools read it when given none.
INSTALLED_CONFIG = "/etc/evse/config.toml"


def config_path(given: str | None) -> str | None:
    """``given``, else the installed config where there is one, else None (the tools' default)."""
    return given or (INSTALLED_CONFIG if Path(INSTALLED_CONFIG).exists() else None)


def load_config(path: str | Path, *, csms_url: str | None = None) -> Config:
    """Read and validate a config file; raises ConfigError listing every problem.

    ``csms_url`` (``evse run --csms``) stands in for the file's ``ocpp.csms_url``. A file must say what it runs
    on (``station.hardware``): a real build's config without ``[station]`` would otherwise run simulated.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read: {exc.strerror or exc}"]) from exc
    except UnicodeDecodeError as exc:
        raise ConfigError([f"{path}: not UTF-8 text (byte {exc.start}): save the file as UTF-8"]) from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{path}: not valid TOML: {exc}"]) from exc
    station, ocpp = data.get("station"), data.get("ocpp", {})
    if csms_url and isinstance(ocpp, dict):
        data["ocpp"] = {**ocpp, "csms_url": csms_url}
    unsaid = [] if isinstance(station, dict) and "hardware" in station else [
        f'{path}: station.hardware: not set: expected "pi" for a real charger or "sim" for simulated buses '
        "(a config file says which; [station] hardware = ...)"]
    try:
        config = parse_config(data, str(path))
    except ConfigError as exc:
        raise ConfigError(unsaid + exc.problems) from None
    if unsaid:
        raise ConfigError(unsaid)
    return config


def parse_config(data: dict[str, Any], source: str) -> Config:
    """Validate parsed TOML against the schema and the cross-field rules."""
    problems: list[str] = []
    config = _build(Config, data, "", source, problems)
    config.source = source
    if not problems:
        check_rules(config, source, problems)
    if problems:
        labels = _connector_labels(data)
        raise ConfigError([CONNECTOR_KEY.sub(lambda m: labels.get(m[1], m[0]), p) for p in problems])
    return config


#: A connector in a problem's key as the checks write it: by its place in the file, from 0.
CONNECTOR_KEY = re.compile(r"\bconnector\[(\d+)\]")


def _connector_labels(data: dict[str, Any]) -> dict[str, str]:
    """Connector position -> how a problem names it: ``connector[id=2]``, or ``connector[#3]`` (the third
    [[connector]] table) where its id is missing, not a number or used twice."""
    tables = data.get("connector")
    if not isinstance(tables, list):
        return {}
    ids = [t.get("id") if isinstance(t, dict) else None for t in tables]
    usable = [i if isinstance(i, int) and not isinstance(i, bool) and ids.count(i) == 1 else None for i in ids]
    return {str(n): f"connector[id={i}]" if i is not None else f"connector[#{n + 1}]" for n, i in enumerate(usable)}


def _build(cls: type, data: Any, prefix: str, source: str, problems: list[str], base: Any = None) -> Any:
    """``cls`` from a table; keys not given keep ``base``'s values (the field's default section)."""
    base = cls() if base is None else base
    if not isinstance(data, dict):
        problems.append(f"{source}: {prefix.rstrip('.') or '(top level)'}: expected a table")
        return base
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if not f.metadata.get("internal")}
    for key in data:
        if key not in fields:
            problems.append(
                f"{source}: {prefix}{key}: unknown key; expected one of {', '.join(sorted(fields))}"
            )
    values: dict[str, Any] = {}
    for name, fld in fields.items():
        if name not in data:
            continue
        key = f"{prefix}{name}"
        hint = hints[name]
        raw = data[name]
        origin = typing.get_origin(hint)
        if dataclasses.is_dataclass(hint):
            values[name] = _build(typing.cast(type, hint), raw, f"{key}.", source, problems, getattr(base, name))
        elif origin is list and dataclasses.is_dataclass(typing.get_args(hint)[0]):
            item_cls = typing.get_args(hint)[0]
            if not isinstance(raw, list):
                problems.append(f"{source}: {key} = {raw!r}: expected an array of tables ([[{key}]])")
                continue
            values[name] = [_build(item_cls, item, f"{key}[{i}].", source, problems)
                            for i, item in enumerate(raw)]
        elif origin is list:
            item = typing.get_args(hint)[0]
            problem = None if isinstance(raw, list) else "an array"
            problem = problem or next((p for v in raw if (p := _check_scalar(v, item, fld.metadata))), None)
            if problem:
                problems.append(f"{source}: {key} = {raw!r}: expected an array, each item {problem}"
                                if isinstance(raw, list) else f"{source}: {key} = {raw!r}: expected {problem}")
            else:
                values[name] = list(raw)
        elif origin is dict:
            scalar = (str, int, float, bool)
            if not isinstance(raw, dict) or not all(isinstance(v, scalar) for v in raw.values()):
                problems.append(f"{source}: {key} = {raw!r}: expected an inline table of plain values "
                                f"(such as {{ name = 1 }})")
            else:
                values[name] = dict(raw)
        else:
            problem = _check_scalar(raw, hint, fld.metadata)
            if problem:
                problems.append(f"{source}: {key} = {raw!r}: expected {problem}")
            else:
                values[name] = float(raw) if hint is float else raw
    return dataclasses.replace(base, **values)


def _check_scalar(value: Any, hint: Any, meta: Any) -> str | None:
    allowed = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    allowed = tuple(a for a in allowed if a is not type(None))
    kind = allowed[0]
    names = {str: "a string", int: "an integer", float: "a number", bool: "true or false"}
    ok = (
        isinstance(value, bool) if kind is bool
        else isinstance(value, int) and not isinstance(value, bool) if kind is int
        else isinstance(value, int | float) and not isinstance(value, bool) if kind is float
        else isinstance(value, kind)
    )
    if not ok:
        return names.get(kind, kind.__name__)
    choices = meta.get("choices")
    if choices is not None and value not in choices:
        return "one of " + ", ".join(str(c) for c in choices)
    lo, hi = meta.get("min"), meta.get("max")
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        return f"{names[kind]} from {lo:g} to {hi:g}"
    return None


# The embedded default: simulated hardware, one connector, and a meter sample every
# 5 s so a short demo shows MeterValues. config/sim.toml says the same (a test keeps them equal).
SIM_DEFAULTS: dict[str, Any] = {
    "station": {"hardware": "sim", "state_dir": "./state"},
    "ocpp": {"meter_value_sample_interval": 5},
    "connector": [{"id": 1, "pilot": {"adc_low_channel": 1}, "contactor": {"mirror_pin": 27}}],
}


def default_config() -> Config:
    """The configuration ``evse demo`` and ``evse-hil`` use when given none."""
    return parse_config(SIM_DEFAULTS, "<built-in sim defaults>")
