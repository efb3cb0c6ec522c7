"""``bench.toml``: the bench side of a charger under test that runs its own ``evse run`` elsewhere.

The bench serves what it shares with the charger over real buses: its CSMS (the charger's ``ocpp.csms_url``
points here), a card reader simulator on a serial port wired to the charger's reader port, and meter simulators
on RS-485 adapters (Modbus RTU) or on TCP. The EV on a real pilot circuit is out of scope: a person plugs the car.

    [csms]
    listen = "0.0.0.0:9000"          # the charger connects to ws://BENCH:9000/<its id>

    [reader]
    driver = "pn532"
    port = "/dev/ttyUSB0"            # wired to the charger's PN532 port (TX to RX, RX to TX, GND)

    [[meter]]
    connector = 1
    model = "sdm630"
    port = "/dev/ttyUSB1"            # an RS-485 adapter on the charger's meter bus (or tcp = "0.0.0.0:5020")
    baudrate = 9600
    address = 1

    [[car]]                          # a DC car on the bench's own wires (hil.benchcar)
    connector = 1
    kind = "chademo"                 # or "gbt"
    interface = "socketcan"          # the charger's car bus: can0 at 500 kbit/s (GB/T: 250 kbit/s)
    channel = "can0"
    [car.lines]                      # the bench Pi's GPIO (BCM): a number, or {pin = N, active_high = false}
    d1 = {pin = 5, active_high = false}  # in: the charger's d1, through an open-collector optocoupler (low when
    d2 = {pin = 6, active_high = false}  # on); GB/T: aux = the 12 V A+
    k = 13                           # out: the car's permission switch (GB/T: cc1 = the relay that puts R4 on CC1)
    plug = 19                        # out: connector present (pin 7)
    ev_contactor = 26                # out, optional: the relay that connects the bench's DC load
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hal.meter.regmap import bundled_maps

READERS = ("pn532", "none")
#: A bench car's lines by kind: which it reads (the charger drives them) and which it drives.
CAR_LINES: dict[str, dict[str, str]] = {
    "chademo": {"d1": "in", "d2": "in", "k": "out", "plug": "out", "ev_contactor": "out"},
    "gbt": {"aux": "in", "cc1": "out", "ev_contactor": "out"},
}
#: The lines a bench car cannot do without (the EV contactor's relay is for a bench with a DC load).
CAR_REQUIRED = {"chademo": ("d1", "d2", "k", "plug"), "gbt": ("aux", "cc1")}
BAUDRATES = (1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200)


class BenchFileError(ValueError):
    """A bench file that cannot be used: every problem names the file, the key, the value and what was expected."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class BenchMeter:
    """A meter simulator the charger polls."""

    connector: int
    model: str = "sdm630"
    port: str = ""
    tcp: str = ""
    baudrate: int = 9600
    address: int = 1
    phases: int = 3


@dataclass(frozen=True)
class BenchLine:
    """One of a bench car's wires on the bench's GPIO: its BCM number and which level means on."""

    pin: int
    active_high: bool = True


@dataclass(frozen=True)
class BenchCarSpec:
    """A CHAdeMO car or a GB/T BMS the bench plays on its own CAN interface and GPIO lines."""

    connector: int
    kind: str
    interface: str = "socketcan"
    channel: str = "can0"
    lines: dict[str, BenchLine] = field(default_factory=dict)
    soc: float = 50.0
    target_soc: float = 80.0
    #: The bench's short timings (permission in 0.5 s, contactors in 0.3 s) instead of a real car's.
    quick: bool = False


@dataclass(frozen=True)
class BenchFile:
    """The parsed bench file."""

    source: str
    csms_host: str = "127.0.0.1"
    csms_port: int = 9000
    reader: str = "none"
    reader_port: str = ""
    reader_baudrate: int = 115200
    meters: list[BenchMeter] = field(default_factory=list)
    cars: list[BenchCarSpec] = field(default_factory=list)


def _address(value: Any, key: str, source: str, problems: list[str]) -> tuple[str, int]:
    host, colon, port = str(value).rpartition(":")
    if not colon or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        problems.append(f"{source}: {key} = {value!r}: expected HOST:PORT such as '0.0.0.0:9000'")
        return "127.0.0.1", 0
    return host, int(port)


