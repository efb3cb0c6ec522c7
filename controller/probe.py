"""``evse probe``: bring-up checks, one device at a time, each ending in a PASS or FAIL line (exit 0 or 1).

Each builds the drivers the config names, on the same platform ``evse run`` would use (the real buses on a Pi,
the simulators on ``hardware = "sim"``), does one thing a builder would do with a meter and a multimeter, and
releases everything. They refuse to run while the charger runs on the same state directory (its lock), and
exit 2 on a usage problem. The contactor probe closes the contactor for a moment: only with no vehicle on the
pilot, and it says so first.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from controller.config import (
    INSTALLED_CONFIG,
    Config,
    ConfigError,
    ConnectorSection,
    config_path,
    default_config,
    load_config,
)
from controller.runlock import Locked, RunLock
from hal.errors import HalError
from hal.pilot import classify_pilot_voltage

if TYPE_CHECKING:
    from controller.hardware import OutletDrivers, Platform

Probe = Callable[["Bench", argparse.Namespace], Awaitable[bool]]
#: What a pilot state means, for a person at the bench.
MEANING = {"A": "no vehicle", "B": "vehicle connected", "C": "vehicle charging", "D": "charging, ventilation",
           "E": "CP shorted to PE", "F": "-12 V: EVSE not available"}


class ProbeError(Exception):
    """The probe cannot run as asked (exit 2); the message says why."""


class Bench:
    """The platform and one connector's drivers, for a probe."""

    def __init__(self, config: Config, platform: Platform, connector: ConnectorSection) -> None:
        self.config = config
        self.platform = platform
        self.conn = connector
        self.drivers: OutletDrivers | None = None

    def outlet(self) -> OutletDrivers:
        """Every driver of the probed connector, built (once) and settled."""
        if self.drivers is None:
            from controller.hardware import build_outlet

            self.drivers = build_outlet(self.conn, self.platform)
            self.platform.settle()
        return self.drivers

    def device(self, role: str, what: str) -> Any:
        """The connector's driver of ``role`` (``led``, ``lock``, ``rcm``), or ProbeError when it has none."""
        found = getattr(self.outlet(), role)
        if found is None:
            raise ProbeError(f"connector {self.conn.id} has no {what} ({role}.driver = \"none\")")
        return found


def say(text: str) -> None:
    """One line of a probe's output."""
    print(text, flush=True)


async def probe_pilot(bench: Bench, args: argparse.Namespace) -> bool:
    """Drive the pilot (steady +12 V, or ``--duty``) and read its voltage and state for ``--seconds``."""
    pilot = bench.outlet().pilot
    if pilot is None:
        raise ProbeError(f"connector {bench.conn.id} is {bench.conn.kind.upper()}: it has no control pilot")
    if args.duty is None:
        pilot.stop_offer()
        say(f"pilot: steady +12 V on GPIO{bench.conn.pilot.pwm_pin} ({bench.conn.pilot.driver} PWM)")
    else:
        pilot.write_duty(args.duty / 100.0)
        say(f"pilot: {args.duty:g} % duty at 1 kHz on GPIO{bench.conn.pilot.pwm_pin} ({bench.conn.pilot.driver} PWM)")
    states: list[str] = []
    highs: list[float] = []
    deadline = time.monotonic() + args.seconds
    while time.monotonic() < deadline:
        volts = await asyncio.to_thread(pilot.read_voltage)
        highs.append(volts)
        state = classify_pilot_voltage(volts)
        states.append(state.name if state else "?")
        await asyncio.sleep(0.01)
    pilot.set_unavailable()
    low = await asyncio.to_thread(pilot.read_low_voltage) if pilot.measures_low else None
    seen = sorted(set(states))
    say(f"pilot: high level {min(highs):+.1f} .. {max(highs):+.1f} V over {len(highs)} readings: state "
        + ", ".join(f"{s} ({MEANING[s]})" if s != "?" else "? (between bands)" for s in seen))
    if low is not None:
        say(f"pilot: low half {low:+.1f} V in state F (expect about -12 V)")
    if seen == ["?"]:
        say(f"FAIL: no IEC 61851 state on connector {bench.conn.id}'s pilot: check pilot.adc_channel "
            f"({bench.conn.pilot.adc_channel}) and the front end's mapping (adc_volts_at_zero/full)")
        return False
    if len(seen) > 1:
        say(f"FAIL: the pilot wanders between states {', '.join(seen)}: a loose CP wire or a noisy front end")
        return False
    say(f"PASS: connector {bench.conn.id}'s pilot reads state {seen[0]}")
    return True


