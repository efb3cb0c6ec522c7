"""The rules between config keys: what a single key's type and range cannot say.

Each problem is one line naming the file, the key, its value and what was expected. The GPIO and
MCP3008 channel checks cover every connector together (two devices on one pin is a wiring fault).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from controller.config.dc import PROTOCOL_BITRATE
from controller.config.sections import BOARD_DRIVERS, Config, ConnectorSection
from controller.config.wiring import connector_pins, reader_baud_problem, wiring_rules
from hal.errors import HalConfigError
from hal.meter.regmap import load_register_map

#: Records one problem: the key, the value as written, what was expected.
Problem = Callable[[str, object, str], None]


class ConfigError(Exception):
    """The config has problems; ``problems`` lists each as one readable line."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def redact(url: str) -> str:
    """``url`` fit for a log line or a message: a password in it (``ws://id:secret@host``) becomes ``***``."""
    # By pattern, not by parsing: a URL that does not parse (a port out of range) must not show it either.
    return re.sub(r"^([a-zA-Z][a-zA-Z0-9+.-]*://[^:/@]*):[^@/]*@", r"\1:***@", url)


#: ``ocpp.csms_url`` (or ``--csms``) for a test charge against the CSMS an installed package brings along.
BUILTIN_CSMS = "builtin"


def csms_url_problem(url: str) -> str | None:
    """What keeps ``url`` from being a CSMS URL the station can connect to (None: nothing)."""
    if url == BUILTIN_CSMS:
        return None
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


def api_listen_problem(listen: str) -> str | None:
    """What keeps ``listen`` from being a HOST:PORT the status API can serve on (None: nothing)."""
    host, _, port = listen.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        return "expected HOST:PORT, such as 127.0.0.1:8080 (0.0.0.0:8080 for every interface)"
    return None


def check_rules(config: Config, source: str, problems: list[str]) -> None:
    """Append every cross-key problem of ``config`` to ``problems``."""
    def bad(key: str, value: object, expected: str) -> None:
        problems.append(f"{source}: {key} = {value}: expected {expected}")

    _station_rules(config, source, problems)
    seen_ids: set[int] = set()
    pins: dict[int, str] = {}
    adc_channels: dict[tuple[int, int, int], str] = {}
    buses: dict[tuple[str, str], str] = {}
    for i, conn in enumerate(config.connector):
        where = f"connector[{i}]"
        if conn.id in seen_ids:
            bad(f"{where}.id", conn.id, "a connector id not used before")
        seen_ids.add(conn.id)
        for key, pin in connector_pins(conn):
            if pin is None:
                continue
            if pin in pins and not (key == W1 and pins[pin].endswith(W1)):  # sensors share one 1-Wire bus
                bad(f"{where}.{key}", pin, f"a GPIO not already used by {pins[pin]}")
            pins.setdefault(pin, f"{where}.{key}")
        for key, pin, active_high in _active_high_inputs(conn):
            if active_high and pin in FIXED_PULL_UP:
                bad(f"{where}.{key}", pin, "a GPIO without a fixed pull-up "
                    "(GPIO2/3 have the I2C pull-ups; an active-high input needs a pull-down)")
        channels: dict[int, str] = {}
        for key, spi, channel in _adc_channels(conn):
            if channel is None:
                continue
            owner = adc_channels.get((*spi, channel)) or channels.get(channel)
            if owner:
                bad(f"{where}.{key}", channel, f"an MCP3008 channel not already used by {owner}")
            channels[channel] = adc_channels[(*spi, channel)] = f"{where}.{key}"
        if conn.temperature.driver != "none" and conn.temperature.stop_at <= conn.temperature.derate_at:
            bad(f"{where}.temperature.stop_at", f"{conn.temperature.stop_at:g}",
                f"more than derate_at ({conn.temperature.derate_at:g})")
        try:
            current = load_register_map(conn.meter.model).current
        except HalConfigError as exc:
            problems.append(f"{source}: {where}.meter.model = {conn.meter.model!r}: {exc}")
            current = None
        if current is not None and current != ("dc" if conn.dc else "ac"):
            bad(f"{where}.meter.model", repr(conn.meter.model),
                f"{'a DC' if conn.dc else 'an AC'} meter for a connector of kind {conn.kind!r} (this map measures "
                f"{current.upper()})")
        if conn.dc:
            _dc_rules(conn, where, buses, bad)
        else:
            _ac_rules(conn, where, bad, config.station.hardware)
    if sorted(seen_ids) != list(range(1, len(seen_ids) + 1)) and not any(
        "connector id" in p for p in problems
    ):
        bad("connector ids", sorted(seen_ids), f"1..{len(seen_ids)} (OCPP numbers connectors from 1)")
    if config.station.hardware == "pi":
        wiring_rules(config, [f"connector[{i}]" for i in range(len(config.connector))], bad)
    baud = reader_baud_problem(config)
    if baud:
        bad("rfid.baudrate", config.rfid.baudrate, baud)


