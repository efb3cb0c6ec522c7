"""The installer, run as a builder runs it (systemd/install.sh as root), into a throwaway root: files, modes,
owners, the unit verified and scored by systemd-analyze, a second run idempotent, an upgrade, the uninstall."""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.firmware_bench import build_wheels

ROOT = Path(__file__).resolve().parents[2]
ANALYZE = shutil.which("systemd-analyze")
pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="the installer runs as root (it makes a user and chowns)"),
    pytest.mark.timeout(900),
]


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return build_wheels(tmp_path_factory.mktemp("wheels"), {"0.1.0": False, "0.2.0": False})


@pytest.fixture
def target(tmp_path: Path) -> Iterator[Path]:
    """A root with what a fresh Raspberry Pi OS has that the installer touches: the user database and /boot."""
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    for name in ("passwd", "group", "shadow", "gshadow", "login.defs"):
        if Path("/etc", name).exists():
            shutil.copy(Path("/etc", name), root / "etc" / name)
    with (root / "etc" / "group").open("a") as group:
        group.write("gpio:x:997:\nspi:x:999:\n")  # Raspberry Pi OS's; dialout is Debian's
    boot = root / "boot" / "firmware"
    boot.mkdir(parents=True)
    (boot / "config.txt").write_text("[all]\ndtparam=audio=on\ndtparam=spi=on\n")
    (boot / "cmdline.txt").write_text("console=serial0,115200 console=tty1 root=PARTUUID=1234-02 rootwait\n")
    yield root


def install(root: Path, wheels: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(ROOT / "systemd" / "install.sh"), "--root", str(root), "--wheels", str(wheels),
                           "--extras", "", *extra], capture_output=True, text=True, timeout=600)


def _ids(root: Path, file: str, name: str) -> list[str]:
    return next(line.split(":") for line in (root / "etc" / file).read_text().splitlines()
                if line.startswith(name + ":"))


def _tree(root: Path) -> dict[str, tuple[int, int, int, float]]:
    return {str(p.relative_to(root)): (p.lstat().st_mode, p.lstat().st_uid, p.lstat().st_gid, p.lstat().st_mtime)
            for p in sorted(root.rglob("*")) if "__pycache__" not in p.parts}


