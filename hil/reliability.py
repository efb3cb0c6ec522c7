"""``evse-hil reliability``: kill the daemon at random moments, restart it, count what the CSMS got wrong.

Each cycle starts a real ``evse run`` (simulated hardware) on the same state
directory against a bench CSMS in this process, drives a session through the
bench socket (plug, tap, charge, sometimes a card stop) and SIGKILLs the
process at a random moment: during boot, authorisation, StartTransaction,
MeterValues, a stop, anywhere. After the last cycle the daemon runs until its
outbox is empty. Then, at the CSMS:

- lost: a transaction without a StopTransaction, or a station transaction still queued;
- duplicated: one session recorded as two transactions, or a second StopTransaction for one.

A second figure: a CSMS outage during which >= 1,000 messages queue, the time
to drain them once the CSMS is back, and whether they arrived in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import signal
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from controller.storage import Store
from controller.tasks import until
from hil.control import send_script
from hil.csms import CsmsSimulator

STATION = "REL-1"
CONFIG = """
[station]
hardware = "sim"
id = "REL-1"
reading_persist_interval = 0.5
[ocpp]
meter_value_sample_interval = 1
reconnect_min = 0.2
reconnect_max = 1.0
[rfid]
poll_interval = 0.05
[[connector]]
id = 1
[connector.meter]
poll_interval = 0.2
"""


async def _start_daemon(config: Path, state: Path, csms: CsmsSimulator) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "controller.cli", "run", "--config", str(config), "--state-dir", str(state),
        "--csms", csms.url, "--log-level", "error",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )


async def _session(state: Path, tag: str, rng: random.Random) -> None:
    script = f"plug; tap {tag}; expect Charging within 5; wait {rng.uniform(0.5, 3.0):.2f}"
    if rng.random() < 0.5:
        script += f"; tap {tag}; expect Finishing; unplug"
    with contextlib.suppress(ConnectionError, OSError, ValueError):
        await send_script(state, script, timeout=30)


async def kill_cycles(kills: int, seed: int, workdir: Path) -> dict[str, Any]:
    """Run ``kills`` kill/restart cycles and judge what the CSMS recorded."""
    rng = random.Random(seed)
    config = workdir / "reliability.toml"
    config.write_text(CONFIG)
    state = workdir / "state"
    csms = CsmsSimulator(heartbeat_interval=300)
    await csms.start()
    killed_at: list[float] = []
    try:
        for cycle in range(kills):
            boots = len(csms.boots)
            daemon = await _start_daemon(config, state, csms)
            # Sessions start once the station is booted at the CSMS (an unknown card offline is refused).
            def booted(before: int = boots) -> bool:
                return (state / "bench.sock").exists() and len(csms.boots) > before

            await until(booted, 30)
            await asyncio.sleep(0.2)
            session = asyncio.create_task(_session(state, f"{0xA0000000 + cycle:08X}", rng))
            moment = rng.uniform(0.0, 4.0)
            await asyncio.sleep(moment)
            daemon.send_signal(signal.SIGKILL)
            await daemon.wait()
            killed_at.append(round(moment, 3))
            session.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await session
            with contextlib.suppress(FileNotFoundError):
                (state / "bench.sock").unlink()
        # The last start: let it deliver everything, then stop it properly.
        daemon = await _start_daemon(config, state, csms)
        store = Store(state)
        drained = await until(lambda: store.outbox_size() == 0 and not store.transactions(), 60)
        leftover = store.outbox_size()
        store.close()
        daemon.send_signal(signal.SIGTERM)
        await asyncio.wait_for(daemon.wait(), 30)
    finally:
        await csms.stop()
    transactions = list(csms.transactions.values())
    sessions = Counter((t.id_tag, t.start_time) for t in transactions)
    return {
        "kills": kills,
        "seed": seed,
        "transactions_at_csms": len(transactions),
        "lost": sum(1 for t in transactions if t.meter_stop is None) + leftover,
        "duplicated": sum(n - 1 for n in sessions.values() if n > 1) + len(csms.duplicate_stops),
        "stops_for_unknown_transactions": len(csms.unknown_stops),
        "power_loss_stops": sum(1 for t in transactions if t.reason == "PowerLoss"),
        "outbox_drained": drained,
        "timestamp_errors": len(csms.timestamp_errors),
        "kill_moments_s": {"min": min(killed_at), "max": max(killed_at)},
    }


async def outage_drain(messages: int, workdir: Path) -> dict[str, Any]:
    """Queue >= ``messages`` transaction messages during a CSMS outage; time the drain and check the order."""
    config = workdir / "outage.toml"
    config.write_text(CONFIG)
    state = workdir / "outage-state"
    csms = CsmsSimulator()
    await csms.start()
    daemon = await _start_daemon(config, state, csms)
    try:
        await until(lambda: (state / "bench.sock").exists() and STATION in csms.connections, 30)
        await asyncio.sleep(0.5)
        await send_script(state, "plug; tap 0B0B0B0B; expect Charging within 5")
        await csms.stop()
        # Fill the queue faster than real time: the same MeterValues path, straight into the store.
        store = Store(state)
        await until(lambda: store.transactions(open_only=True) != [], 10)
        (tx,) = store.transactions(open_only=True)
        with store.atomic() as db:
            for i in range(messages):
                payload = {"connectorId": 1, "meterValue": [{"timestamp": f"2026-01-01T00:{i // 60 % 60:02d}:"
                                                             f"{i % 60:02d}.{i // 3600:03d}Z",
                                                             "sampledValue": [{"value": str(i)}]}]}
                store.enqueue(db, "1.6", "update", "MeterValues", payload, tx.local_id)
        await send_script(state, "tap 0B0B0B0B; expect Finishing")
        queued = store.outbox_size()
        started = time.monotonic()
        await csms.start()
        drained = await until(lambda: store.outbox_size() == 0, 300)
        elapsed = time.monotonic() - started
        store.close()
    finally:
        daemon.send_signal(signal.SIGTERM)
        await asyncio.wait_for(daemon.wait(), 30)
        await csms.stop()
    calls = [m for m in (json.loads(f.raw) for f in csms.frames if f.direction == "in") if m[0] == 2]
    order = [int(first["value"]) for first in (_first_sample(m) for m in calls) if first is not None]
    actions = [m[2] for m in calls if m[2] in ("MeterValues", "StopTransaction")]
    return {
        "queued": queued,
        "drained": drained,
        "drain_s": round(elapsed, 2),
        "messages_per_s": round(queued / elapsed, 1) if elapsed else None,
        "in_order": order == sorted(order) and len(order) == messages,
        "stop_last": bool(actions) and actions[-1] == "StopTransaction",
    }


def _first_sample(message: list[Any]) -> dict[str, Any] | None:
    """The queued synthetic sample of a MeterValues CALL (no measurand), else None."""
    if message[2] != "MeterValues":
        return None
    sample: dict[str, Any] = message[3]["meterValue"][0]["sampledValue"][0]
    return None if "measurand" in sample else sample
