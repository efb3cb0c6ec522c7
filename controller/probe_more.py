"""The other ``evse probe`` checks: CAN buses, LEDs, cable lock, RCM, serial ports, and the meter scan."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hal.can import Frame
from hal.errors import HalError

if TYPE_CHECKING:
    from controller.probe import Bench

#: Baud rates a meter scan tries, most common first.
SCAN_BAUDS = (9600, 19200, 38400, 2400, 4800, 115200)


def say(text: str) -> None:
    """One line of a probe's output."""
    print(text, flush=True)


def add_more_options(name: str, parser: argparse.ArgumentParser) -> None:
    """The options only some probes take."""
    if name == "meter":
        parser.add_argument("--scan", action="store_true", help="try addresses and baud rates on the meter's bus")
        parser.add_argument("--addresses", default="1-10", help="with --scan: Modbus addresses, e.g. 1-247")


async def probe_can(bench: Bench, args: argparse.Namespace) -> bool:
    """Open the connector's CAN buses and count the frames seen on each for ``--seconds``."""
    from controller.probe import ProbeError

    dc = bench.outlet().dc
    if dc is None:
        raise ProbeError(f"connector {bench.conn.id} is AC: it has no CAN bus")
    ok = True
    for role, bus, section in (("car", dc.car_bus, bench.conn.can), ("power modules", dc.module_bus,
                                                                    bench.conn.dc_power.can)):
        seen: dict[int, int] = {}

        def count(frame: Frame, seen: dict[int, int] = seen) -> None:
            seen[frame.id] = seen.get(frame.id, 0) + 1

        try:
            await bus.open()
        except (HalError, OSError) as exc:
            say(f"can: {section.interface} {section.channel} ({role}): does not open: {exc} (is the interface "
                f"up? `ip -details link show {section.channel}`)")
            ok = False
            continue
        unsubscribe = bus.subscribe(count)
        await asyncio.sleep(args.seconds)
        unsubscribe()
        ids = ", ".join(f"0x{i:X} x{n}" for i, n in sorted(seen.items())[:12])
        say(f"can: {section.interface} {section.channel} ({role}): up, {sum(seen.values())} frame(s) in "
            f"{args.seconds:g} s" + (f": {ids}" if ids else " (nothing on the bus yet: the car or the modules "
                                      "talk only when asked)"))
    say("PASS: every CAN bus of the connector opens" if ok else "FAIL: a CAN bus does not open")
    return ok


async def probe_leds(bench: Bench, args: argparse.Namespace) -> bool:
    """Light red, green and blue in turn and read each back from the pins."""
    led = bench.device("led", "status LED")
    ok = True
    for name, colour in (("red", (1, 0, 0)), ("green", (0, 1, 0)), ("blue", (0, 0, 1))):
        led.show(colour)
        await asyncio.sleep(min(args.seconds / 3, 1.0))
        back = led.shown()
        good = back == colour
        ok &= good
        say(f"led: {name}: pins read {back}{'' if good else ', expected ' + str(colour)}")
    led.show((0, 0, 0))
    say("PASS: each colour lit and read back (look at it too)" if ok else "FAIL: a colour did not read back")
    return ok


async def probe_lock(bench: Bench, args: argparse.Namespace) -> bool:
    """Lock and unlock the cable, reading the position switch after each pulse."""
    lock = bench.device("lock", "cable lock")
    pulse = bench.conn.lock.pulse
    results = []
    for towards in (True, False):
        lock.drive(towards)
        await asyncio.sleep(pulse)
        lock.drive(None)
        await asyncio.sleep(0.1)
        results.append(lock.locked)
        say(f"lock: {'locking' if towards else 'unlocking'} pulse {pulse:g} s: switch reads "
            f"{'locked' if lock.locked else 'unlocked'}")
    if results == [True, False]:
        say("PASS: the lock moves both ways and its switch follows")
        return True
    say(f"FAIL: the switch on GPIO{bench.conn.lock.feedback_pin} did not follow: check the motor's H-bridge, "
        "lock.pulse and lock.feedback_active_high")
    return False