async def probe_contactor(bench: Bench, args: argparse.Namespace) -> bool:
    """Close the contactor for ``--hold`` s with no vehicle connected, reading the mirror contact each way."""
    drivers = bench.outlet()
    if drivers.pilot is not None:
        drivers.pilot.stop_offer()
        await asyncio.sleep(0.05)
        state = classify_pilot_voltage(await asyncio.to_thread(drivers.pilot.read_voltage))
        if state is None or state.name != "A":
            say(f"FAIL: not clicking: the pilot shows {state.name if state else 'no state'}, not A (no vehicle): "
                "unplug the cable first (the outlet would be live)")
            return False
    contactor, c = drivers.contactor, bench.conn.contactor
    say(f"contactor: closing GPIO{c.pin} for {args.hold:g} s (the outlet is live meanwhile)")
    contactor.close()
    await asyncio.sleep(max(c.feedback_delay, 0.05))
    closed = contactor.feedback_closed
    await asyncio.sleep(max(0.0, args.hold - c.feedback_delay))
    contactor.open()
    await asyncio.sleep(max(c.feedback_delay, 0.05))
    opened = contactor.feedback_closed
    if closed is None:
        say("PASS: clicked (no mirror contact configured: contactor.mirror_pin; listen for it)")
        return True
    say(f"contactor: mirror contact on GPIO{c.mirror_pin} read {'closed' if closed else 'OPEN'} when closed, "
        f"{'CLOSED' if opened else 'open'} when opened")
    if closed and not opened:
        say("PASS: the contactor follows its coil and the mirror contact follows the contactor")
        return True
    say(f"FAIL: the mirror contact does not follow: check the coil's wiring and contactor.mirror_type "
        f"({c.mirror_type!r}), and the mirror's wire to GPIO{c.mirror_pin}")
    return False


async def probe_meter(bench: Bench, args: argparse.Namespace) -> bool:
    """Read the meter once (and its serial number where its map says where); ``--scan`` searches the bus."""
    if args.scan:
        from controller.probe_more import scan_meter

        return await scan_meter(bench, args)
    meter, m = bench.outlet().meter, bench.conn.meter
    bus = {"transport": m.transport, "host": m.host, "tcp_port": m.tcp_port,
           **bench.platform.driver_args("meter", bench.conn.id)}  # a simulated build's meter is on loopback TCP
    where = f"{m.port} {m.baudrate} {m.bytesize}{m.parity}{m.stopbits}" if bus["transport"] == "rtu" else \
        f"{bus['host']}:{bus['tcp_port']}"
    try:
        reading = await meter.read()
        serial = await meter.identify()
    except (HalError, OSError) as exc:
        say(f"FAIL: {m.model} at address {m.address} on {where} does not answer: {exc} (check A/B, the "
            "address, baud rate and parity; `evse probe meter --scan` tries others)")
        return False
    volts = "/".join(f"{v:.1f}" for v in reading.voltage if v is not None) or "-"
    amps = "/".join(f"{a:.2f}" for a in reading.current if a is not None) or "-"
    power = f"{reading.power_w:.0f}" if reading.power_w is not None else "-"
    say(f"meter: {m.model} at address {m.address} on {where}{', serial ' + serial if serial else ''}")
    say(f"meter: {reading.energy_wh:.0f} Wh, {power} W, {volts} V, {amps} A")
    say("PASS: the meter answers")
    return True


