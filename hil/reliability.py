"""``evse-hil reliability``: kill the daemon at random moments, restart it, count what the CSMS got wrong.

Each cycle starts a real ``evse run`` (simulated hardware) on the same state
directory against a bench CSMS in this process, drives a session through the
bench socket (plug, tap, charge, sometimes a card stop) and SIGKILLs the
process at a random moment: during boot, authorisation, StartTransaction,
MeterValues, a stop, anywhere. After the last cycle the daemon runs until its
outbox is empty. Then, at the CSMS:

- lost: a transaction without its end (StopTransaction, or 2.0.1's Ended event), a gap in a 2.0.1
  transaction's seqNos, or a station transaction still queued;
- duplicated: one session recorded as two transactions, or an end (1.6) or event (2.0.1) received twice.

A second figure: a CSMS outage during which >= 1,000 messages queue, the time to drain them once the
CSMS is back, whether they arrived in order, and the drain's rate as a share of what the same CSMS
answers a station that does nothing but send Heartbeats one after another (the one-CALL-in-flight limit).
Both run on OCPP 1.6 or 2.0.1 (``version``).
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

import websockets
from websockets.typing import Subprotocol

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
version = "{version}"
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


async def kill_cycles(kills: int, seed: int, workdir: Path, version: str = "1.6") -> dict[str, Any]:
    """Run ``kills`` kill/restart cycles and judge what the CSMS recorded."""
    rng = random.Random(seed)
    config = workdir / f"reliability-{version}.toml"
    config.write_text(CONFIG.format(version=version))
    workdir = workdir / version
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
    moments = {"min": min(killed_at), "max": max(killed_at)}
    if version == "2.0.1":
        return {"kills": kills, "seed": seed, **_judge_events(csms), "outbox_drained": drained,
                "lost_in_outbox": leftover, "timestamp_errors": len(csms.timestamp_errors), "kill_moments_s": moments}
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
        "kill_moments_s": moments,
    }


def _judge_events(csms: CsmsSimulator) -> dict[str, Any]:
    """2.0.1: per transactionId, one Started, one Ended, seqNos 0..n arriving in order."""
    lost = duplicated = out_of_order = power_loss = 0
    for events in csms.events.values():
        seqs = [e["seq_no"] for e in events]
        kinds = [e["event_type"] for e in events]
        if "Ended" not in kinds or sorted(set(seqs)) != list(range(max(seqs) + 1)):
            lost += 1
        duplicated += max(0, kinds.count("Started") - 1) + max(0, kinds.count("Ended") - 1)
        out_of_order += seqs != sorted(seqs)
        power_loss += any(e["transaction_info"].get("stopped_reason") == "PowerLoss" for e in events)
    return {"transactions_at_csms": len(csms.events), "lost": lost,
            "duplicated": duplicated + len(csms.duplicate_events), "out_of_seqno_order": out_of_order,
            "power_loss_stops": power_loss}


async def outage_drain(messages: int, workdir: Path, version: str = "1.6") -> dict[str, Any]:
    """Queue >= ``messages`` transaction messages during a CSMS outage; time the drain and check the order."""
    config = workdir / f"outage-{version}.toml"
    config.write_text(CONFIG.format(version=version))
    state = workdir / f"outage-state-{version}"
    csms = CsmsSimulator()
    await csms.start()
    limit = await heartbeat_limit(csms, version)
    same = await message_limit(csms, version)
    daemon = await _start_daemon(config, state, csms)
    try:
        await until(lambda: (state / "bench.sock").exists() and STATION in csms.connections, 30)
        await asyncio.sleep(0.5)
        await send_script(state, "plug; tap 0B0B0B0B; expect Charging within 5")
        await csms.stop()
        # Fill the queue faster than real time: the same path as meter samples, straight into the store.
        store = Store(state)
        await until(lambda: store.transactions(open_only=True) != [], 10)
        (tx,) = store.transactions(open_only=True)
        with store.atomic() as db:
            for i in range(messages):
                at = f"2026-01-01T00:{i // 60 % 60:02d}:{i % 60:02d}.{i // 3600:03d}Z"
                action, payload = _sample(version, db, tx.local_id, at, i)
                store.enqueue(db, version, "update", action, payload, tx.local_id)
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
    calls = [m for m in (json.loads(f.raw) for f in csms.frames if f.direction == "in" and f.cp_id == STATION)
             if m[0] == 2]
    order = [int(first["value"]) for first in (_first_sample(m) for m in calls) if first is not None]
    ends = ("StopTransaction", "TransactionEvent")
    actions = [m[2] if m[2] != "TransactionEvent" else m[3]["eventType"] for m in calls if m[2] in ("MeterValues",
                                                                                                 *ends)]
    rate = queued / elapsed if elapsed else None
    return {
        "version": version,
        "queued": queued,
        "drained": drained,
        "drain_s": round(elapsed, 2),
        "messages_per_s": round(rate, 1) if rate else None,
        "heartbeat_limit_per_s": round(limit, 1),
        "ratio_to_limit": round(rate / limit, 2) if rate else None,
        # The same kind of message in a loop through the same CSMS: what the CSMS's own work on it allows.
        "same_message_limit_per_s": round(same, 1),
        "ratio_to_same_message_limit": round(rate / same, 2) if rate else None,
        "in_order": order == sorted(order) and len(order) == messages,
        "stop_last": bool(actions) and actions[-1] in ("StopTransaction", "Ended"),
    }


def _sample(version: str, db: Any, local_id: str, at: str, i: int) -> tuple[str, dict[str, Any]]:
    """One synthetic sample (its value is its place in the queue), as the version's adapter would queue it."""
    seq_no = Store.take_number(db, f"v201.seqNo.{local_id}") if version == "2.0.1" else 0
    return _sample_message(version, local_id, at, i, seq_no)


