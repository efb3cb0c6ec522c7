"""The installer: from a clone to a charger running as a hardened systemd service (Raspberry Pi OS Bookworm).

``systemd/install.sh`` (as root) runs it with the system's Python 3.11; ``evse install`` is the same from a
checkout. It installs this tree as the first release under /opt/evse (the layout firmware updates use:
``releases/<version>-<hash>/`` venvs, ``current``, ``guard.py``), makes the ``evse`` user, puts a config in
/etc/evse, writes the unit, udev rules and CAN network files, prints the boot overlays the build needs and starts
the service. Re-running it upgrades in place and keeps the config and the state; ``--uninstall`` removes what it
added (``--purge`` also the config, the state and the user). ``--root DIR`` installs into a throwaway root (no
systemctl, udev or apt there): how the tests run it.
"""

from __future__ import annotations

import argparse
import grp
import hashlib
import json
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from controller import firmware_guard
from controller.config import Config, ConfigError, load_config
from controller.releases import ImageProblem, Releases, VerifyFailed, pack, read_image
from controller.system_files import (
    can_channels,
    missing_boot_lines,
    networkd_file,
    serial_console_problem,
    udev_rules,
)

SOURCE = Path(__file__).resolve().parents[1]
USER = "evse"
#: The groups udev gives the charger's devices on Raspberry Pi OS.
GROUPS = ("gpio", "spi", "dialout")
MANIFEST = "installed.json"


class InstallError(Exception):
    """The installation cannot go on; the message says what to do."""