async def probe_rfid(bench: Bench, args: argparse.Namespace) -> bool:
    """Run the card reader for ``--seconds`` and print every UID tapped."""
    from controller.hardware import build_reader

    reader = build_reader(bench.config, bench.platform)
    if reader is None:
        raise ProbeError("rfid.driver is \"none\": there is no card reader to probe")
    health: list[bool] = []
    reader.on_health = health.append
    say(f"rfid: {bench.config.rfid.driver} on {bench.config.rfid.port}: tap a card within {args.seconds:g} s")
    cards: list[str] = []

    def tapped(uid: str) -> None:
        cards.append(uid)
        say(f"rfid: card {uid}")

    task = asyncio.create_task(reader.run(tapped))
    await asyncio.sleep(args.seconds)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, HalError):
        await task  # cancelled: the reader closes its port
    if health and not health[-1]:
        say(f"FAIL: the reader does not answer on {bench.config.rfid.port}: check TX/RX (crossed), its mode "
            "switches (PN532: HSU) and rfid.baudrate")
        return False
    say(f"PASS: the reader answers; {len(cards)} card(s) read" if cards else
        "PASS: the reader answers; no card was tapped")
    return True


PROBES: dict[str, tuple[Probe, str]] = {
    "pilot": (probe_pilot, "drive the pilot (+12 V or --duty) and read its voltage and state"),
    "contactor": (probe_contactor, "click the contactor (no vehicle) and read its mirror contact"),
    "meter": (probe_meter, "read the energy meter once"),
    "rfid": (probe_rfid, "print the UIDs of the cards tapped"),
}


def add_probe_command(sub: Any) -> None:
    """Register ``evse probe KIND`` on the ``evse`` subcommand parser."""
    from controller.probe_more import MORE_PROBES, add_more_options

    probe = sub.add_parser("probe", help="bring-up checks of one device (PASS/FAIL, exit 0/1; 2: cannot run)")
    kinds = probe.add_subparsers(dest="kind", required=True)
    for name, (_, text) in {**PROBES, **MORE_PROBES}.items():
        one = kinds.add_parser(name, help=text, description=text)
        one.add_argument("--config", help=f"the charger's config (default {INSTALLED_CONFIG}, else the simulated one)")
        one.add_argument("--connector", type=int, default=1, help="the connector's id (default 1)")
        one.add_argument("--state-dir", help="the charger's state directory (default station.state_dir)")
        one.add_argument("--seconds", type=float, default=2.0 if name != "rfid" else 10.0,
                         help="how long to read (s)")
        if name == "pilot":
            one.add_argument("--duty", type=float, help="PWM duty in percent (default: steady +12 V)")
        if name == "contactor":
            one.add_argument("--hold", type=float, default=0.5, help="how long it stays closed (s)")
        add_more_options(name, one)
        one.set_defaults(func=_main)


def _main(args: argparse.Namespace) -> int:
    # The drivers and their libraries load when a probe runs, not with every `evse` command's parser.
    from controller.hardware import Platform, PlatformError
    from controller.probe_more import MORE_PROBES

    try:
        path = config_path(args.config)
        config = load_config(path) if path else default_config()
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem)
        return 2
    probe = {**PROBES, **MORE_PROBES}[args.kind][0]
    if args.kind == "ports":
        return 0 if asyncio.run(probe(Bench(config, Platform(config), ConnectorSection()), args)) else 1
    connector = next((c for c in config.connector if c.id == args.connector), None)
    if connector is None:
        print(f"evse probe: no connector with id {args.connector} in {config.source}")
        return 2
    lock = RunLock(args.state_dir or config.station.state_dir)
    try:
        if lock.path.parent.is_dir():
            lock.acquire()
        return 0 if asyncio.run(_run(config, connector, probe, args)) else 1
    except (Locked, ProbeError, PlatformError, HalError, OSError) as exc:
        print(f"evse probe {args.kind}: {exc}")
        return 2
    finally:
        lock.release()


async def _run(config: Config, connector: ConnectorSection, probe: Probe, args: argparse.Namespace) -> bool:
    from controller.hardware import platform_for

    platform = platform_for(config)
    platform.check()
    with tempfile.TemporaryDirectory(prefix="evse-probe-") as scratch:
        platform.state_dir = Path(scratch)  # a simulated build's sockets; nothing of the charger's own state
        await platform.start()
        bench = Bench(config, platform, connector)
        try:
            return await probe(bench, args)
        finally:
            if bench.drivers is not None:
                await bench.drivers.close()
            await platform.stop()
