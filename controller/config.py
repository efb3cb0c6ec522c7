"""The one configuration file: TOML, validated at start, every problem reported at once.

The schema is the dataclasses below. Field metadata says what a value may be
(``choices``, ``min``, ``max``); :func:`load_config` walks the file against
them and collects every problem as ``FILE: key.path = value: expected ...``.
"""

from __future__ import annotations

import dataclasses
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hal.errors import HalConfigError
from hal.meter.regmap import load_register_map


class ConfigError(Exception):
    """The config has problems; ``problems`` lists each as one readable line."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def _f(default: Any, *, choices: tuple[Any, ...] | None = None, lo: float | None = None,
       hi: float | None = None) -> Any:
    meta = {"choices": choices, "min": lo, "max": hi}
    if isinstance(default, list):
        return field(default_factory=list, metadata=meta)
    if dataclasses.is_dataclass(default):
        return field(default_factory=type(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class StationSection:
    """[station]: who the charger is and what it runs on."""

    id: str = "SIM-0001"
    vendor: str = "evse-controller"
    model: str = "AC-1"
    serial_number: str = ""
    hardware: str = _f("sim", choices=("sim", "pi"))
    state_dir: str = "/var/lib/evse"
    #: How often a running transaction's meter reading is written to disk (what a PowerLoss stop reports).
    #: Each write is an fsync: every 10 s spares SD cards while losing at most 10 s of billing on power loss.
    reading_persist_interval: float = _f(10.0, lo=0, hi=600)


@dataclass
class OcppSection:
    """[ocpp]: the CSMS connection."""

    csms_url: str = ""
    version: str = _f("1.6", choices=("1.6",))
    heartbeat_interval: int = _f(300, lo=1, hi=86400)
    meter_value_sample_interval: int = _f(60, lo=0, hi=86400)
    response_timeout: float = _f(30.0, lo=1, hi=600)
    connect_timeout: float = _f(10.0, lo=1, hi=600)
    reconnect_min: float = _f(1.0, lo=0.05, hi=3600)
    reconnect_max: float = _f(60.0, lo=0.05, hi=3600)


@dataclass
class RfidSection:
    """[rfid]: the card reader shared by all connectors."""

    driver: str = _f("pn532", choices=("pn532", "rdm6300", "none"))
    port: str = "/dev/serial0"
    baudrate: int | None = _f(None, choices=(2400, 4800, 9600, 19200, 38400, 57600, 115200, 230400))
    poll_interval: float = _f(0.1, lo=0.01, hi=5)


@dataclass
class PilotSection:
    """[connector.pilot]: PWM pin and the ADC that reads the pilot voltage."""

    driver: str = _f("gpio", choices=("gpio",))
    pwm_pin: int = _f(18, lo=0, hi=27)
    pwm_active_high: bool = True
    adc_channel: int = _f(0, lo=0, hi=7)
    spi_port: int = _f(0, lo=0, hi=1)
    spi_device: int = _f(0, lo=0, hi=1)
    adc_volts_at_zero: float = -15.0
    adc_volts_at_full: float = 15.0
    poll_interval: float = _f(0.002, lo=0.0005, hi=0.05)
    debounce_samples: int = _f(2, lo=1, hi=50)


@dataclass
class ContactorSection:
    """[connector.contactor]: coil output and optional mirror contact."""

    driver: str = _f("gpio", choices=("gpio",))
    pin: int = _f(17, lo=0, hi=27)
    active_high: bool = True
    mirror_pin: int | None = _f(None, lo=0, hi=27)
    mirror_type: str = _f("nc", choices=("nc", "no"))
    #: How long the mirror contact may lag the coil before a mismatch is a fault (contactor release time).
    feedback_delay: float = _f(0.2, lo=0.02, hi=2)
    #: Close and open once at start-up (only with no vehicle connected) to prove the mirror contact follows.
    self_test: bool = True


@dataclass
class MeterSection:
    """[connector.meter]: the energy meter and its bus."""

    driver: str = _f("modbus", choices=("modbus",))
    model: str = "sdm630"
    transport: str = _f("rtu", choices=("rtu", "tcp"))
    port: str = "/dev/ttyUSB0"
    baudrate: int = _f(9600, choices=(1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200))
    parity: str = _f("N", choices=("N", "E", "O"))
    stopbits: int = _f(1, choices=(1, 2))
    bytesize: int = _f(8, choices=(7, 8))
    host: str = "127.0.0.1"
    tcp_port: int = _f(502, lo=1, hi=65535)
    address: int = _f(1, lo=1, hi=247)
    timeout: float = _f(0.5, lo=0.05, hi=10)
    poll_interval: float = _f(1.0, lo=0.1, hi=60)
    #: No good reading for this long means the meter is lost.
    loss_timeout: float = _f(5.0, lo=0.2, hi=600)
    #: A lost meter stops the session ("stop"), or charging goes on with the fault flagged ("continue").
    loss_policy: str = _f("stop", choices=("stop", "continue"))


@dataclass
class ConnectorSection:
    """[[connector]]: one charging outlet."""

    id: int = _f(1, lo=1, hi=16)
    max_current: float = _f(32.0, lo=6, hi=80)
    phases: int = _f(3, choices=(1, 3))
    pilot: PilotSection = _f(PilotSection())
    contactor: ContactorSection = _f(ContactorSection())
    meter: MeterSection = _f(MeterSection())


@dataclass
class Config:
    """The whole configuration."""

    station: StationSection = _f(StationSection())
    ocpp: OcppSection = _f(OcppSection())
    rfid: RfidSection = _f(RfidSection())
    connector: list[ConnectorSection] = _f([])
    #: Where the config came from (not a key in the file).
    source: str = field(default="<defaults>", metadata={"internal": True})


def load_config(path: str | Path) -> Config:
    """Read and validate a config file; raises ConfigError listing every problem."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read: {exc.strerror or exc}"]) from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{path}: not valid TOML: {exc}"]) from exc
    return parse_config(data, str(path))