async def probe_rcm(bench: Bench, args: argparse.Namespace) -> bool:
    """Press the RCM's test input and watch its fault output trip and release."""
    rcm = bench.device("rcm", "RCM")
    r = bench.conn.rcm
    if rcm.tripped:
        say(f"FAIL: the RCM's fault output (GPIO{r.fault_pin}) is active before the test: a residual current, a "
            "module without supply, or rcm.fault_active_high wrong")
        return False
    rcm.set_test(True)
    tripped_after = await _until(lambda: rcm.tripped, r.test_timeout)
    rcm.set_test(False)
    released_after = await _until(lambda: not rcm.tripped, r.release_timeout)
    say(f"rcm: test on GPIO{r.test_pin}: " + (f"tripped after {tripped_after * 1000:.0f} ms"
                                              if tripped_after is not None else
                                              f"no trip within {r.test_timeout:g} s"))
    if tripped_after is None:
        say(f"FAIL: the RCM did not trip: check the test wire (GPIO{r.test_pin}) and the fault output "
            f"(GPIO{r.fault_pin})")
        return False
    if released_after is None:
        say(f"FAIL: the fault output stays active {r.release_timeout:g} s after the test: a latching module needs "
            "its reset")
        return False
    say(f"rcm: released after {released_after * 1000:.0f} ms")
    say("PASS: the RCM trips on its test and releases")
    return True


async def _until(check: Any, timeout: float) -> float | None:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if check():
            return time.monotonic() - start
        await asyncio.sleep(0.005)
    return None


async def probe_ports(bench: Bench, args: argparse.Namespace) -> bool:
    """The serial ports on this machine, with their stable names, and which device of the config is on each."""
    return await asyncio.to_thread(_ports, bench)


def _ports(bench: Bench) -> bool:
    from serial.tools import list_ports

    from controller.config.wiring import serial_devices

    wanted = {d.port: d.key for d in serial_devices(bench.config)}
    aliases: dict[str, list[str]] = {}
    for folder in (Path("/dev/serial/by-id"), Path("/dev/evse"), Path("/dev")):
        for link in sorted(folder.glob("serial*" if folder.name == "dev" else "*")):
            if link.is_symlink():
                aliases.setdefault(str(link.resolve()), []).append(str(link))
    ports = sorted(list_ports.comports(), key=lambda p: p.device)
    for port in ports:
        names = aliases.get(str(Path(port.device).resolve()), [])
        users = [key for path, key in wanted.items() if Path(path).resolve() == Path(port.device).resolve()]
        say(f"port: {port.device}  {port.description}" + (f"  = {', '.join(names)}" if names else "")
            + (f"  <- {', '.join(users)}" if users else ""))
    missing = [f"{key} = {path}" for path, key in wanted.items() if not Path(path).exists()]
    for line in missing:
        say(f"port: {line}: no such port on this machine")
    if missing:
        say("FAIL: a configured serial port is missing (plugged in? `evse probe ports` lists what is here)")
        return False
    say(f"PASS: {len(ports)} serial port(s); every configured port is present")
    return True


async def scan_meter(bench: Bench, args: argparse.Namespace) -> bool:
    """Try every address in ``--addresses`` at every common baud rate on the meter's serial port."""
    from controller.probe import ProbeError
    from hal.drivers import METERS

    m = bench.conn.meter
    if m.transport != "rtu" or bench.platform.driver_args("meter", bench.conn.id).get("transport") == "tcp":
        raise ProbeError("--scan is for a meter on RS-485 (Modbus RTU); this one is reached over TCP")
    low, _, high = args.addresses.partition("-")
    try:
        addresses = range(int(low), int(high or low) + 1)
    except ValueError:
        raise ProbeError(f"--addresses {args.addresses!r}: expected N or N-M, e.g. 1-247") from None
    say(f"meter scan: {m.port}, {len(addresses)} address(es) x {len(SCAN_BAUDS)} baud rates, {m.model} map")
    found = []
    for baud in SCAN_BAUDS:
        for address in addresses:
            meter = METERS.resolve(m.driver)(model=m.model, transport="rtu", port=m.port, baudrate=baud,
                                             parity=m.parity, stopbits=m.stopbits, bytesize=m.bytesize,
                                             address=address, timeout=0.15)
            try:
                reading = await meter.read()
                found.append((baud, address))
                say(f"meter scan: address {address} at {baud} baud answers: {reading.energy_wh:.0f} Wh")
            except (HalError, OSError):
                pass
            finally:
                with contextlib.suppress(Exception):
                    await meter.close()
    if not found:
        say(f"FAIL: nothing answered on {m.port} (A/B swapped? parity {m.parity}? other addresses: --addresses)")
        return False
    say(f"PASS: set connector[id={bench.conn.id}].meter.baudrate and address to what answered")
    return True


MORE_PROBES: dict[str, tuple[Any, str]] = {
    "can": (probe_can, "open the connector's CAN buses and count the frames on each"),
    "leds": (probe_leds, "light each colour of the status LED and read it back"),
    "lock": (probe_lock, "lock and unlock the cable, reading the position switch"),
    "rcm": (probe_rcm, "press the RCM's test input and watch it trip and release"),
    "ports": (probe_ports, "list the serial ports with their stable names and which device is on each"),
}
