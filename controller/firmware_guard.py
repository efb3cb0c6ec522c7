"""The release guard: starts the current release, and rolls a new one back when it cannot come up.

Standard library only, and run from a copy outside every release (``<root>/guard.py``; a firmware update writes
it from the release that installs, the installer writes the first), so that a broken release cannot break its
own way back. The service starts the station through it::

    python3 /opt/evse/guard.py /opt/evse start -- run --config /etc/evse/config.toml --state-dir ...

Layout of ``<root>``: ``releases/<name>/`` (one virtual environment each), ``current`` (a symlink to the release
that runs), ``trial.json`` (a release on trial: what it replaced, its start count and deadline) and
``outcome.json`` (why the last trial was rolled back, for the release that reports it).

A release on trial that is started more than :data:`MAX_TRIAL_STARTS` times (it crashed, hung and was killed by
the watchdog, or the power failed) or started after its deadline is replaced by the one before it. The release
that runs confirms the trial once the CSMS has Accepted its BootNotification (:func:`confirm`).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

CURRENT, RELEASES, TRIAL, OUTCOME = "current", "releases", "trial.json", "outcome.json"
#: Starts a release on trial gets: the first, and two more after crashes.
MAX_TRIAL_STARTS = 3


def read_json(path: Path) -> dict[str, Any] | None:
    """A JSON object from ``path``, or None when there is none (or it is unreadable: treated as absent)."""
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def write_json(path: Path, value: dict[str, Any]) -> None:
    """Write ``value`` so that a power loss leaves either the old file or the new one."""
    part = path.with_name(path.name + ".part")
    with open(part, "w", encoding="utf-8") as out:
        json.dump(value, out)
        out.flush()
        os.fsync(out.fileno())
    os.replace(part, path)
    _sync(path.parent)


def current(root: Path) -> str | None:
    """The name of the release that runs (None: no ``current`` link)."""
    try:
        return Path(os.readlink(root / CURRENT)).name
    except OSError:
        return None


def switch(root: Path, name: str) -> None:
    """Point ``current`` at release ``name`` in one step (a new link renamed over the old one)."""
    link = root / (CURRENT + ".new")
    if link.is_symlink():
        link.unlink()
    os.symlink(Path(RELEASES) / name, link)
    os.replace(link, root / CURRENT)
    _sync(root)


def begin_trial(root: Path, release: str, previous: str, seconds: float) -> None:
    """Run ``release`` from the next start on, on trial for ``seconds`` against ``previous``."""
    write_json(root / TRIAL, {"release": release, "previous": previous, "starts": 0,
                              "deadline": time.time() + seconds})
    (root / OUTCOME).unlink(missing_ok=True)
    switch(root, release)


def confirm(root: Path, release: str) -> bool:
    """The running ``release`` came up: end its trial. False when it was not on trial."""
    trial = read_json(root / TRIAL)
    if trial is None or trial.get("release") != release:
        return False
    (root / TRIAL).unlink(missing_ok=True)
    _sync(root)
    return True


def roll_back(root: Path, why: str) -> str | None:
    """Go back to the release a trial replaced; returns its name (None: nothing was on trial)."""
    trial = read_json(root / TRIAL)
    if trial is None:
        return None
    previous = str(trial.get("previous", ""))
    if not (root / RELEASES / previous).is_dir():
        (root / TRIAL).unlink(missing_ok=True)  # nothing to go back to: keep what runs
        return None
    switch(root, previous)
    write_json(root / OUTCOME, {"release": trial.get("release"), "rolled_back_to": previous, "why": why,
                                "at": time.time()})
    (root / TRIAL).unlink(missing_ok=True)
    return previous


def check_trial(root: Path, now: float | None = None) -> str | None:
    """Count a start of a release on trial, rolling it back when it has had its chances; returns why it was
    rolled back (None: it was not)."""
    trial = read_json(root / TRIAL)
    if trial is None:
        return None
    now = time.time() if now is None else now
    starts = int(trial.get("starts", 0)) + 1
    why = None
    if starts > MAX_TRIAL_STARTS:
        why = f"release {trial.get('release')} did not come up in {MAX_TRIAL_STARTS} starts"
    elif now > float(trial.get("deadline", 0)):
        why = f"release {trial.get('release')} did not reach an Accepted BootNotification before its deadline"
    if why is None:
        write_json(root / TRIAL, {**trial, "starts": starts})
        return None
    roll_back(root, why)
    return why


def start(root: Path, args: list[str]) -> int:
    """Count a trial start, then become ``<root>/current/bin/evse ARGS`` (returns only when that cannot run)."""
    why = check_trial(root)
    if why is not None:
        print(f"evse-guard: {why}: rolled back to release {current(root)}", file=sys.stderr, flush=True)
    program = root / CURRENT / "bin" / "evse"
    if not os.access(program, os.X_OK):
        print(f"evse-guard: not starting: {program} is missing: install a release (systemd/install.sh)",
              file=sys.stderr)
        return 2
    os.execv(program, [str(program), *args])
    return 2  # not reached: execv replaces this process


def _sync(root: Path) -> None:
    # A rename is durable once its directory is synced.
    fd = os.open(root, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def main(argv: list[str]) -> int:
    """``guard.py ROOT start -- ARGS...``"""
    if len(argv) < 2 or argv[1] != "start":
        print("usage: guard.py ROOT start -- EVSE-ARGS...", file=sys.stderr)
        return 2
    args = argv[2:]
    if args[:1] == ["--"]:
        args = args[1:]
    return start(Path(argv[0]), args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