class Installer:
    """One run of the installer into ``root`` ("/" for real)."""

    def __init__(self, root: str | Path = "/", *, say: Callable[[str], object] = print) -> None:
        self.root = Path(root)
        self.real = self.root == Path("/")
        self.say = say
        self.opt = self._path("/opt/evse")
        self.etc = self._path("/etc/evse")
        self.config_file = self.etc / "config.toml"
        self.state = self._path("/var/lib/evse")
        self.unit = self._path("/etc/systemd/system/evse.service")
        self.udev = self._path("/etc/udev/rules.d/90-evse.rules")
        self.network = self._path("/etc/systemd/network")

    def _path(self, absolute: str) -> Path:
        return self.root / absolute.lstrip("/")

    # ------------------------------------------------------------------ install

    def install(self, *, config: str | None = None, example: str = "pi-ac-single", wheels: Path | None = None,
                extras: str = "pi", start: bool = True) -> None:
        """Install or upgrade; raises InstallError with what to fix."""
        if os.geteuid() != 0:
            raise InstallError("run the installer as root (sudo systemd/install.sh)")
        self._config(config, example)
        charger = self._check_config()
        uid, gid = self._user()
        for path, mode, owner in ((self.opt, 0o755, (uid, gid)), (self.etc, 0o750, (0, gid)),
                                  (self.state, 0o750, (uid, gid))):
            path.mkdir(parents=True, exist_ok=True)
            os.chown(path, *owner)
            path.chmod(mode)
        os.chown(self.config_file, 0, gid)
        self.config_file.chmod(0o640)  # it may hold the CSMS password
        self._release(wheels, extras, uid, gid)
        written = [self._write(self.unit, (SOURCE / "systemd" / "evse.service").read_text(), 0o644)]
        rules, notes = udev_rules(charger, self._udev_lookup)
        written.append(self._write(self.udev, rules, 0o644))
        for note in notes:
            self.say(f"udev: {note}")
        old = self._manifest().get("files", [])
        for channel, bitrate in can_channels(charger).items():
            written.append(self._write(self.network / f"80-evse-{channel}.network", networkd_file(channel, bitrate),
                                       0o644))
            self.say(f"CAN: {channel} comes up at {bitrate} bit/s at boot (systemd-networkd)")
        for stale in set(old) - {str(p.relative_to(self.root)) for p in written}:
            (self.root / stale).unlink(missing_ok=True)  # a CAN bus the config no longer has
        self._write(self.opt / MANIFEST, json.dumps({"files": sorted(str(p.relative_to(self.root)) for p in written)},
                                                    indent=1), 0o644)
        self._boot(charger)
        if self.real:
            self._systemctl(start, bool(can_channels(charger)))
        else:
            self.say(f"installed into {self.root} (no systemctl there: nothing started)")

    def _config(self, config: str | None, example: str) -> None:
        if self.config_file.exists():
            self.say(f"config: kept {self.config_file}")
            return
        source = Path(config) if config else SOURCE / "config" / f"{example}.toml"
        if not source.is_file():
            choices = ", ".join(sorted(p.stem for p in (SOURCE / "config").glob("pi-*.toml")))
            raise InstallError(f"no config {source}: give --config FILE or --example NAME ({choices})")
        self.etc.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, self.config_file)
        self.say(f"config: {self.config_file} from {source}: edit it (station.id, ocpp.csms_url, the wiring), then "
                 "`evse config check /etc/evse/config.toml` and `systemctl restart evse`")

    def _check_config(self) -> Config:
        try:
            return load_config(self.config_file)
        except ConfigError as exc:
            raise InstallError("the config has problems (fix them and run the installer again):\n"
                               + "\n".join(exc.problems)) from None

    def _user(self) -> tuple[int, int]:
        prefix = [] if self.real else ["--prefix", str(self.root)]
        groups = self._groups()
        for group in GROUPS:
            if group not in groups:
                _run(["groupadd", *prefix, "--system", group], f"creating group {group}")
                self.say(f"user: created group {group} (Raspberry Pi OS has it; this system did not)")
        if USER not in self._users():
            _run(["useradd", *prefix, "--system", "--user-group", "--home-dir", "/var/lib/evse", "--no-create-home",
                  "--shell", "/usr/sbin/nologin", "--comment", "EV charging controller", USER], "creating user evse")
            self.say("user: created system user evse")
        missing = [g for g in GROUPS if USER not in self._members(g)]
        if missing:  # only then: usermod rewrites the user database even when nothing changes
            _run(["usermod", *prefix, "--append", "--groups", ",".join(missing), USER], "adding evse to its groups")
            self.say(f"user: evse added to {', '.join(missing)}")
        uid, gid = self._users()[USER]
        return uid, gid

    def _users(self) -> dict[str, tuple[int, int]]:
        if self.real:
            return {p.pw_name: (p.pw_uid, p.pw_gid) for p in pwd.getpwall()}
        rows = (line.split(":") for line in self._path("/etc/passwd").read_text().splitlines() if line)
        return {r[0]: (int(r[2]), int(r[3])) for r in rows}

    def _members(self, group: str) -> list[str]:
        if self.real:
            return list(grp.getgrnam(group).gr_mem)
        for line in self._path("/etc/group").read_text().splitlines():
            fields = line.split(":")
            if fields[0] == group and len(fields) > 3:
                return [m for m in fields[3].split(",") if m]
        return []

    def _groups(self) -> set[str]:
        if self.real:
            return {g.gr_name for g in grp.getgrall()}
        return {line.split(":")[0] for line in self._path("/etc/group").read_text().splitlines() if line}

    def _release(self, wheels: Path | None, extras: str, uid: int, gid: int) -> None:
        releases = Releases(self.opt)
        with tempfile.TemporaryDirectory(prefix="evse-install-") as folder:
            self.say("release: building wheels of this tree and its dependencies (pip; spidev compiles on a Pi)"
                     if wheels is None else f"release: taking the wheels in {wheels}")
            try:
                image = pack(Path(folder) / "image.tar", source=SOURCE if wheels is None else None, wheels=wheels,
                             extras=extras)
            except ImageProblem as exc:
                raise InstallError(f"cannot build the release: {exc}") from None
        digest = hashlib.sha256(image).hexdigest()
        current = firmware_guard.current(self.opt)
        name = f"{read_image(image)[1]}-{digest[:12]}"
        if current == name and (self.opt / "guard.py").exists():
            self.say(f"release: {name} is installed and current: nothing to do")
            return
        try:
            releases.install(image, digest, str(self.config_file), first=True)
        except (ImageProblem, VerifyFailed) as exc:
            raise InstallError(f"release {name} did not install: {exc}") from None
        releases.make_current(name)
        gone = releases.prune({name} | ({current} if current else set()))
        _chown_tree(self.opt, uid, gid)  # the service installs the next releases itself
        self.say(f"release: {name} in {self.opt / 'releases' / name}, current"
                 + (f" (was {current}; removed {', '.join(gone)})" if gone else f" (was {current})" if current else ""))

    def _write(self, path: Path, text: str, mode: int) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
        path.chmod(mode)
        return path

    def _udev_lookup(self, name: str) -> dict[str, str]:
        if not self.real or shutil.which("udevadm") is None:
            return {}
        where = ["--path", f"/sys/class/net/{name}"] if not name.startswith("/") else ["--name", name]
        done = subprocess.run(["udevadm", "info", "--query=property", *where], capture_output=True, text=True)
        return dict(line.split("=", 1) for line in done.stdout.splitlines() if "=" in line) if done.returncode == 0 \
            else {}

    def _boot(self, charger: Config) -> None:
        config_txt = self._path("/boot/firmware/config.txt")
        missing = missing_boot_lines(charger, config_txt.read_text() if config_txt.exists() else None)
        if missing:
            self.say("boot: add these lines to /boot/firmware/config.txt (under [all]), then reboot:")
            for line, why in missing:
                self.say(f"    {line}    # {why}")
        cmdline = self._path("/boot/firmware/cmdline.txt")
        console = serial_console_problem(charger, cmdline.read_text() if cmdline.exists() else None)
        if console:
            self.say(f"boot: remove '{console}' from /boot/firmware/cmdline.txt (the serial console would talk over "
                     "the card reader's UART), or run raspi-config: Interface Options, Serial Port, login shell No")

    def _systemctl(self, start: bool, can: bool) -> None:
        _run(["systemctl", "daemon-reload"], "systemctl daemon-reload")
        if shutil.which("udevadm"):
            _run(["udevadm", "control", "--reload"], "reloading udev rules")
        if can:
            _run(["systemctl", "enable", "--now", "systemd-networkd"], "enabling systemd-networkd")
        _run(["systemctl", "enable", *(["--now"] if start else []), "evse"], "enabling evse")
        if start:
            _run(["systemctl", "restart", "evse"], "starting evse")
            self.say("service: evse enabled and started: `journalctl -u evse -f` shows it, `evse status` too")

    def _manifest(self) -> dict[str, list[str]]:
        try:
            data: dict[str, list[str]] = json.loads((self.opt / MANIFEST).read_text())
            return data
        except (OSError, ValueError):
            return {}

    # ------------------------------------------------------------------ uninstall

    def uninstall(self, *, purge: bool = False) -> None:
        """Remove what the installer added; ``purge``: the config, the state and the user too."""
        if os.geteuid() != 0:
            raise InstallError("run the installer as root (sudo systemd/install.sh --uninstall)")
        if self.real and self.unit.exists():
            _run(["systemctl", "disable", "--now", "evse"], "stopping evse")
        for file in self._manifest().get("files", [str(self.unit.relative_to(self.root))]):
            (self.root / file).unlink(missing_ok=True)
            self.say(f"removed /{file}")
        shutil.rmtree(self.opt, ignore_errors=True)
        self.say(f"removed {self.opt} (every release)")
        if purge:
            for path in (self.etc, self.state):
                shutil.rmtree(path, ignore_errors=True)
                self.say(f"removed {path}")
            if USER in self._users():
                prefix = [] if self.real else ["--prefix", str(self.root)]
                _run(["userdel", *prefix, USER], "removing user evse")
                self.say("removed user evse")
        else:
            self.say(f"kept {self.etc} and {self.state} (and user evse): --uninstall --purge removes them")
        if self.real:
            _run(["systemctl", "daemon-reload"], "systemctl daemon-reload")


