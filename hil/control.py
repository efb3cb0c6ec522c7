"""The bench control endpoint of a running simulated charger: a unix socket in its state directory.

Protocol: one JSON line in (``{"script": "plug; tap 04A1B2C3"}``), one JSON line
out (``{"ok": true, "steps": [...]}`` or ``{"ok": false, "error": "..."}``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from pathlib import Path
from typing import Any

from hil.script import ScriptError, check_script, parse_script
from hil.steps import Bench, run_steps

log = logging.getLogger(__name__)

MAX_REQUEST = 1 << 20
#: The socket's name in the charger's state directory.
BENCH_SOCKET = "bench.sock"


class BenchControlServer:
    """Runs script steps sent over the socket against the charger's simulators."""

    def __init__(self, path: Path, bench: Bench) -> None:
        self.path = path
        self.bench = bench
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        """Listen (replacing a stale socket file from an earlier run)."""
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        self._server = await asyncio.start_unix_server(self._handle, path=str(self.path), limit=MAX_REQUEST)
        log.info("bench control endpoint at %s", self.path)

    async def stop(self) -> None:
        """Stop listening and remove the socket file."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await reader.readline()
            reply = await self.execute(line)
            writer.write(json.dumps(reply).encode() + b"\n")
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, ValueError) as exc:
            log.warning("bench control request failed: %s", exc)
        finally:
            writer.close()

    async def execute(self, line: bytes) -> dict[str, Any]:
        """Run one request line; every problem becomes an error reply, never an exception."""
        try:
            request = json.loads(line)
            script = request["script"]
            if not isinstance(script, str):
                raise TypeError("script must be a string")
            steps = parse_script(script)
            config = getattr(self.bench, "config", None)
            if config is not None:
                check_script(steps, config)
        except (ValueError, KeyError, TypeError) as exc:
            return {"ok": False, "error": f"bad request: {exc}" if not isinstance(exc, ScriptError) else str(exc)}
        results = await run_steps(steps, self.bench)
        return {"ok": all(r.ok for r in results), "steps": [r.as_json() for r in results]}


async def send_script(state_dir: Path, script: str, timeout: float = 600.0) -> dict[str, Any]:
    """Client side of ``evse-hil ctl``: run a script on the charger whose state dir is given."""
    path = state_dir / BENCH_SOCKET
    try:
        reader, writer = await asyncio.open_unix_connection(str(path), limit=MAX_REQUEST)
    except (FileNotFoundError, ConnectionRefusedError) as exc:
        raise ConnectionError(
            f"no simulated charger listening at {path} (is `evse run` with hardware = \"sim\" running "
            f"with --state-dir {state_dir}?): {exc}"
        ) from exc
    try:
        writer.write(json.dumps({"script": script}).encode() + b"\n")
        await writer.drain()
        line = await asyncio.wait_for(reader.readline(), timeout)
    finally:
        writer.close()
    result: dict[str, Any] = json.loads(line)
    return result