def _station_rules(config: Config, source: str, problems: list[str]) -> None:
    if not config.connector:
        problems.append(f"{source}: connector: at least one [[connector]] table is required")
    if config.station.hardware != "sim" and not config.ocpp.csms_url:
        problems.append(f"{source}: ocpp.csms_url = '': expected a ws:// or wss:// URL, or 'builtin' for a test "
                        "charge against the built-in CSMS (required on real hardware; --csms gives one too)")
    if config.sim.external and config.station.hardware != "sim":
        problems.append(f"{source}: sim.external = {config.sim.external!r}: expected [] unless station.hardware = "
                        "'sim' (on real hardware every bus is the configured one already)")
    url = config.ocpp.csms_url
    problem = csms_url_problem(url) if url else None
    if problem:
        problems.append(f"{source}: ocpp.csms_url = {redact(url)!r}: {problem}")
    try:
        ZoneInfo(config.station.timezone)
    except (ValueError, ZoneInfoNotFoundError):
        problems.append(f"{source}: station.timezone = {config.station.timezone!r}: expected an IANA time zone "
                        "such as 'Europe/Berlin' or 'UTC' (see /usr/share/zoneinfo)")
    releases = config.firmware.releases_dir
    if releases and not releases.startswith("/"):
        problems.append(f"{source}: firmware.releases_dir = {releases!r}: expected an absolute path such as "
                        "'/opt/evse' (the service starts from it whatever its working directory)")
    if config.ocpp.reconnect_max < config.ocpp.reconnect_min:
        problems.append(
            f"{source}: ocpp.reconnect_max = {config.ocpp.reconnect_max:g}: expected at least "
            f"ocpp.reconnect_min ({config.ocpp.reconnect_min:g})"
        )
    password = config.ocpp.basic_auth_password
    if password and not 16 <= len(password) <= 40:
        problems.append(f"{source}: ocpp.basic_auth_password = ({len(password)} characters): expected 16-40 "
                        "characters (OCPP's passwordString)")
    for key in ("ca_file", "client_cert_file", "client_key_file"):
        value = getattr(config.ocpp, key)
        if value and not Path(value).is_file():
            problems.append(f"{source}: ocpp.{key} = {value!r}: expected a PEM file that exists")
    root = config.firmware.manufacturer_root_file
    if root and not Path(root).is_file():
        problems.append(f"{source}: firmware.manufacturer_root_file = {root!r}: expected a PEM file that exists")
    if bool(config.ocpp.client_cert_file) != bool(config.ocpp.client_key_file):
        problems.append(f"{source}: ocpp.client_key_file = {config.ocpp.client_key_file!r}: expected a key file "
                        "with ocpp.client_cert_file, and neither without it")
    wanted = config.ocpp.security_profile
    scheme = url.split("://", 1)[0] if url else ""
    if wanted >= 2 and scheme == "ws":
        problems.append(f"{source}: ocpp.security_profile = {wanted}: expected a wss:// ocpp.csms_url (TLS)")
    if wanted in (0, 1) and scheme == "wss":
        problems.append(f"{source}: ocpp.security_profile = {wanted}: expected a ws:// ocpp.csms_url (no TLS)")
    if wanted in (1, 2) and not password:
        problems.append(f"{source}: ocpp.security_profile = {wanted}: expected ocpp.basic_auth_password "
                        "(HTTP Basic)")
    if wanted == 3 and not config.ocpp.client_cert_file:
        problems.append(f"{source}: ocpp.security_profile = 3: expected ocpp.client_cert_file and "
                        "client_key_file (a client certificate)")
    listen = config.api.listen
    listen_problem = api_listen_problem(listen) if listen else None
    if listen_problem:
        problems.append(f"{source}: api.listen = {listen!r}: {listen_problem}")
    station_id = config.station.id
    if not STATION_ID.fullmatch(station_id):
        problems.append(f"{source}: station.id = {station_id!r}: expected 1-48 of the characters A-Z a-z 0-9 "
                        "* - _ = : + | @ . (OCPP's identifierString: the id is the last segment of the CSMS URL)")
    elif ":" in station_id and password:
        problems.append(f"{source}: station.id = {station_id!r}: expected no ':' with ocpp.basic_auth_password "
                        "(HTTP Basic sends the id as the user name, which ends at the first ':')")


