"""``evse``: run the charger, check a config, or run the demo."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from controller.config import Config, ConfigError, default_config, load_config

DEMO_TAG = "04A1B2C3"
DEMO_SCRIPT = (
    f"plug; tap {DEMO_TAG}; expect Charging within 5; draw 16; wait 6; ev B; expect SuspendedEV; "
    f"ev auto; expect Charging; wait 2; tap {DEMO_TAG}; expect Finishing; unplug; expect Available"
)


def setup_logging(level: str) -> None:
    """Log to stderr at ``level``; library chatter only at debug."""
    logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if level != "debug":
        # Frame-by-frame and state-machine chatter only when debugging.
        for noisy in ("controller.ocpp.frames", "transitions", "ocpp", "websockets", "pymodbus"):
            logging.getLogger(noisy).setLevel(logging.WARNING)


def _load(path: str | None) -> Config:
    return load_config(path) if path else default_config()


def _config_check(args: argparse.Namespace) -> int:
    try:
        load_config(args.file)
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem)
        return 2
    print("OK")
    return 0


def _run(args: argparse.Namespace) -> int:
    setup_logging(args.log_level)
    try:
        config = _load(args.config)
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        print("evse: not starting: fix the configuration above", file=sys.stderr)
        return 2
    if args.id:
        config.station.id = args.id
    from controller.app import App

    app = App(config, state_dir=args.state_dir, csms_url=args.csms)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await app.run(stop)

    asyncio.run(main())
    if app.restart:
        # A CSMS Reset: the outputs are safe and the transactions ended; start afresh in this process slot.
        logging.getLogger(__name__).warning("restarting after a %s reset", app.restart)
        logging.shutdown()
        os.execv(sys.executable, [sys.executable, "-m", "controller.cli", *sys.argv[1:]])
    return 0


def _demo(args: argparse.Namespace) -> int:
    setup_logging(args.log_level)
    from hil.runner import run_script
    from hil.script import parse_script

    config = _load(args.config)
    with tempfile.TemporaryDirectory(prefix="evse-demo-") as state:
        summary = asyncio.run(run_script(config, parse_script(DEMO_SCRIPT), state_dir=Path(state)))
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(render_summary(summary))
    return 0 if summary["ok"] and not summary["csms"].get("timestamp_errors") else 1


def render_summary(summary: dict[str, Any]) -> str:
    """A person-readable account of a bench run."""
    lines = ["Demo: one RFID session on simulated hardware against the built-in CSMS", ""]
    for step in summary["steps"]:
        mark = "ok  " if step["ok"] else "FAIL"
        lines.append(f"  {step['t']:7.2f} s  {mark} {step['step']:<28} {step['detail']}")
    lines.append("")
    for s in summary["sessions"]:
        lines.append(
            f"Session: card {s['id_tag']} on connector {s['connector']}: {s.get('energy_wh', 0)} Wh "
            f"({s['meter_start_wh']} -> {s.get('meter_stop_wh', '?')} Wh), ended {s.get('reason', 'not ended')}"
        )
    csms = summary["csms"]
    for tx in csms.get("transactions", []):
        lines.append(
            f"CSMS transaction {tx['id']}: {tx['id_tag']}, meterStart {tx['meter_start']} Wh, "
            f"meterStop {tx['meter_stop']} Wh, reason {tx['reason']}, {tx['meter_values']} MeterValues"
        )
    started = summary["steps"][0]["t"] if summary["steps"] else 0.0
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


def build_parser() -> argparse.ArgumentParser:
    """The ``evse`` argument parser."""
    parser = argparse.ArgumentParser(prog="evse", description="On-charger EV charging controller")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the charger (under systemd on a real build)")
    run.add_argument("--config", help="TOML config file (default: built-in simulated charger)")
    run.add_argument("--csms", help="CSMS base URL; the station appends /<id> (default: from config)")
    run.add_argument("--id", help="charge point id (default: from config)")
    run.add_argument("--state-dir", help="state directory (default: station.state_dir)")
    run.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    run.set_defaults(func=_run)
    check = sub.add_parser("config", help="configuration tools").add_subparsers(dest="action", required=True)
    chk = check.add_parser("check", help="validate a config file: prints OK or every problem (exit 2)")
    chk.add_argument("file")
    chk.set_defaults(func=_config_check)
    demo = sub.add_parser("demo", help="one scripted session on simulated hardware with the built-in CSMS")
    demo.add_argument("--config", help="a sim config (default: built-in)")
    demo.add_argument("--json", action="store_true", help="print the full JSON summary")
    demo.add_argument("--log-level", default="error", choices=["debug", "info", "warning", "error"])
    demo.set_defaults(func=_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``evse`` command."""
    args = build_parser().parse_args(argv)
    code: int = args.func(args)
    return code


def entry() -> None:
    """Console-script wrapper: exit with main()'s code."""
    sys.exit(main())


if __name__ == "__main__":
    entry()