def _chown_tree(top: Path, uid: int, gid: int) -> None:
    for folder, dirs, files in os.walk(top):
        for name in (folder, *(os.path.join(folder, n) for n in dirs + files)):
            os.lchown(name, uid, gid)


def _run(command: list[str], what: str) -> None:
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise InstallError(f"{what} failed ({' '.join(command)}): {(done.stderr or done.stdout).strip()}")


def main(argv: list[str] | None = None) -> int:
    """``python -m controller.installer`` / ``evse install``: exit 0 done, 2 with one message saying what to fix."""
    parser = argparse.ArgumentParser(prog="install.sh", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", help="the config to install as /etc/evse/config.toml (kept if it exists)")
    parser.add_argument("--example", default="pi-ac-single", help="or one of config/pi-*.toml (default pi-ac-single)")
    parser.add_argument("--wheels", help="install from these wheels instead of building them (offline)")
    parser.add_argument("--extras", default="pi", help="extras to install (default: pi)")
    parser.add_argument("--root", default="/", help="install into this root instead of / (nothing is started)")
    parser.add_argument("--no-start", action="store_true", help="enable the service but do not start it")
    parser.add_argument("--uninstall", action="store_true", help="remove what the installer added")
    parser.add_argument("--purge", action="store_true", help="with --uninstall: the config, state and user too")
    args = parser.parse_args(argv)
    installer = Installer(args.root)
    try:
        if args.uninstall:
            installer.uninstall(purge=args.purge)
        else:
            installer.install(config=args.config, example=args.example, extras=args.extras,
                              wheels=Path(args.wheels) if args.wheels else None, start=not args.no_start)
    except InstallError as exc:
        print(f"install: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