def _sample_message(version: str, local_id: str, at: str, i: int, seq_no: int) -> tuple[str, dict[str, Any]]:
    if version == "1.6":
        return "MeterValues", {"connectorId": 1, "meterValue": [{"timestamp": at, "sampledValue": [{"value": str(i)}]}]}
    return "TransactionEvent", {
        "eventType": "Updated", "timestamp": at, "triggerReason": "MeterValuePeriodic", "offline": True,
        "seqNo": seq_no, "transactionInfo": {"transactionId": local_id},
        "evse": {"id": 1, "connectorId": 1}, "meterValue": [{"timestamp": at, "sampledValue": [{"value": i}]}]}


async def _one_at_a_time(csms: CsmsSimulator, version: str, cp_id: str, frames: list[str]) -> float:
    """CALLs per second the CSMS answers one at a time, sent by a bare client (no station) on loopback."""
    subprotocol = "ocpp1.6" if version == "1.6" else "ocpp2.0.1"
    async with websockets.connect(f"{csms.url}/{cp_id}", subprotocols=[Subprotocol(subprotocol)]) as ws:
        boot = {"1.6": {"chargePointVendor": "bench", "chargePointModel": "limit"},
                "2.0.1": {"reason": "PowerUp", "chargingStation": {"model": "limit", "vendorName": "bench"}}}
        await ws.send(json.dumps([2, "boot", "BootNotification", boot[version]]))
        await ws.recv()
        started = time.monotonic()
        for frame in frames:
            await ws.send(frame)
            await ws.recv()
        return len(frames) / (time.monotonic() - started)


async def heartbeat_limit(csms: CsmsSimulator, version: str, calls: int = 1000) -> float:
    """Heartbeats per second the CSMS answers one at a time (a station that does nothing else, on loopback)."""
    return await _one_at_a_time(csms, version, "HB-LIMIT",
                                [json.dumps([2, f"hb{n}", "Heartbeat", {}]) for n in range(calls)])


async def message_limit(csms: CsmsSimulator, version: str, calls: int = 1000) -> float:
    """Queued-sample messages per second the CSMS answers one at a time, sent by a bare client (no station)."""
    frames = []
    for n in range(calls):
        action, payload = _sample_message(version, "limit", "2026-01-01T00:00:00.000Z", n, n)
        if version == "1.6":
            payload["transactionId"] = 1  # as the queue fills it in when it sends
        frames.append(json.dumps([2, f"m{n}", action, payload]))
    rate = await _one_at_a_time(csms, version, "MSG-LIMIT", frames)
    csms.events.pop("limit", None)  # not a transaction of the run's
    return rate


def _first_sample(message: list[Any]) -> dict[str, Any] | None:
    """The queued synthetic sample of a MeterValues CALL (no measurand), else None."""
    if message[2] not in ("MeterValues", "TransactionEvent") or "meterValue" not in message[3]:
        return None
    sample: dict[str, Any] = message[3]["meterValue"][0]["sampledValue"][0]
    return None if "measurand" in sample else sample
