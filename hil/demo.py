"""``evse demo``: one RFID session on simulated hardware against the built-in CSMS, told as a person reads it.

The bench adds this command to ``evse`` through the ``evse_controller.commands`` entry point.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from controller.cli import OCPP_VERSIONS, log_levels
from controller.config import Config, default_config, load_config
from controller.logsetup import setup_logging

DEMO_TAG = "04A1B2C3"
DEMO_SCRIPT = (
    f"plug; tap {DEMO_TAG}; expect Charging within 5; draw 16; wait 6; ev B; expect SuspendedEV; "
    f"ev auto; expect Charging; wait 2; tap {DEMO_TAG}; expect Finishing; unplug; expect Available"
)
#: A DC car takes its time: the handshake, the insulation test and the precharge come before current flows;
#: after the stop the current comes down, the contactors open and the outlet discharges before the cable unlocks.
DC_DEMO_SCRIPT = (
    f"plug; tap {DEMO_TAG}; expect Charging within 30; wait 6; tap {DEMO_TAG}; expect Finishing within 10; "
    "wait 4; unplug; expect Available within 10"
)


def register(sub: Any) -> None:
    """Add ``demo`` to the ``evse`` command's subcommands."""
    demo = sub.add_parser("demo", help="one scripted session on simulated hardware with the built-in CSMS")
    demo.add_argument("--config", help="a sim config (default: built-in; a DC one runs a DC session)")
    demo.add_argument("--json", action="store_true", help="print the full JSON summary")
    demo.add_argument("--ocpp-version", choices=OCPP_VERSIONS, help="OCPP version (default: from config, 1.6)")
    demo.add_argument("--log-level", default="error", type=log_levels, metavar="LEVELS",
                      help="a level, and/or COMPONENT=LEVEL pairs, comma-separated")
    demo.set_defaults(func=_demo)


def _config(path: str | None) -> Config:
    return load_config(path) if path else default_config()


def _demo(args: argparse.Namespace) -> int:
    setup_logging(args.log_level)
    from hil.runner import run_script
    from hil.script import parse_script

    config = _config(args.config)
    if args.ocpp_version:
        config.ocpp.version = args.ocpp_version
    with tempfile.TemporaryDirectory(prefix="evse-demo-") as state:
        script = DC_DEMO_SCRIPT if config.connector and config.connector[0].dc else DEMO_SCRIPT
        summary = asyncio.run(run_script(config, parse_script(script), state_dir=Path(state)))
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(render_summary(summary))
    return 0 if summary["ok"] and not summary["csms"].get("timestamp_errors") else 1


def render_summary(summary: dict[str, Any]) -> str:
    """A person-readable account of a bench run."""
    lines = ["Demo: one RFID session on simulated hardware against the built-in CSMS", ""]
    for step in summary["steps"]:
        mark = {"passed": "ok  ", "failed": "FAIL", "skipped": "skip"}[step["status"]]
        lines.append(f"  {step['start']:7.2f} s  {mark} {step['step']:<28} {step['detail']}")
    lines.append("")
    for s in summary["sessions"]:
        lines.append(
            f"Session: card {s['id_tag']} on connector {s['connector']}: {s.get('energy_wh', 0)} Wh "
            f"({s['meter_start_wh']} -> {s.get('meter_stop_wh', '?')} Wh), ended {s.get('reason', 'not ended')}"
        )
    csms = summary["csms"]
    for tx in csms.get("transactions", []):
        if "transaction_id" in tx:  # 2.0.1: the station's id, its TransactionEvents
            lines.append(
                f"CSMS transaction {tx['transaction_id']}: {tx['id_token']}, {tx['events']} TransactionEvents"
                f"{' in seqNo order' if tx['in_seq_order'] else ' OUT OF seqNo ORDER'}, stoppedReason "
                f"{tx['stopped_reason']}, {tx['meter_values']} meter values"
            )
            continue
        lines.append(
            f"CSMS transaction {tx['id']}: {tx['id_tag']}, meterStart {tx['meter_start']} Wh, "
            f"meterStop {tx['meter_stop']} Wh, reason {tx['reason']}, {tx['meter_values']} MeterValues"
        )
    started = summary["steps"][0]["start"] if summary["steps"] else 0.0
    contactor = [o for o in summary["timeline"] if o["kind"] == "contactor" and o["t"] >= started]
    self_test = sum(1 for o in summary["timeline"] if o["kind"] == "contactor" and o["t"] < started)
    lines.append(f"Contactor switched {len(contactor)} times during the session: "
                 + ", ".join(f"{o['value']} at {o['t']:.3f} s" for o in contactor)
                 + (f" (and {self_test} times in the start-up self-test)" if self_test else ""))
    if "timestamp_errors" in csms:
        errors = csms["timestamp_errors"]
        lines.append("Timestamps: all strict RFC 3339" if not errors else f"Timestamp errors: {errors}")
    statuses = Counter(s["status"] for s in summary["statuses"])
    lines.append("Statuses reported: " + ", ".join(f"{k} x{v}" for k, v in statuses.items()))
    ok = summary["ok"] and not csms.get("timestamp_errors")
    lines.append(f"Result: {'OK' if ok else 'FAILED'}")
    return "\n".join(lines)