def _board_rules(conn: ConnectorSection, where: str, bad: Problem) -> None:
    board = conn.on_board
    drivers = {"pilot": conn.pilot.driver, "contactor": conn.contactor.driver}
    for role, driver in drivers.items():
        if (driver in BOARD_DRIVERS) != board or (board and driver != conn.pilot.driver):
            bad(f"{where}.{role}.driver", repr(driver), f"the board's driver for the pilot and the contactor alike "
                f"(the board owns both: {conn.pilot.driver!r} and {conn.contactor.driver!r} disagree)")
            return
    if conn.pilot.driver == "rapi" and conn.board.transport != "rtu":
        bad(f"{where}.board.transport", repr(conn.board.transport), "'rtu' for an OpenEVSE board (RAPI is serial)")
    if conn.rcm.driver in BOARD_DRIVERS and conn.rcm.driver != conn.pilot.driver:
        bad(f"{where}.rcm.driver", repr(conn.rcm.driver), "an RCM of the connector's own board, or 'gpio'")
    if board:
        for key, value in (("proximity.adc_channel", conn.proximity.adc_channel), ("lock.driver", None
                           if conn.lock.driver == "none" else conn.lock.driver)):
            if value is not None:
                bad(f"{where}.{key}", repr(value), "nothing on a board-driven connector (the board reads the "
                    "cable itself)" if key.startswith("proximity") else "'none' on a board-driven connector")


def _ac_rules(conn: ConnectorSection, where: str, bad: Problem, hardware: str) -> None:
    _board_rules(conn, where, bad)
    if conn.on_board and hardware == "sim":
        # The board simulator (hil/evsewb_sim.py) is not wired into the simulated build's EV yet.
        bad(f"{where}.pilot.driver", repr(conn.pilot.driver), "'gpio' on simulated hardware (a board-driven "
            "connector runs on real hardware; its simulator serves the bench tests)")
    if conn.pilot.driver == "pwm" and hardware == "sim":
        # The simulated pilot is a mock gpiozero pin; the hardware PWM driver is tested on a fake sysfs tree.
        bad(f"{where}.pilot.driver", "'pwm'", "'gpio' on simulated hardware (it has no PWM block)")
    if not 6 <= conn.max_current <= 80:
        bad(f"{where}.max_current", f"{conn.max_current:g}", "a number from 6 to 80 (amps per phase on AC)")
    if conn.pilot.adc_volts_at_full <= conn.pilot.adc_volts_at_zero:
        bad(f"{where}.pilot.adc_volts_at_full", f"{conn.pilot.adc_volts_at_full:g}",
            f"more than adc_volts_at_zero ({conn.pilot.adc_volts_at_zero:g})")


