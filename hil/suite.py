"""``evse-hil suite``: every ``.hil`` script of a folder, each on a fresh simulated charger, in parallel.

Each script runs as its own ``evse-hil run`` process (its own charger, built-in CSMS and state directory), at most
``jobs`` at a time; ``shared`` runs them one after the other on one ``evse run`` daemon through its bench socket
instead (faster to start, but each script finds the charger as the last one left it). A script's first comment
lines, before any other, may say what it needs::

    # config: ../../config/sim-two-socket.toml     (relative to the script)
    # ocpp: 2.0.1
    # reject: DEADBEEF
    # timeout: 120

The reports are the ``evse-hil run`` JSON of each script; :mod:`hil.junit` and :mod:`hil.report` write them as
JUnit XML and as one HTML page.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from controller import version
from hil.control import send_script

#: The header keys a script may set, and the ``evse-hil run`` option each becomes.
DIRECTIVES = {"config": "--config", "ocpp": "--ocpp-version", "reject": "--reject", "timeout": "--timeout"}


class SuiteError(ValueError):
    """A suite that cannot run: no scripts, an unreadable one, a header it does not understand."""


@dataclass
class SuiteResult:
    """Every script's report, in the order the scripts were found, and the suite's wall time."""

    name: str
    reports: list[dict[str, Any]]
    wall: float
    jobs: int
    shared: bool = False
    started_at: float = field(default_factory=time.time)

    @property
    def ok(self) -> bool:
        """Every script passed."""
        return all(r["ok"] for r in self.reports)

    def counts(self) -> dict[str, int]:
        """Scripts passed, failed (a step failed) and in error (the script or its config could not run)."""
        errors = sum(1 for r in self.reports if not r["ok"] and not r["steps"])
        failed = sum(1 for r in self.reports if not r["ok"] and r["steps"])
        return {"scripts": len(self.reports), "passed": len(self.reports) - errors - failed, "failed": failed,
                "errors": errors}

    def as_json(self) -> dict[str, Any]:
        """The whole suite as one JSON document."""
        return {"suite": self.name, "ok": self.ok, "version": version(), "jobs": self.jobs, "shared": self.shared,
                "wall_s": round(self.wall, 3), **self.counts(), "reports": self.reports}


def suite_name(paths: list[Path]) -> str:
    """What a suite is called in its reports: the folder given, or the folder the scripts given share."""
    if len(paths) == 1:
        return str(paths[0])
    parents = {str(p.parent if p.suffix == ".hil" else p) for p in paths}
    return f"{parents.pop()} ({len(paths)} scripts)" if len(parents) == 1 else ", ".join(str(p) for p in paths)


def discover(paths: list[Path]) -> list[Path]:
    """The ``.hil`` files of each folder (sorted, recursively) and each file given, in order."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found += sorted(path.rglob("*.hil"))
        elif path.is_file():
            found.append(path)
        else:
            raise SuiteError(f"{path}: no such file or folder")
    if not found:
        raise SuiteError(f"no .hil scripts in {', '.join(str(p) for p in paths)}")
    return found


def directives(script: Path) -> list[str]:
    """``evse-hil run`` options from the script's leading ``# key: value`` comment lines."""
    options: list[str] = []
    try:
        text = script.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SuiteError(f"{script}: cannot read the script: {getattr(exc, 'strerror', None) or exc}") from exc
    for line in text.splitlines():
        text = line.strip()
        if not text:
            continue
        if not text.startswith("#"):
            break
        key, colon, value = text[1:].partition(":")
        key = key.strip().lower()
        if not colon or " " in key or not key:
            break  # the first ordinary comment ends the header
        if key not in DIRECTIVES:
            raise SuiteError(f"{script}: unknown header '{key}:'; expected one of {', '.join(DIRECTIVES)}")
        value = value.strip()
        if key == "config" and not Path(value).is_absolute():
            value = str((script.parent / value).resolve())
        options += [DIRECTIVES[key], value]
    return options


