"""The release guard and firmware images, on folders made here (the real installs are in
``tests/bench/test_firmware_releases.py``)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

from controller import firmware_guard as guard
from controller.config import ConfigError, parse_config
from controller.releases import ImageProblem, Releases, read_image

GUARD = Path(guard.__file__)


def fake_release(root: Path, name: str) -> Path:
    """A release whose ``evse`` writes its name and arguments to ``<root>/ran`` (what the guard started)."""
    folder = root / guard.RELEASES / name / "bin"
    folder.mkdir(parents=True)
    program = folder / "evse"
    program.write_text(f'#!/bin/sh\necho "{name} $*" >> "{root}/ran"\nexit 3\n')
    program.chmod(0o755)
    return program


def guard_start(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(GUARD), str(root), "start", "--", *args], capture_output=True,
                          text=True, timeout=30, check=False)


def test_the_guard_starts_the_current_release_with_the_service_arguments(tmp_path: Path) -> None:
    fake_release(tmp_path, "1.0-a")
    guard.switch(tmp_path, "1.0-a")
    done = guard_start(tmp_path, "run", "--config", "/etc/evse/config.toml")
    assert done.returncode == 3  # the release's own exit: the guard became it
    assert (tmp_path / "ran").read_text() == "1.0-a run --config /etc/evse/config.toml\n"


def test_a_release_that_keeps_failing_is_rolled_back_on_its_fourth_start(tmp_path: Path) -> None:
    fake_release(tmp_path, "1.0-a")
    fake_release(tmp_path, "2.0-b")
    guard.switch(tmp_path, "1.0-a")
    guard.begin_trial(tmp_path, "2.0-b", "1.0-a", 600)
    for _ in range(guard.MAX_TRIAL_STARTS):
        assert guard_start(tmp_path, "run").returncode == 3
    assert (tmp_path / "ran").read_text() == "2.0-b run\n" * guard.MAX_TRIAL_STARTS
    fourth = guard_start(tmp_path, "run")
    assert "evse-guard: release 2.0-b did not come up in 3 starts: rolled back to release 1.0-a" in fourth.stderr
    assert (tmp_path / "ran").read_text().splitlines()[-1] == "1.0-a run"
    assert guard.current(tmp_path) == "1.0-a" and not (tmp_path / guard.TRIAL).exists()
    outcome = guard.read_json(tmp_path / guard.OUTCOME)
    assert outcome is not None and outcome["release"] == "2.0-b" and outcome["rolled_back_to"] == "1.0-a"


def test_a_release_started_after_its_deadline_is_rolled_back(tmp_path: Path) -> None:
    fake_release(tmp_path, "1.0-a")
    fake_release(tmp_path, "2.0-b")
    guard.begin_trial(tmp_path, "2.0-b", "1.0-a", 60)
    assert guard.check_trial(tmp_path, now=time.time() + 30) is None
    why = guard.check_trial(tmp_path, now=time.time() + 61)
    assert why is not None and "before its deadline" in why and guard.current(tmp_path) == "1.0-a"


def test_a_confirmed_release_stays_and_a_trial_with_nothing_to_go_back_to_keeps_what_runs(tmp_path: Path) -> None:
    fake_release(tmp_path, "2.0-b")
    guard.begin_trial(tmp_path, "2.0-b", "1.0-gone", 600)
    assert not guard.confirm(tmp_path, "1.0-gone") and guard.confirm(tmp_path, "2.0-b")
    assert guard.check_trial(tmp_path) is None and guard.current(tmp_path) == "2.0-b"
    guard.begin_trial(tmp_path, "2.0-b", "1.0-gone", 600)
    assert guard.roll_back(tmp_path, "test") is None and guard.current(tmp_path) == "2.0-b"
    assert not (tmp_path / guard.TRIAL).exists()


def test_a_trial_file_a_power_cut_garbled_counts_as_none(tmp_path: Path) -> None:
    fake_release(tmp_path, "1.0-a")
    guard.switch(tmp_path, "1.0-a")
    (tmp_path / guard.TRIAL).write_text('{"release": "2.0')
    assert guard.check_trial(tmp_path) is None and guard.current(tmp_path) == "1.0-a"


def test_the_guard_says_in_one_line_when_there_is_no_release(tmp_path: Path) -> None:
    done = guard_start(tmp_path, "run")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip() == (f"evse-guard: not starting: {tmp_path}/current/bin/evse is missing: install a "
                                   "release (systemd/install.sh)")
    usage = subprocess.run([sys.executable, str(GUARD), str(tmp_path)], capture_output=True, text=True, check=False)
    assert usage.returncode == 2 and "usage: guard.py ROOT start" in usage.stderr


def tar(entries: dict[str, bytes], **links: str) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in entries.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
        for name, target in links.items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            archive.addfile(info)
    return buffer.getvalue()


def test_an_image_gives_its_wheels_by_base_name_and_its_requirement() -> None:
    wheels, version, requirement = read_image(tar({
        "dist/evse_controller-1.2.3-py3-none-any.whl": b"ours", "../../etc/x-1.0-py3-none-any.whl": b"dep",
        "release.json": json.dumps({"requirement": "evse-controller[pi]"}).encode(), "notes.txt": b"ignored"},
        **{"evil.whl": "/etc/passwd"}))
    assert wheels == {"evse_controller-1.2.3-py3-none-any.whl": b"ours", "x-1.0-py3-none-any.whl": b"dep"}
    assert (version, requirement) == ("1.2.3", "evse-controller[pi]")


@pytest.mark.parametrize(("image", "problem"), [
    (b"no tar at all", "not a readable tar archive"),
    (tar({"x-1.0-py3-none-any.whl": b"dep"}), "expected one evse_controller wheel in the image, found 0"),
    (tar({"evse_controller-1-py3-none-any.whl": b"a", "evse_controller-2-py3-none-any.whl": b"b"}),
     "found 2"),
    (tar({"evse_controller-1-py3-none-any.whl": b"a", "release.json": b'{"requirement": "rm -rf /"}'}),
     "is not evse-controller[EXTRAS]"),
    (tar({"a/x-1-py3-none-any.whl": b"a", "b/x-1-py3-none-any.whl": b"b"}), "is in the image twice"),
])
def test_an_image_that_is_no_release_is_refused_with_why(image: bytes, problem: str) -> None:
    with pytest.raises(ImageProblem, match=problem.replace("[", r"\[").replace("]", r"\]")):
        read_image(image)


def test_an_update_installs_only_into_a_station_that_runs_from_a_release(tmp_path: Path) -> None:
    assert Releases("").problem() == "firmware.releases_dir is not set: this station was not installed as releases"
    image = tar({"evse_controller-9.9-py3-none-any.whl": b"x"})
    with pytest.raises(ImageProblem, match=f"does not run from a release under {tmp_path}"):
        Releases(tmp_path).install(image, "ab" * 32, None)
    assert not (tmp_path / guard.RELEASES).exists()


def test_a_relative_releases_dir_and_a_missing_manufacturer_root_are_named_in_the_config_check() -> None:
    with pytest.raises(ConfigError) as bad:
        parse_config({"firmware": {"releases_dir": "opt/evse", "manufacturer_root_file": "/nowhere/maker.pem"},
                      "connector": [{"id": 1}]}, "charger.toml")
    assert bad.value.problems == [
        "charger.toml: firmware.releases_dir = 'opt/evse': expected an absolute path such as '/opt/evse' (the "
        "service starts from it whatever its working directory)",
        "charger.toml: firmware.manufacturer_root_file = '/nowhere/maker.pem': expected a PEM file that exists"]


def test_the_switch_is_one_rename(tmp_path: Path) -> None:
    fake_release(tmp_path, "1.0-a")
    fake_release(tmp_path, "2.0-b")
    guard.switch(tmp_path, "1.0-a")
    guard.switch(tmp_path, "2.0-b")
    assert os.readlink(tmp_path / guard.CURRENT) == "releases/2.0-b"  # relative: the folder can move
    assert not (tmp_path / "current.new").exists()


def test_evse_firmware_pack_writes_an_image_and_its_signature(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                                              ) -> None:
    from datetime import UTC, datetime

    from controller.cli import main
    from controller.ocpp.signing import verify_image
    from hil.pki import BenchCa

    wheels = tmp_path / "wheels"
    wheels.mkdir()
    (wheels / "evse_controller-2.0.0-py3-none-any.whl").write_bytes(b"ours")
    (wheels / "ocpp-2.1.0-py3-none-any.whl").write_bytes(b"dep")
    maker = BenchCa(tmp_path / "maker", name="manufacturer CA")
    cert, key = maker.pair("signer", "firmware signer")
    out = tmp_path / "fw.tar"
    assert main(["firmware", "pack", str(out), "--wheels", str(wheels), "--extras", "pi", "--key", str(key),
                 "--cert", str(cert)]) == 0
    printed = capsys.readouterr().out
    assert f"{out}: evse-controller 2.0.0, 2 wheels" in printed
    image = out.read_bytes()
    assert read_image(image)[2] == "evse-controller[pi]"
    sidecar = json.loads((tmp_path / "fw.tar.sig").read_text())
    assert sidecar["signature"] in printed
    verify_image(image, sidecar["signature"], sidecar["signingCertificate"], [maker.cert], datetime.now(UTC))
    assert main(["firmware", "pack", str(out), "--wheels", str(wheels), "--key", str(key)]) == 2
    assert "--key and --cert go together" in capsys.readouterr().err
    (wheels / "evse_controller-2.0.0-py3-none-any.whl").unlink()
    assert main(["firmware", "pack", str(tmp_path / "none.tar"), "--wheels", str(wheels)]) == 2
    assert "expected one evse_controller wheel" in capsys.readouterr().err and not (tmp_path / "none.tar").exists()


def test_after_a_rollback_a_database_the_new_release_migrated_is_put_back_as_it_was(tmp_path: Path) -> None:
    from controller.releases import SNAPSHOT, restore_after_rollback
    from controller.schema import DB_NAME, SCHEMA_VERSION, stored_schema
    from controller.storage import Store

    root, state = tmp_path / "opt", tmp_path / "state"
    root.mkdir()
    store = Store(state)
    store.set_setting("before", "the update")
    store.backup(state / SNAPSHOT)
    store.set_setting("during", "the trial")
    store.close()
    assert not restore_after_rollback(root, state)  # no rollback happened: nothing to do
    guard.write_json(root / guard.OUTCOME, {"release": "9.9-x", "why": "did not come up"})
    assert not restore_after_rollback(root, state)  # a schema this release opens: it is kept as it is
    import sqlite3

    with sqlite3.connect(state / DB_NAME) as db:  # what a newer release's migration would leave
        db.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION + 1),))
    assert restore_after_rollback(root, state)
    assert stored_schema(state) == SCHEMA_VERSION
    again = Store(state)
    assert again.get_setting("before") == "the update" and again.get_setting("during") is None
    again.close()
    assert [p.name for p in state.iterdir() if ".rolled-back-" in p.name]  # the migrated one, kept aside