def _dc_rules(conn: ConnectorSection, where: str, buses: dict[tuple[str, str], str], bad: Problem) -> None:
    car, modules = conn.can, conn.dc_power.can
    for key, bus, protocol in (("can", car, conn.kind), ("dc_power.can", modules, conn.dc_power.driver)):
        wanted = PROTOCOL_BITRATE[protocol]
        if bus.bitrate is not None and bus.bitrate != wanted:
            bad(f"{where}.{key}.bitrate", bus.bitrate, f"{wanted} ({PROTOCOL_NAMES[protocol]} runs at "
                f"{wanted // 1000} kbit/s; or leave it out)")
        name = (bus.interface, bus.channel)
        if name in buses:
            # The modules' bus on the car's would put their traffic in the car's timing budget; two outlets'
            # module buses in one would switch each other's modules (on/off goes to every address of a stage);
            # two cars on one bus would hear each other's sessions.
            why = "the power modules need their own controller" if "dc_power" in key + buses[name] else \
                "each car needs its own controller"
            bad(f"{where}.{key}.channel", repr(bus.channel), f"a CAN bus of its own ({bus.interface} "
                f"{bus.channel} is already {buses[name]}): {why}")
        buses[name] = f"{where}.{key}"
    if not conn.dc_power.addresses:
        bad(f"{where}.dc_power.addresses", "[]", "at least one module address (the dials, 0-62)")
    elif len(set(conn.dc_power.addresses)) != len(conn.dc_power.addresses):
        bad(f"{where}.dc_power.addresses", conn.dc_power.addresses, "distinct module addresses")
    if conn.meter.poll_interval > 0.3:
        bad(f"{where}.meter.poll_interval", f"{conn.meter.poll_interval:g}",
            "at most 0.3 on a DC connector (its meter is the outlet voltage; 0.2 is usual)")
    if conn.meter.timeout > 0.5:
        bad(f"{where}.meter.timeout", f"{conn.meter.timeout:g}",
            "at most 0.5 on a DC connector (a reading older than 1 s counts as no reading)")
    if conn.meter.loss_policy != "stop":
        bad(f"{where}.meter.loss_policy", repr(conn.meter.loss_policy),
            "'stop' on a DC connector (its meter is the outlet voltage: unlocking depends on it)")
    if conn.imd.alarm_kohm >= conn.imd.prewarning_kohm:
        bad(f"{where}.imd.alarm_kohm", conn.imd.alarm_kohm,
            f"less than prewarning_kohm ({conn.imd.prewarning_kohm})")


W1 = "temperature.w1_pin"
#: What a station id may be: OCPP 2.0.1's identifierString (1.6's security whitepaper asks the same), at most
#: 48 characters; all of them are unreserved or allowed in a URL path segment.
STATION_ID = re.compile(r"[A-Za-z0-9*\-_=:+|@.]{1,48}")
#: Raspberry Pi GPIOs with fixed 1.8 kOhm pull-ups (I2C1 SDA/SCL).
FIXED_PULL_UP = (2, 3)
PROTOCOL_NAMES = {"chademo": "CHAdeMO", "gbt": "GB/T 27930", "infypower": "InfyPower"}


def _active_high_inputs(conn: ConnectorSection) -> list[tuple[str, int, bool]]:
    """Inputs held inactive by a pull-down (active high): on a pin with a fixed pull-up they would read active."""
    inputs: list[tuple[str, int, bool]] = []
    if conn.rcm.driver == "gpio":
        inputs.append(("rcm.fault_pin", conn.rcm.fault_pin, conn.rcm.fault_active_high))
    if conn.lock.driver != "none":
        inputs.append(("lock.feedback_pin", conn.lock.feedback_pin, conn.lock.feedback_active_high))
    io = conn.dc_io
    if conn.kind == "chademo":
        inputs += [("dc_io.k_pin", io.k_pin, io.k_active_high), ("dc_io.plug_pin", io.plug_pin, io.plug_active_high)]
    if conn.dc:  # a closed e-stop loop reads high: a pull-up would hide a broken loop
        inputs.append(("dc_io.estop_pin", io.estop_pin, io.estop_closed_high))
    return inputs


def _adc_channels(conn: ConnectorSection) -> list[tuple[str, tuple[int, int], int | None]]:
    """Every MCP3008 channel a connector uses, with its key and its chip (SPI port, device)."""
    if conn.kind == "gbt":
        return [("dc_io.cc1_channel", (conn.dc_io.spi_port, conn.dc_io.spi_device), conn.dc_io.cc1_channel)]
    if conn.dc or conn.on_board:
        return []
    spi = (conn.pilot.spi_port, conn.pilot.spi_device)
    return [("pilot.adc_channel", spi, conn.pilot.adc_channel), ("pilot.adc_low_channel", spi,
                                                                 conn.pilot.adc_low_channel),
            ("proximity.adc_channel", spi, conn.proximity.adc_channel)]