def test_install_upgrade_and_uninstall_in_a_throwaway_root(target: Path, wheels: dict[str, Path]) -> None:
    first = install(target, wheels["0.1.0"])
    assert first.returncode == 0, first.stderr
    out = first.stdout
    user = _ids(target, "passwd", "evse")
    uid, gid = int(user[2]), int(user[3])
    assert user[5:] == ["/var/lib/evse", "/usr/sbin/nologin"]
    for group in ("gpio", "spi", "dialout"):
        assert "evse" in _ids(target, "group", group)[3].split(","), group
    opt = target / "opt" / "evse"
    current = os.readlink(opt / "current")
    assert re.fullmatch(r"releases/0\.1\.0-[0-9a-f]{12}", current), current
    assert (opt / "guard.py").is_file() and (opt / current / "bin" / "evse").is_file()
    assert (opt.stat().st_uid, opt.stat().st_gid) == (uid, gid)  # the service installs the next releases
    assert all(p.lstat().st_uid == uid for p in (opt / current).rglob("*"))
    config = target / "etc" / "evse" / "config.toml"
    assert config.read_text() == (ROOT / "config" / "pi-ac-single.toml").read_text()
    assert (stat.S_IMODE(config.stat().st_mode), config.stat().st_uid, config.stat().st_gid) == (0o640, 0, gid)
    state = target / "var" / "lib" / "evse"
    assert (stat.S_IMODE(state.stat().st_mode), state.stat().st_uid) == (0o750, uid)
    unit = target / "etc" / "systemd" / "system" / "evse.service"
    assert unit.read_text() == (ROOT / "systemd" / "evse.service").read_text()
    assert stat.S_IMODE(unit.stat().st_mode) == 0o644
    assert (target / "etc" / "udev" / "rules.d" / "90-evse.rules").is_file()
    # What the builder is told: the boot lines missing from config.txt (SPI is there already), the console.
    assert "    dtparam=spi=on" not in out
    assert "    enable_uart=1    # the device on /dev/serial0 (GPIO14/15)" in out
    assert "    dtoverlay=pwm,pin=18,func=2    # the hardware PWM of connector 1's pilot" in out
    assert "remove 'console=serial0,115200' from /boot/firmware/cmdline.txt" in out
    assert "udev: rfid.port = /dev/serial0: on-board or already stable, no rule needed" in out

    before = _tree(target)
    again = install(target, wheels["0.1.0"])
    assert again.returncode == 0, again.stderr
    assert "is installed and current: nothing to do" in again.stdout and "config: kept" in again.stdout
    assert _tree(target) == before  # idempotent: nothing rewritten, no mode or owner changed

    config.write_text(config.read_text() + "# the builder's own edit\n")
    (state / "queue.sqlite3").write_text("precious")
    upgrade = install(target, wheels["0.2.0"])
    assert upgrade.returncode == 0, upgrade.stderr
    assert os.readlink(opt / "current").startswith("releases/0.2.0-")
    assert config.read_text().endswith("# the builder's own edit\n")
    assert (state / "queue.sqlite3").read_text() == "precious"

    removed = subprocess.run(["bash", str(ROOT / "systemd" / "install.sh"), "--root", str(target), "--uninstall"],
                             capture_output=True, text=True, timeout=60)
    assert removed.returncode == 0, removed.stderr
    assert not opt.exists() and not unit.exists()
    assert not (target / "etc" / "udev" / "rules.d" / "90-evse.rules").exists()
    assert config.exists() and state.exists() and "evse:" in (target / "etc" / "passwd").read_text()
    purged = subprocess.run(["bash", str(ROOT / "systemd" / "install.sh"), "--root", str(target), "--uninstall",
                             "--purge"], capture_output=True, text=True, timeout=60)
    assert purged.returncode == 0, purged.stderr
    assert not config.exists() and not state.exists()
    assert not any(line.startswith("evse:") for line in (target / "etc" / "passwd").read_text().splitlines())


@pytest.mark.skipif(ANALYZE is None, reason="systemd-analyze is not installed (Debian package systemd)")
def test_the_unit_verifies_and_its_exposure_is_at_most_2_5(tmp_path: Path) -> None:
    unit = tmp_path / "etc" / "systemd" / "system" / "evse.service"
    unit.parent.mkdir(parents=True)
    shutil.copy(ROOT / "systemd" / "evse.service", unit)
    verify = subprocess.run([str(ANALYZE), "verify", str(unit)], capture_output=True, text=True, timeout=60)
    assert verify.returncode == 0 and not verify.stderr.strip(), verify.stderr
    score = subprocess.run([str(ANALYZE), "security", "--offline=yes", f"--root={tmp_path}", "--no-pager",
                            "evse.service"], capture_output=True, text=True, timeout=60)
    exposure = re.search(r"Overall exposure level for evse\.service: (\d+\.\d)", score.stdout)
    assert exposure, score.stdout + score.stderr
    assert float(exposure[1]) <= 2.5, score.stdout
    # The devices a charger drives stay reachable; CAN sockets are allowed.
    text = unit.read_text()
    for needed in ("DeviceAllow=char-gpiochip rw", "DeviceAllow=char-spi rw", "DeviceAllow=char-ttyUSB rw",
                   "AF_CAN", "SupplementaryGroups=gpio spi dialout"):
        assert needed in text


def test_a_bad_config_stops_the_install_before_anything_is_made(target: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[station]\nhardware = "pi"\n[[connector]]\nid = 1\n')
    done = subprocess.run(["bash", str(ROOT / "systemd" / "install.sh"), "--root", str(target), "--config", str(bad),
                           "--wheels", str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.startswith("install: the config has problems") and "ocpp.csms_url = ''" in done.stderr
    assert not (target / "opt").exists() and "evse:" not in (target / "etc" / "passwd").read_text()
