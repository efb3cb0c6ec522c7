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
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hal.meter.regmap import bundled_maps

READERS = ("pn532", "none")
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
class BenchFile:
    """The parsed bench file."""

    source: str
    csms_host: str = "127.0.0.1"
    csms_port: int = 9000
    reader: str = "none"
    reader_port: str = ""
    reader_baudrate: int = 115200
    meters: list[BenchMeter] = field(default_factory=list)


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
    for key in sorted(set(data) - {"csms", "reader", "meter"}):
        problems.append(f"{source}: {key}: unknown section; expected csms, reader or [[meter]]")
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
    raw_meters = data.get("meter", [])
    if not isinstance(raw_meters, list):
        problems.append(f"{source}: meter: expected [[meter]] tables")
        raw_meters = []
    for i, raw in enumerate(raw_meters):
        where = f"meter[{i}]"
        keys = {"connector", "model", "port", "tcp", "baudrate", "address", "phases"}
        if not isinstance(raw, dict):
            problems.append(f"{source}: {where}: expected a table")
            continue
        for key in sorted(set(raw) - keys):
            problems.append(f"{source}: {where}.{key}: unknown key; expected one of {', '.join(sorted(keys))}")
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
    if problems:
        raise BenchFileError(problems)
    return BenchFile(source, host, port, str(driver), str(reader.get("port", "")),
                     int(reader.get("baudrate", 115200)), meters)
