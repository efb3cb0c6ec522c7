"""The one configuration file: TOML, validated at start, every problem reported at once.

The schema is the dataclasses below. Field metadata says what a value may be
(``choices``, ``min``, ``max``); :func:`load_config` walks the file against
them and collects every problem as ``FILE: key.path = value: expected ...``.
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

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
    #: Amps per phase the site's supply allows all connectors together (0: no limit). Shared equally
    #: between the connectors with a transaction; one that would get less than 6 A waits (SuspendedEVSE).
    site_current_limit: float = _f(0.0, lo=0, hi=1000)


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
    #: MCP3008 channel on the low-half (negative peak) detector; the diode check needs it.
    adc_low_channel: int | None = _f(None, lo=0, hi=7)
    spi_port: int = _f(0, lo=0, hi=1)
    spi_device: int = _f(0, lo=0, hi=1)
    adc_volts_at_zero: float = -15.0
    adc_volts_at_full: float = 15.0
    poll_interval: float = _f(0.002, lo=0.0005, hi=0.05)
    debounce_samples: int = _f(2, lo=1, hi=50)
    #: A pilot read in no state's band, or not read at all, for this long (s) is a fault (a dead or stuck ADC).
    invalid_after: float = _f(0.02, lo=0.002, hi=1.0)
    #: The site ventilates (state D may charge); without it state D is a fault.
    ventilation: bool = False
    #: How long an EV may stay in C after the PWM is withdrawn before the contactor opens under load (IEC: 6 s).
    ev_stop_timeout: float = _f(6.0, lo=0.05, hi=6)
    #: Wake an EV that sits in B2 this long (s) with a state-F pulse; 0 disables the wake-up.
    wakeup_after: float = _f(0.0, lo=0, hi=3600)


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
class ProximitySection:
    """[connector.proximity]: a socket's PP-PE resistor read through the pilot's MCP3008."""

    driver: str = _f("mcp3008", choices=("mcp3008",))
    #: MCP3008 channel of the PP divider; unset for a tethered cable (no PP to read).
    adc_channel: int | None = _f(None, lo=0, hi=7)
    #: The divider's pull-up from Vref to PP, in ohms.
    pullup_ohms: float = _f(1000.0, lo=50, hi=100000)


@dataclass
class RcmSection:
    """[connector.rcm]: a residual current monitor (6 mA DC / 30 mA AC) on GPIO."""

    driver: str = _f("none", choices=("none", "gpio"))
    fault_pin: int = _f(5, lo=0, hi=27)
    fault_active_high: bool = True
    test_pin: int = _f(6, lo=0, hi=27)
    test_active_high: bool = True
    #: How long the module may take to trip once its test input is driven, and to release after.
    test_timeout: float = _f(1.0, lo=0.01, hi=15)
    release_timeout: float = _f(1.5, lo=0.01, hi=15)
    #: Repeat the self-test this often while idle (IEC 62955 asks for at least once a day).
    selftest_interval: float = _f(86400.0, lo=1, hi=86400)
    #: Re-close after a trip without an unplug, after ``reclose_delay`` s, at most ``reclose_attempts`` times.
    auto_reclose: bool = False
    reclose_delay: float = _f(300.0, lo=0.05, hi=3600)
    reclose_attempts: int = _f(3, lo=1, hi=10)


@dataclass
class LockSection:
    """[connector.lock]: a socket's cable lock motor (H-bridge on two pins) with a feedback switch."""

    driver: str = _f("none", choices=("none", "gpio"))
    lock_pin: int = _f(12, lo=0, hi=27)
    unlock_pin: int = _f(13, lo=0, hi=27)
    feedback_pin: int = _f(16, lo=0, hi=27)
    #: The feedback switch reads high when locked (else low when locked).
    feedback_active_high: bool = True
    #: Motor pulse length; the feedback must show the new position by its end.
    pulse: float = _f(0.3, lo=0.01, hi=3)
    #: At least this long between two moves (the motor is not rated for continuous duty).
    min_interval: float = _f(1.0, lo=0, hi=60)


@dataclass
class LedSection:
    """[connector.led]: an RGB status LED."""

    driver: str = _f("none", choices=("none", "gpio"))
    red_pin: int = _f(22, lo=0, hi=27)
    green_pin: int = _f(23, lo=0, hi=27)
    blue_pin: int = _f(24, lo=0, hi=27)
    active_high: bool = True


@dataclass
class TemperatureSection:
    """[connector.temperature]: a temperature input (1-Wire sensor file, millidegrees Celsius)."""

    driver: str = _f("none", choices=("none", "w1"))
    path: str = "/sys/bus/w1/devices/28-000000000000/temperature"
    poll_interval: float = _f(5.0, lo=0.01, hi=600)
    #: At or above ``derate_at`` the offer drops to ``derate_current``; at ``stop_at`` charging stops.
    derate_at: float = _f(60.0, lo=-40, hi=150)
    derate_current: float = _f(10.0, lo=6, hi=80)
    stop_at: float = _f(75.0, lo=-40, hi=150)
    #: Both levels clear this many degrees below where they set in.
    hysteresis: float = _f(5.0, lo=0, hi=30)


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
    #: Measured current above the offer by more than this margin (A) for ``overcurrent_grace`` s lowers
    #: the offer; overdrawing for a second grace period stops the session.
    overcurrent_margin: float = _f(2.0, lo=0.5, hi=20)
    overcurrent_grace: float = _f(7.0, lo=0.05, hi=60)
    pilot: PilotSection = _f(PilotSection())
    proximity: ProximitySection = _f(ProximitySection())
    contactor: ContactorSection = _f(ContactorSection())
    meter: MeterSection = _f(MeterSection())
    rcm: RcmSection = _f(RcmSection())
    lock: LockSection = _f(LockSection())
    led: LedSection = _f(LedSection())
    temperature: TemperatureSection = _f(TemperatureSection())


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
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read: {exc.strerror or exc}"]) from exc
    except UnicodeDecodeError as exc:
        raise ConfigError([f"{path}: not UTF-8 text (byte {exc.start}): save the file as UTF-8"]) from exc
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