def _table(data: dict[str, Any], name: str, keys: set[str], source: str, problems: list[str]) -> dict[str, Any]:
    table = data.get(name, {})
    if not isinstance(table, dict):
        problems.append(f"{source}: {name}: expected a table")
        return {}
    for key in sorted(set(table) - keys):
        problems.append(f"{source}: {name}.{key}: unknown key; expected one of {', '.join(sorted(keys))}")
    return table


def _tables(data: dict[str, Any], name: str, keys: set[str], source: str,
            problems: list[str]) -> list[tuple[str, dict[str, Any]]]:
    """The ``[[name]]`` tables, each with where it is (``name[i]``); a non-table and unknown keys are problems."""
    raw = data.get(name, [])
    if not isinstance(raw, list):
        problems.append(f"{source}: {name}: expected [[{name}]] tables")
        return []
    found: list[tuple[str, dict[str, Any]]] = []
    for i, table in enumerate(raw):
        where = f"{name}[{i}]"
        if not isinstance(table, dict):
            problems.append(f"{source}: {where}: expected a table")
            continue
        for key in sorted(set(table) - keys):
            problems.append(f"{source}: {where}.{key}: unknown key; expected one of {', '.join(sorted(keys))}")
        found.append((where, table))
    return found


def load_bench(path: str | Path) -> BenchFile:
    """Read and check a bench file; BenchFileError lists every problem."""
    source = str(path)
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise BenchFileError([f"{source}: cannot read: {exc.strerror or exc}"]) from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise BenchFileError([f"{source}: not valid TOML: {exc}"]) from exc
    problems: list[str] = []
    for key in sorted(set(data) - {"csms", "reader", "meter", "car"}):
        problems.append(f"{source}: {key}: unknown section; expected csms, reader, [[meter]] or [[car]]")
    csms = _table(data, "csms", {"listen"}, source, problems)
    host, port = _address(csms.get("listen", "127.0.0.1:9000"), "csms.listen", source, problems)
    reader = _table(data, "reader", {"driver", "port", "baudrate"}, source, problems)
    driver = reader.get("driver", "pn532" if reader else "none")
    if reader.get("baudrate", 115200) not in BAUDRATES:
        problems.append(f"{source}: reader.baudrate = {reader.get('baudrate')!r}: expected one of "
                        f"{', '.join(map(str, BAUDRATES))} (a PN532's HSU talks 115200)")
    if driver not in READERS:
        problems.append(f"{source}: reader.driver = {driver!r}: expected one of {', '.join(READERS)}")
    if driver != "none" and not isinstance(reader.get("port"), str):
        problems.append(f"{source}: reader.port: expected the serial port wired to the charger's reader")
    meters: list[BenchMeter] = []
    keys = {"connector", "model", "port", "tcp", "baudrate", "address", "phases"}
    for where, raw in _tables(data, "meter", keys, source, problems):
        if "connector" not in raw:
            problems.append(f"{source}: {where}.connector: expected the id of the connector this meter measures")
            continue
        meter = BenchMeter(**{k: v for k, v in raw.items() if k in keys})
        if meter.connector in {m.connector for m in meters}:
            problems.append(f"{source}: {where}.connector = {meter.connector}: expected one [[meter]] per connector")
        if not isinstance(meter.connector, int) or meter.connector < 1:
            problems.append(f"{source}: {where}.connector = {meter.connector!r}: expected a connector id from 1")
        if meter.model not in bundled_maps():
            problems.append(f"{source}: {where}.model = {meter.model!r}: expected one of "
                            f"{', '.join(bundled_maps())}")
        if bool(meter.port) == bool(meter.tcp):
            problems.append(f"{source}: {where}: expected port (RS-485, Modbus RTU) or tcp (HOST:PORT), one of them")
        if meter.tcp:
            _address(meter.tcp, f"{where}.tcp", source, problems)
        if meter.baudrate not in BAUDRATES:
            problems.append(f"{source}: {where}.baudrate = {meter.baudrate!r}: expected one of "
                            f"{', '.join(map(str, BAUDRATES))}")
        meters.append(meter)
    cars = _cars(data, source, problems)
    if problems:
        raise BenchFileError(problems)
    return BenchFile(source, host, port, str(driver), str(reader.get("port", "")),
                     int(reader.get("baudrate", 115200)), meters, cars)