async def _run_one(script: Path, extra: list[str], gate: asyncio.Semaphore) -> dict[str, Any]:
    async with gate:
        options = directives(script)
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "hil.cli", "run", str(script), *extra, *options,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            out, err = await proc.communicate()
        except asyncio.CancelledError:  # Ctrl-C: no charger is left running
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            raise
    try:
        report: dict[str, Any] = json.loads(out)
    except ValueError:
        tail = err.decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
        report = {"ok": False, "script": str(script), "error": f"evse-hil run exited {proc.returncode}: {tail[0]}",
                  "steps": [], "counts": {"passed": 0, "failed": 0, "skipped": 0}}
    report["exit_code"] = proc.returncode
    return report


async def run_suite(paths: list[Path], *, jobs: int | None = None, extra: list[str] | None = None,
                    name: str | None = None) -> SuiteResult:
    """Run every script found under ``paths``, each in its own ``evse-hil run``, ``jobs`` at a time (the machine's
    core count by default); ``extra`` options go to every run (before the script's own header)."""
    scripts = discover(paths)
    for script in scripts:
        directives(script)  # a bad header fails the suite before anything runs
    jobs = max(1, jobs or os.cpu_count() or 1)
    gate = asyncio.Semaphore(jobs)
    started, began = time.monotonic(), time.time()
    reports = await asyncio.gather(*(_run_one(s, extra or [], gate) for s in scripts))
    return SuiteResult(name or suite_name(paths), list(reports), time.monotonic() - started, jobs, started_at=began)


async def run_shared(paths: list[Path], *, config: str | None = None, name: str | None = None) -> SuiteResult:
    """Run every script, one after the other, on one simulated ``evse run`` through its bench socket."""
    scripts = discover(paths)
    for script in scripts:
        if directives(script):
            raise SuiteError(f"{script}: its header asks for a charger of its own; run it without --shared")
    started, began = time.monotonic(), time.time()
    reports: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="evse-suite-") as state:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "controller.cli", "run", "--state-dir", state, *(["--config", config] if config
                                                                                     else []),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            await _wait_for_socket(Path(state), proc)
            for script in scripts:
                begun = time.monotonic()
                try:
                    result = await send_script(Path(state), script.read_text(encoding="utf-8"))
                except (ConnectionError, OSError, TimeoutError) as exc:  # the charger went (a reset restarts it)
                    result = {"ok": False, "steps": [], "error": f"the shared charger did not answer: {exc}"}
                steps = result.get("steps", [])
                reports.append({
                    "ok": bool(result.get("ok")), "script": str(script), "config": config or "<built-in sim defaults>",
                    "version": version(), "duration": round(time.monotonic() - begun, 6), "steps": steps,
                    "counts": {k: sum(s["status"] == k for s in steps) for k in ("passed", "failed", "skipped")},
                    **({"error": result["error"]} if "error" in result else {})})
        finally:
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.terminate()
            await proc.wait()
    return SuiteResult(name or suite_name(paths), reports, time.monotonic() - started, 1, shared=True,
                       started_at=began)


async def _wait_for_socket(state: Path, proc: asyncio.subprocess.Process, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not (state / "bench.sock").exists():
        if proc.returncode is not None or time.monotonic() > deadline:
            raise SuiteError("the shared charger (evse run) did not come up")
        await asyncio.sleep(0.05)


def summary_table(result: SuiteResult) -> str:
    """The suite as a person reads it: one line per script, then the totals."""
    width = max(len(Path(r["script"]).name) for r in result.reports)
    lines = [f"{'script':<{width}}  result  steps    time  detail"]
    for r in result.reports:
        label = "PASS" if r["ok"] else ("ERROR" if not r["steps"] else "FAIL")
        failing = next((s for s in r["steps"] if s["status"] == "failed"), None)
        detail = r.get("error") or (f"{failing['step']}: {failing['detail']}" if failing else "")
        counts = r["counts"]
        steps = f"{counts['passed']}/{sum(counts.values())}"
        lines.append(f"{Path(r['script']).name:<{width}}  {label:<6}  {steps:>5}  {r.get('duration', 0):6.1f}s  "
                     f"{detail}")
    c = result.counts()
    where = " on one shared charger" if result.shared else ""
    lines.append(f"{c['scripts']} scripts: {c['passed']} passed, {c['failed']} failed, {c['errors']} in error; "
                 f"{result.wall:.1f} s wall with {result.jobs} job(s){where}")
    return "\n".join(lines)