def redact(url: str) -> str:
    """``url`` fit for a log line or a message: a password in it (``ws://id:secret@host``) becomes ``***``."""
    # By pattern, not by parsing: a URL that does not parse (a port out of range) must not show it either.
    return re.sub(r"^([a-zA-Z][a-zA-Z0-9+.-]*://[^:/@]*):[^@/]*@", r"\1:***@", url)


def csms_url_problem(url: str) -> str | None:
    """What keeps ``url`` from being a CSMS URL the station can connect to (None: nothing)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        return f"expected a ws:// or wss:// URL ({exc})"
    if parts.scheme not in ("ws", "wss") or not parts.hostname:
        return "expected a ws:// or wss:// URL"
    if parts.fragment or (port is not None and not 0 < port < 65536):
        return "expected a ws:// or wss:// URL without a #fragment"
    return None


def _check_rules(config: Config, source: str, problems: list[str]) -> None:
    if not config.connector:
        problems.append(f"{source}: connector: at least one [[connector]] table is required")
    if config.station.hardware != "sim" and not config.ocpp.csms_url:
        problems.append(f"{source}: ocpp.csms_url = '': expected a ws:// or wss:// URL (required on real hardware)")
    url = config.ocpp.csms_url
    problem = csms_url_problem(url) if url else None
    if problem:
        problems.append(f"{source}: ocpp.csms_url = {redact(url)!r}: {problem}")
    if config.ocpp.reconnect_max < config.ocpp.reconnect_min:
        problems.append(
            f"{source}: ocpp.reconnect_max = {config.ocpp.reconnect_max:g}: expected at least "
            f"ocpp.reconnect_min ({config.ocpp.reconnect_min:g})"
        )
    if not config.station.id or len(config.station.id) > 48 or "/" in config.station.id:
        problems.append(f"{source}: station.id = {config.station.id!r}: expected 1-48 characters without '/'")
    seen_ids: set[int] = set()
    pins: dict[int, str] = {}
    adc_channels: dict[tuple[int, int, int], str] = {}
    for i, conn in enumerate(config.connector):
        where = f"connector[{i}]"
        if conn.id in seen_ids:
            problems.append(f"{source}: {where}.id = {conn.id}: expected a connector id not used before")
        seen_ids.add(conn.id)
        for key, pin in _pins(conn):
            if pin is None:
                continue
            if pin in pins:
                problems.append(
                    f"{source}: {where}.{key} = {pin}: expected a GPIO not already used by {pins[pin]}"
                )
            pins[pin] = f"{where}.{key}"
        for key, pin, active_high in (("rcm.fault_pin", conn.rcm.fault_pin, conn.rcm.fault_active_high),
                                      ("lock.feedback_pin", conn.lock.feedback_pin, conn.lock.feedback_active_high)):
            device = key.split(".")[0]
            if getattr(conn, device).driver != "none" and active_high and pin in FIXED_PULL_UP:
                problems.append(f"{source}: {where}.{key} = {pin}: expected a GPIO without a fixed pull-up "
                                f"(GPIO2/3 have the I2C pull-ups; an active-high input needs a pull-down)")
        channels: dict[int, str] = {}
        for key, channel in (("pilot.adc_channel", conn.pilot.adc_channel),
                             ("pilot.adc_low_channel", conn.pilot.adc_low_channel),
                             ("proximity.adc_channel", conn.proximity.adc_channel)):
            if channel is None:
                continue
            owner = adc_channels.get((conn.pilot.spi_port, conn.pilot.spi_device, channel)) or channels.get(channel)
            if owner:
                problems.append(f"{source}: {where}.{key} = {channel}: expected an MCP3008 channel not already "
                                f"used by {owner}")
            channels[channel] = adc_channels[(conn.pilot.spi_port, conn.pilot.spi_device, channel)] = \
                f"{where}.{key}"
        if conn.temperature.driver != "none" and conn.temperature.stop_at <= conn.temperature.derate_at:
            problems.append(f"{source}: {where}.temperature.stop_at = {conn.temperature.stop_at:g}: expected more "
                            f"than derate_at ({conn.temperature.derate_at:g})")
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


#: Raspberry Pi GPIOs with fixed 1.8 kOhm pull-ups (I2C1 SDA/SCL).
FIXED_PULL_UP = (2, 3)


def _pins(conn: ConnectorSection) -> list[tuple[str, int | None]]:
    """Every GPIO a connector's config uses, with its key."""
    pins: list[tuple[str, int | None]] = [
        ("pilot.pwm_pin", conn.pilot.pwm_pin),
        ("contactor.pin", conn.contactor.pin),
        ("contactor.mirror_pin", conn.contactor.mirror_pin),
    ]
    if conn.rcm.driver != "none":
        pins += [("rcm.fault_pin", conn.rcm.fault_pin), ("rcm.test_pin", conn.rcm.test_pin)]
    if conn.lock.driver != "none":
        pins += [("lock.lock_pin", conn.lock.lock_pin), ("lock.unlock_pin", conn.lock.unlock_pin),
                 ("lock.feedback_pin", conn.lock.feedback_pin)]
    if conn.led.driver != "none":
        pins += [("led.red_pin", conn.led.red_pin), ("led.green_pin", conn.led.green_pin),
                 ("led.blue_pin", conn.led.blue_pin)]
    return pins


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