def _cars(data: dict[str, Any], source: str, problems: list[str]) -> list[BenchCarSpec]:
    cars: list[BenchCarSpec] = []
    used_pins: dict[int, str] = {}
    buses: dict[tuple[str, str], str] = {}
    keys = {"connector", "kind", "interface", "channel", "lines", "soc", "target_soc", "quick"}
    for where, raw in _tables(data, "car", keys, source, problems):
        connector, kind = raw.get("connector"), raw.get("kind")
        if not isinstance(connector, int) or isinstance(connector, bool) or connector < 1:
            problems.append(f"{source}: {where}.connector = {connector!r}: expected the id of the DC connector "
                            "this car plugs into, from 1")
            continue
        if connector in {c.connector for c in cars}:
            problems.append(f"{source}: {where}.connector = {connector}: expected one [[car]] per connector")
        if kind not in CAR_LINES:
            problems.append(f"{source}: {where}.kind = {kind!r}: expected chademo or gbt")
            continue
        interface, channel = raw.get("interface", BenchCarSpec.interface), raw.get("channel", BenchCarSpec.channel)
        for key, value in (("interface", interface), ("channel", channel)):
            if not isinstance(value, str) or not value:
                problems.append(f"{source}: {where}.{key} = {value!r}: expected a python-can {key} "
                                "such as socketcan / can0")
        soc, target = raw.get("soc", BenchCarSpec.soc), raw.get("target_soc", BenchCarSpec.target_soc)
        numbers = [isinstance(v, int | float) and not isinstance(v, bool) for v in (soc, target)]
        for key, value, number in (("soc", soc, numbers[0]), ("target_soc", target, numbers[1])):
            if not number or not 0 <= value <= 100:
                problems.append(f"{source}: {where}.{key} = {value!r}: expected a state of charge from 0 to 100 %")
        if all(numbers) and soc >= target:
            problems.append(f"{source}: {where}.soc = {soc!r}: expected below target_soc ({target!r}), or the car "
                            "never asks for current")
        quick = raw.get("quick", BenchCarSpec.quick)
        if not isinstance(quick, bool):
            problems.append(f"{source}: {where}.quick = {quick!r}: expected true or false")
        bus = (str(interface), str(channel))
        if bus in buses:
            problems.append(f"{source}: {where}.channel = {bus[1]!r}: {buses[bus]} is on {bus[0]} {bus[1]} already; "
                            "expected a bus of its own (a car's frame ids are fixed)")
        buses[bus] = where
        lines = _lines(raw.get("lines", {}), kind, f"{where}.lines", used_pins, source, problems)
        cars.append(BenchCarSpec(connector, kind, *bus, lines, float(soc) if numbers[0] else BenchCarSpec.soc,
                                 float(target) if numbers[1] else BenchCarSpec.target_soc, bool(quick)))
    return cars


def _lines(raw: Any, kind: str, where: str, used: dict[int, str], source: str,
           problems: list[str]) -> dict[str, BenchLine]:
    if not isinstance(raw, dict):
        problems.append(f"{source}: {where}: expected a table of the car's lines")
        return {}
    lines: dict[str, BenchLine] = {}
    for name in sorted(set(raw) - set(CAR_LINES[kind])):
        problems.append(f"{source}: {where}.{name}: not a {kind} car's line; expected one of "
                        f"{', '.join(CAR_LINES[kind])}")
    for name in CAR_REQUIRED[kind]:
        if name not in raw:
            problems.append(f"{source}: {where}.{name}: missing; a {kind} car needs "
                            f"{', '.join(CAR_REQUIRED[kind])} (BCM GPIO numbers)")
    for name in (n for n in CAR_LINES[kind] if n in raw):
        value = raw[name]
        table = value if isinstance(value, dict) else {"pin": value}
        pin, high = table.get("pin"), table.get("active_high", True)
        extra = set(table) - {"pin", "active_high"}
        if not isinstance(pin, int) or isinstance(pin, bool) or not 0 <= pin <= 27 or extra or \
                not isinstance(high, bool):
            problems.append(f"{source}: {where}.{name} = {value!r}: expected a BCM GPIO number 0-27, or "
                            "{pin = N, active_high = false}")
            continue
        if pin in used:
            problems.append(f"{source}: {where}.{name} = {pin}: GPIO{pin} is already {used[pin]}")
        used[pin] = f"{where}.{name}"
        lines[name] = BenchLine(pin, high)
    return lines
