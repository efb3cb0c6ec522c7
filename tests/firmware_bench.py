"""Real releases for the firmware tests: wheels of this tree built with pip (under other versions, and one that
crashes at start), images of them, and a station run from a release folder the way the systemd unit runs it."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import re
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

from controller import firmware_guard
from controller.releases import Releases, pack

ROOT = Path(__file__).resolve().parents[1]
#: What ``run`` raises in the release that cannot start (it installs and passes its config check).
CRASH = '        raise RuntimeError("this release cannot start")\n'


def _pip_wheel(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--disable-pip-version-check", *args],
                   check=True, capture_output=True, timeout=600)


def build_wheels(folder: Path, versions: dict[str, bool]) -> dict[str, Path]:
    """One folder of wheels per version (``True``: the crashing one), each with every dependency. Built from
    copies of this tree, so that setuptools' build folders never land in the checkout."""
    deps = folder / "deps"
    made = {}
    for version, crashes in versions.items():
        source = _source(folder / f"src-{version}", version, crashes)
        wheels = folder / f"wheels-{version}"
        if not deps.exists():
            _pip_wheel("-w", str(deps), str(source))  # the dependencies, once
            for ours in deps.glob("evse_controller-*.whl"):
                ours.unlink()
        shutil.copytree(deps, wheels)
        _pip_wheel("--no-deps", "-w", str(wheels), str(source))
        made[version] = wheels
    return made


def _source(source: Path, version: str, crashes: bool) -> Path:
    for part in ("controller", "hal", "hil"):
        shutil.copytree(ROOT / part, source / part, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "README.md", source / "README.md")
    project = (ROOT / "pyproject.toml").read_text()
    (source / "pyproject.toml").write_text(re.sub(r'(?m)^version = ".*"$', f'version = "{version}"', project))
    if crashes:
        app = source / "controller" / "app.py"
        text = app.read_text()
        marker = "        self._stop_event = stop\n"
        assert marker in text
        app.write_text(text.replace(marker, CRASH + marker))
    return source


def first_release(root: Path, wheels: Path) -> str:
    """What the installer does: a first release, current, with the guard beside it."""
    image = pack(root.parent / "first.tar", wheels=wheels)
    releases = Releases(root)
    name = releases.install(image, hashlib.sha256(image).hexdigest(), None, first=True)
    releases.make_current(name)
    return name


class Service:
    """The station as systemd runs it (``Restart=always``): the guard starts ``current``; an exit is a restart."""

    def __init__(self, root: Path, config: Path, state: Path, log: Path) -> None:
        self.root, self.config, self.state, self.log = root, config, state, log
        self.starts = 0
        self._process: asyncio.subprocess.Process | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    async def _supervise(self) -> None:
        with self.log.open("ab") as out:
            while not self._stopping:
                self.starts += 1
                self._process = await asyncio.create_subprocess_exec(
                    sys.executable, str(self.root / "guard.py"), str(self.root), "start", "--", "run", "--config",
                    str(self.config), "--state-dir", str(self.state), stdout=out, stderr=out)
                await self._process.wait()
                await asyncio.sleep(0.5)  # RestartSec

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Service]:
        """Run until the block ends, then stop it with SIGTERM, as systemctl stop does."""
        self._task = asyncio.get_running_loop().create_task(self._supervise())
        try:
            yield self
        finally:
            self._stopping = True
            if self._process is not None and self._process.returncode is None:
                self._process.terminate()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._process.wait(), 20)
                if self._process.returncode is None:
                    self._process.kill()
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def current(self) -> str | None:
        """The release the next start runs."""
        return firmware_guard.current(self.root)
