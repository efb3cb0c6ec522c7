"""``evse status``: what the charger is doing, from its status API or, without one, from its state directory."""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from controller.config import INSTALLED_CONFIG, ConfigError, config_path, load_config


def add_status_command(sub: Any) -> None:
    """Register ``evse status`` on the ``evse`` subcommand parser."""
    status = sub.add_parser("status", help="what the charger is doing: from its status API, else its state "
                            "directory (exit 1 while a connector is faulted, 2 when no status is found)")
    status.add_argument("--config", help=f"the charger's config (default: {INSTALLED_CONFIG} where it exists)")
    status.add_argument("--url", help="the status API, e.g. http://127.0.0.1:8080 (default: api.listen)")
    status.add_argument("--token", help="the API's token (default: api.token)")
    status.add_argument("--state-dir", help="read status.json and the session history here instead")
    status.add_argument("--sessions", type=int, default=5, help="how many recent sessions to list (default 5)")
    status.add_argument("--json", action="store_true", help="print the status API's JSON")
    status.set_defaults(func=_status)


def _status(args: argparse.Namespace) -> int:
    from controller.api.history import read_sessions
    from controller.api.publisher import STATUS_FILE

    config = None
    path = config_path(args.config)
    if path:
        try:
            config = load_config(path)
        except ConfigError as exc:
            print(f"evse status: {exc.problems[0]}", file=sys.stderr)
            return 2
    url = args.url
    if url is None and config is not None and config.api.listen and not args.state_dir:
        host, _, port = config.api.listen.rpartition(":")
        url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::', '[::]') else host}:{port}"
    token = args.token or (config.api.token if config is not None else "")
    state_dir = Path(args.state_dir or (config.station.state_dir if config is not None else "/var/lib/evse"))
    tried: list[str] = []
    status = sessions = None
    source = ""
    if url and not args.state_dir:
        try:
            status = _get(url, "/api/v1/status", token)
            sessions = _get(url, f"/api/v1/sessions?limit={max(1, args.sessions)}", token)["sessions"]
            source = url
        except (OSError, ValueError) as exc:
            tried.append(f"{url}: {exc}")
    if status is None:
        file = state_dir / STATUS_FILE
        try:
            status = json.loads(file.read_text())
            sessions = read_sessions(state_dir, max(1, args.sessions))
            source = f"{file}, written {time.time() - file.stat().st_mtime:.0f} s ago"
        except (OSError, ValueError) as exc:
            tried.append(f"{file}: {getattr(exc, 'strerror', None) or exc}")
    if status is None:
        print("evse status: no charger status found (is `evse run` running? its API or its --state-dir?): "
              + "; ".join(tried), file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps({"status": status, "sessions": sessions}, indent=1))
    else:
        print(render(status, sessions or [], source))
    return 1 if any(e["faults"] for e in status["evses"]) else 0


def _get(base: str, path: str, token: str) -> Any:
    request = urllib.request.Request(base.rstrip("/") + path)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=3) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        raise ValueError(f"HTTP {exc.code} {exc.reason}") from None


def render(status: dict[str, Any], sessions: list[dict[str, Any]], source: str) -> str:
    """The status as a person reads it on a terminal."""
    st, csms = status["station"], status["csms"]
    link = "connected" if csms["connected"] else "NOT connected"
    queued = f", {csms['queued']} message(s) queued" if csms.get("queued") else ""
    lines = [f"{st['id']}: evse-controller {st['version']}, OCPP {st['ocpp_version']}, {st['hardware']} hardware"
             + (" (stopped)" if status.get("stopped") else ""),
             f"CSMS {csms['url']}: {link}{queued}", f"(from {source})"]
    for e in status["evses"]:
        parts = [f"connector {e['id']} ({e['kind'].upper()}): {e['status']}", f"vehicle {e['vehicle']}"
                 + (f" (pilot {e['pilot']})" if e.get("pilot") else "")]
        if e["offered_a"] is not None:
            parts.append(f"offered {e['offered_a']:.1f} A")
        amps = [a for a in e["current_a"] or [] if a is not None]
        if amps:
            parts.append("drawn " + "/".join(f"{a:.1f}" for a in amps) + " A")
        if e["power_w"] is not None:
            parts.append(f"{e['power_w'] / 1000:.2f} kW")
        parts.append("contactor " + ("closed" if e["contactor_closed"] else "open"))
        tx = e["transaction"]
        if tx:
            parts.append(f"session {tx['id_token']} {(tx['energy_wh'] or 0) / 1000:.3f} kWh")
        lines.append(", ".join(parts))
        lines += [f"  fault {f['code']}" + (f": {f['detail']}" if f["detail"] else "") for f in e["faults"]]
        lines += [f"  warning {w}" for w in e["warnings"]]
    if sessions:
        lines.append("Recent sessions:")
        lines += [f"  {s['stopped_at']}  connector {s['evse']}  {s['id_token']}  {s['energy_wh'] / 1000:.3f} kWh  "
                  f"{s['stop_reason']}" for s in sessions]
    return "\n".join(lines)