def parse_config(data: dict[str, Any], source: str) -> Config:
    """Validate parsed TOML against the schema and the cross-field rules."""
    problems: list[str] = []
    config = _build(Config, data, "", source, problems)
    config.source = source
    if not problems:
        _check_rules(config, source, problems)
    if problems:
        raise ConfigError(problems)
    return config


def _build(cls: type, data: Any, prefix: str, source: str, problems: list[str]) -> Any:
    if not isinstance(data, dict):
        problems.append(f"{source}: {prefix.rstrip('.') or '(top level)'}: expected a table")
        return cls()
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
        if dataclasses.is_dataclass(hint):
            values[name] = _build(typing.cast(type, hint), raw, f"{key}.", source, problems)
        elif typing.get_origin(hint) is list:
            item_cls = typing.get_args(hint)[0]
            if not isinstance(raw, list):
                problems.append(f"{source}: {key} = {raw!r}: expected an array of tables ([[{key}]])")
                continue
            values[name] = [_build(item_cls, item, f"{key}[{i}].", source, problems)
                            for i, item in enumerate(raw)]
        else:
            problem = _check_scalar(raw, hint, fld.metadata)
            if problem:
                problems.append(f"{source}: {key} = {raw!r}: expected {problem}")
            else:
                values[name] = float(raw) if hint is float else raw
    return cls(**values)


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


def _check_rules(config: Config, source: str, problems: list[str]) -> None:
    if not config.connector:
        problems.append(f"{source}: connector: at least one [[connector]] table is required")
    if config.station.hardware != "sim" and not config.ocpp.csms_url:
        problems.append(f"{source}: ocpp.csms_url = '': expected a ws:// or wss:// URL (required on real hardware)")
    url = config.ocpp.csms_url
    if url and not url.startswith(("ws://", "wss://")):
        problems.append(f"{source}: ocpp.csms_url = {url!r}: expected a ws:// or wss:// URL")
    if config.ocpp.reconnect_max < config.ocpp.reconnect_min:
        problems.append(
            f"{source}: ocpp.reconnect_max = {config.ocpp.reconnect_max:g}: expected at least "
            f"ocpp.reconnect_min ({config.ocpp.reconnect_min:g})"
        )
    if not config.station.id or len(config.station.id) > 48 or "/" in config.station.id:
        problems.append(f"{source}: station.id = {config.station.id!r}: expected 1-48 characters without '/'")
    seen_ids: set[int] = set()
    pins: dict[int, str] = {}
    for i, conn in enumerate(config.connector):
        where = f"connector[{i}]"
        if conn.id in seen_ids:
            problems.append(f"{source}: {where}.id = {conn.id}: expected a connector id not used before")
        seen_ids.add(conn.id)
        for key, pin in (
            ("pilot.pwm_pin", conn.pilot.pwm_pin),
            ("contactor.pin", conn.contactor.pin),
            ("contactor.mirror_pin", conn.contactor.mirror_pin),
        ):
            if pin is None:
                continue
            if pin in pins:
                problems.append(
                    f"{source}: {where}.{key} = {pin}: expected a GPIO not already used by {pins[pin]}"
                )
            pins[pin] = f"{where}.{key}"
        if conn.pilot.adc_volts_at_full <= conn.pilot.adc_volts_at_zero:
            problems.append(
                f"{source}: {where}.pilot.adc_volts_at_full = {conn.pilot.adc_volts_at_full:g}: "
                f"expected more than adc_volts_at_zero ({conn.pilot.adc_volts_at_zero:g})"
            )
        try:
            load_register_map(conn.meter.model)
        except HalConfigError as exc:
            problems.append(f"{source}: {where}.meter.model = {conn.meter.model!r}: {exc}")
    if sorted(seen_ids) != list(range(1, len(seen_ids) + 1)) and not any(
        "connector id" in p for p in problems
    ):
        problems.append(
            f"{source}: connector ids = {sorted(seen_ids)}: "
            f"expected 1..{len(seen_ids)} (OCPP numbers connectors from 1)"
        )


# The embedded default: simulated hardware, one connector, and a meter sample every
# 5 s so a short demo shows MeterValues. config/sim.toml says the same (a test keeps them equal).
SIM_DEFAULTS: dict[str, Any] = {
    "station": {"hardware": "sim", "state_dir": "./state"},
    "ocpp": {"meter_value_sample_interval": 5},
    "connector": [{"id": 1, "contactor": {"mirror_pin": 27}}],
}


def default_config() -> Config:
    """The configuration ``evse demo`` and ``evse-hil`` use when given none."""
    return parse_config(SIM_DEFAULTS, "<built-in sim defaults>")
