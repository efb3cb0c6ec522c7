"""Releases of this package as firmware: the image a CSMS sends, installing one beside the running one, and the
switch to it (with :mod:`controller.firmware_guard` to roll it back).

An image is a tar archive (plain or compressed) of wheels: exactly one ``evse_controller-*.whl`` and the wheels of
every dependency, for the station's platform (``evse firmware pack`` makes one), with an optional
``release.json`` saying what to install (``{"requirement": "evse-controller[pi]"}``; default the package without
extras). Installing makes a new virtual environment ``<root>/releases/<version>-<hash>/``, installs from the
image's wheels only (``pip --no-index``: nothing comes from the network, nothing is built), and checks that the new
release reads this station's config before anything switches.
"""

from __future__ import annotations

import io
import json
import logging
import lzma
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import zlib
from pathlib import Path

from controller import firmware_guard
from controller.schema import DB_NAME, SCHEMA_VERSION, stored_schema

log = logging.getLogger(__name__)

DIST = "evse-controller"
#: The database as it was before a switch to a new release, in the state directory (the new release may migrate
#: it to a schema the old one cannot open).
SNAPSHOT = "before-update.sqlite3"
_WHEEL = re.compile(r"^evse_controller-(?P<version>[^-]+)-.+\.whl$")
#: How long creating the environment and installing into it may take (a Pi 3 installs cryptography in ~1 min).
INSTALL_TIMEOUT = 900.0
VERIFY_TIMEOUT = 120.0


class ImageProblem(Exception):
    """The image is not a release (InstallationFailed)."""


class VerifyFailed(Exception):
    """The release installed but does not work here (InstallVerificationFailed)."""


def read_image(image: bytes) -> tuple[dict[str, bytes], str, str]:
    """The image's wheels by file name, the version of this package in it, and the requirement to install."""
    wheels: dict[str, bytes] = {}
    requirement = DIST
    try:
        with tarfile.open(fileobj=io.BytesIO(image), mode="r:*") as archive:
            for member in archive.getmembers():
                name = Path(member.name).name
                # Only regular files are read, by their base name: no path in the image reaches the file system.
                if not member.isfile() or not (name.endswith(".whl") or name == "release.json"):
                    continue
                handle = archive.extractfile(member)
                data = handle.read() if handle is not None else b""
                if name == "release.json":
                    requirement = _requirement(data)
                elif name in wheels:
                    raise ImageProblem(f"{name} is in the image twice")
                else:
                    wheels[name] = data
    except (tarfile.TarError, EOFError, OSError, zlib.error, lzma.LZMAError) as exc:
        raise ImageProblem(f"not a readable tar archive ({exc})") from exc
    ours = [m for m in (_WHEEL.match(n) for n in wheels) if m is not None]
    if len(ours) != 1:
        raise ImageProblem(f"expected one evse_controller wheel in the image, found {len(ours)}")
    return wheels, ours[0]["version"], requirement


def _requirement(data: bytes) -> str:
    try:
        value = json.loads(data).get("requirement", DIST)
    except (ValueError, AttributeError) as exc:
        raise ImageProblem("release.json is not a JSON object") from exc
    if not isinstance(value, str) or not re.fullmatch(r"evse-controller(\[[a-z0-9,\-]+\])?", value):
        raise ImageProblem(f"release.json: requirement {value!r} is not evse-controller[EXTRAS]")
    return value


def running_release(root: Path) -> str | None:
    """The name of the release this process runs from (None: not from one under ``root``)."""
    prefix = Path(sys.prefix).resolve()
    return prefix.name if prefix.parent == (root / firmware_guard.RELEASES).resolve() else None


