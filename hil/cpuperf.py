"""``evse-hil perf --cpu``: the daemon's CPU time and resident memory, idle and charging, with 1, 2 and 4 connectors.

Each case is a real ``evse run`` process on simulated hardware, every connector charging at 16 A for the charging
figure. The simulators that cost CPU run in the benchmark's process, not the daemon's: the CSMS, a Modbus TCP meter
per connector and the PN532 reader on a pty (``[sim] external``). What stays in the daemon is mock GPIO and the
MCP3008 models answering whole transfers, which cost attribute reads. CPU is the process's user + system time over a
window, from ``/proc/PID/stat``, as a percentage of one core; RSS is ``VmRSS`` at the end.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from hil.buildmem import rss_mb
from hil.control import send_script
from hil.csms import CsmsSimulator
from hil.meter import MeterSimulator
from hil.readers import Pn532Simulator

TAG = "04A1B2C{}"
#: The shipped Raspberry Pi AC build (in a checkout; an installed wheel has no config/ folder).
PI_AC_CONFIG = Path(__file__).resolve().parent.parent / "config" / "pi-ac-single.toml"
#: Pins per connector i (0-based): PWM, coil, mirror; the MCP3008 channels 2i and 2i+1 on SPI0 CE0.
PWM_PINS, COILS, MIRRORS = (18, 19, 12, 13), (17, 22, 23, 24), (27, 5, 6, 16)


def config_text(connectors: int, meter_ports: list[int] | None = None, reader: str = "") -> str:
    """A simulated build with ``connectors`` AC sockets, each with its own pins, ADC channels and meter; with
    ``meter_ports`` and ``reader``, the meters and the PN532 are the ones served there (``[sim] external``)."""
    external = [name for name, given in (("meter", meter_ports), ("rfid", reader)) if given]
    parts = ['[station]\nhardware = "sim"\nid = "CPU-1"\n'
             "[ocpp]\nreconnect_min = 0.2\nmeter_value_sample_interval = 60\n"
             f"[sim]\nexternal = {external!r}\n" + (f"[rfid]\nport = {reader!r}\n" if reader else "")]
    for i in range(connectors):
        parts.append(
            f"[[connector]]\nid = {i + 1}\nmax_current = 16\n"
            f"[connector.pilot]\npwm_pin = {PWM_PINS[i]}\nadc_channel = {2 * i}\nadc_low_channel = {2 * i + 1}\n"
            f"[connector.contactor]\npin = {COILS[i]}\nmirror_pin = {MIRRORS[i]}\n"
            + (f'[connector.meter]\ntransport = "tcp"\ntcp_port = {meter_ports[i]}\n' if meter_ports else ""))
    return "".join(parts)


def _ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


async def cpu_percent(pid: int, seconds: float) -> float:
    """Process ``pid``'s CPU (user + system, % of one core) over the next ``seconds``, in clock ticks."""
    hz = os.sysconf("SC_CLK_TCK")
    before, started = _ticks(pid), time.monotonic()
    await asyncio.sleep(seconds)
    return round(100.0 * (_ticks(pid) - before) / hz / (time.monotonic() - started), 2)


async def measure_case(connectors: int, window: float) -> dict[str, Any]:
    """Idle and charging CPU and RSS of one daemon with ``connectors`` sockets."""
    csms = CsmsSimulator()
    await csms.start()
    meters = [MeterSimulator("sdm630", phases=3) for _ in range(connectors)]
    ports: list[int] = []
    for meter in meters:
        await meter.start_tcp()
        assert meter.port is not None
        ports.append(meter.port)
    reader = Pn532Simulator()
    await reader.start()
    with tempfile.TemporaryDirectory(prefix="evse-cpu-") as folder:
        config = Path(folder) / "charger.toml"
        config.write_text(config_text(connectors, ports, reader.path))
        state = Path(folder) / "state"
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "controller.cli", "run", "--config", str(config), "--state-dir", str(state),
            "--csms", csms.url, "--log-level", "error", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 30
            while "CPU-1" not in csms.boots or not (state / "bench.sock").exists():
                if proc.returncode is not None or time.monotonic() > deadline:
                    raise RuntimeError("evse run did not come up")
                await asyncio.sleep(0.05)
            await asyncio.sleep(2.0)  # boot self-tests and first status notifications
            idle = await cpu_percent(proc.pid, window)
            for i in range(1, connectors + 1):
                result = await send_script(state, f"plug {i}; expect Preparing {i}")
                if result["ok"]:
                    reader.tap(TAG.format(i))
                    result = await send_script(state, f"expect Charging {i} within 10")
                if not result["ok"]:
                    raise RuntimeError(f"charging connector {i} of {connectors} failed: {result}")
                meters[i - 1].set_current(16.0)
            await asyncio.sleep(1.0)
            charging = await cpu_percent(proc.pid, window)
            rss = rss_mb(proc.pid)
        finally:
            proc.terminate()
            await proc.wait()
            await csms.stop()
            for meter in meters:
                await meter.stop()
            await reader.stop()
    return {"connectors": connectors, "idle_cpu_pct": idle, "charging_cpu_pct": charging,
            "idle_cpu_pct_per_connector": round(idle / connectors, 2),
            "charging_cpu_pct_per_connector": round(charging / connectors, 2), "rss_mb": rss}


def build_memory(path: str) -> dict[str, Any]:
    """The resident memory of the modules a real build's daemon imports (:mod:`hil.buildmem` in a subprocess)."""
    import json

    out = subprocess.run([sys.executable, "-m", "hil.buildmem", path], capture_output=True, text=True, check=True)
    return {"config": path, **json.loads(out.stdout.strip().splitlines()[-1])}


async def measure_cpu(window: float = 10.0, counts: tuple[int, ...] = (1, 2, 4)) -> dict[str, Any]:
    """Every case, one after the other (each alone on the machine), and the modules of the Pi AC build."""
    cases = [await measure_case(n, window) for n in counts]
    return {"window_s": window, "cores": os.cpu_count(), "cases": cases,
            **({"pi_ac_build": build_memory(str(PI_AC_CONFIG))} if PI_AC_CONFIG.exists() else {})}