class Releases:
    """The releases under one root (``firmware.releases_dir``)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def problem(self) -> str | None:
        """What keeps this station from installing releases (None: nothing)."""
        if not str(self.root) or str(self.root) == ".":
            return "firmware.releases_dir is not set: this station was not installed as releases"
        return None

    def install(self, image: bytes, digest: str, config_file: str | None, *, first: bool = False) -> str:
        """Install ``image`` (runs for minutes: call it in a thread); returns the new release's name. Raises
        :class:`ImageProblem` or :class:`VerifyFailed`, leaving nothing behind. ``first``: the installer's
        first release, from outside any release."""
        wheels, version, requirement = read_image(image)
        if not first and running_release(self.root) is None:
            # The guard could not start it, nor bring this one back: a station run from a checkout or a
            # hand-made environment updates by hand.
            raise ImageProblem(f"this station does not run from a release under {self.root} (it runs from "
                               f"{sys.prefix})")
        name = f"{version}-{digest[:12]}"
        target = self.root / firmware_guard.RELEASES / name
        if name == running_release(self.root):
            raise ImageProblem(f"release {name} is the one running")
        shutil.rmtree(target, ignore_errors=True)  # what a failed attempt left
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            with tempfile.TemporaryDirectory(dir=self.root, prefix=".image-") as folder:
                for file, data in wheels.items():
                    (Path(folder) / file).write_bytes(data)
                _run([sys.executable, "-m", "venv", str(target)], "creating the environment", ImageProblem)
                _run([str(target / "bin" / "python"), "-m", "pip", "install", "--quiet", "--no-index",
                      "--disable-pip-version-check", "--find-links", folder, f"{requirement}=={version}"],
                     "pip install", ImageProblem)
            check = ["config", "check", config_file] if config_file else ["--help"]
            _run([str(target / "bin" / "evse"), *check], "the new release's config check", VerifyFailed,
                 VERIFY_TIMEOUT)
        except BaseException:
            shutil.rmtree(target, ignore_errors=True)
            raise
        return name

    def make_current(self, name: str) -> None:
        """Run release ``name`` from the next start on, with no trial (the installer's first release)."""
        self._write_guard()
        firmware_guard.switch(self.root, name)

    def _write_guard(self) -> None:
        # The unit's ExecStart: a power cut while it is written must leave the old one or the new one whole.
        part = self.root / "guard.part"
        shutil.copyfile(firmware_guard.__file__, part)
        with open(part, "rb") as written:
            os.fsync(written.fileno())
        part.replace(self.root / "guard.py")

    def switch_to(self, name: str, previous: str, trial_seconds: float) -> None:
        """Make ``name`` the release the next start runs, on trial against ``previous``. The guard that starts it
        is this release's (known to work)."""
        self._write_guard()
        firmware_guard.begin_trial(self.root, name, previous, trial_seconds)

    def prune(self, keep: set[str]) -> list[str]:
        """Remove every release but ``keep`` (the one running and the one it replaced); returns what went."""
        gone = []
        folder = self.root / firmware_guard.RELEASES
        for release in sorted(folder.iterdir()) if folder.is_dir() else []:
            if release.name not in keep and release.is_dir():
                shutil.rmtree(release, ignore_errors=True)
                gone.append(release.name)
        return gone

    def guard_command(self, args: list[str]) -> list[str]:
        """The command line that starts the current release through the guard with ``args``."""
        return [sys.executable, str(self.root / "guard.py"), str(self.root), "start", "--", *args]


def pack(out: Path, *, source: Path | None = None, wheels: Path | None = None, extras: str = "") -> bytes:
    """Make an image at ``out``: the wheels in ``wheels``, or those ``pip wheel`` builds from ``source`` (this
    package and every dependency, for the platform that runs it: pack on the Pi's kind of machine, or give wheels
    made for it). Returns the image."""
    requirement = f"{DIST}[{extras}]" if extras else DIST
    with tempfile.TemporaryDirectory(prefix="evse-pack-") as folder:
        if wheels is None:
            target = f"{source or Path.cwd()}[{extras}]" if extras else str(source or Path.cwd())
            _run([sys.executable, "-m", "pip", "wheel", "--quiet", "--disable-pip-version-check", "-w", folder,
                  target], "pip wheel", ImageProblem)
            wheels = Path(folder)
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as tar:
            entries = {"release.json": json.dumps({"requirement": requirement}).encode()}
            entries.update((w.name, w.read_bytes()) for w in sorted(wheels.glob("*.whl")))
            for name, data in entries.items():
                info = tarfile.TarInfo(name)
                info.size, info.mode = len(data), 0o644
                tar.addfile(info, io.BytesIO(data))
    image = buffer.getvalue()
    read_image(image)  # an image this station would refuse is not written
    out.write_bytes(image)
    return image


def restore_after_rollback(root: str | Path, state_dir: Path) -> bool:
    """At start, after a rollback: when the release rolled back from migrated the database to a schema this one
    cannot open, put back the copy taken before the switch (:data:`SNAPSHOT`); the migrated database is kept
    beside it. True when it did."""
    snapshot = state_dir / SNAPSHOT
    if not str(root) or not (Path(root) / firmware_guard.OUTCOME).exists() or not snapshot.exists():
        return False
    schema = stored_schema(state_dir)
    if schema is None or schema <= SCHEMA_VERSION:
        return False
    database = state_dir / DB_NAME
    aside = f".rolled-back-{int(time.time())}"
    for suffix in ("", "-wal", "-shm"):
        part = database.with_name(database.name + suffix)
        if part.exists():
            part.replace(part.with_name(part.name + aside))
    shutil.copyfile(snapshot, database)
    log.error("the release rolled back from had migrated the database to schema %d; restored the copy taken "
              "before the update (what it recorded since is in %s%s)", schema, database, aside)
    return True


def _run(command: list[str], what: str, error: type[Exception], timeout: float = INSTALL_TIMEOUT) -> None:
    # Not the caller's PYTHONPATH nor its working directory: a source tree on either (the installer runs from a
    # clone) would make pip take this package as installed already and skip it.
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False, env=env,
                              cwd=tempfile.gettempdir())
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise error(f"{what} failed: {exc}") from exc
    if done.returncode != 0:
        tail = " | ".join((done.stderr or done.stdout).strip().splitlines()[-3:])
        raise error(f"{what} failed (exit {done.returncode}): {tail[:400]}")
