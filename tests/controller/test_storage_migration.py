"""A database written by release 0.1.0 (schema 1) upgrades and drains unchanged: same order, ids, payloads, keys."""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
from pathlib import Path
from typing import Any

from ocpp.v16 import call

from controller.app import App
from hil.csms import CsmsSimulator
from tests.conftest import sim_config, wait_until

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "state-v1.sqlite3"
CP = "TEST-CP"


def _wire(name: str) -> str:
    """The OCPP field name of one of release 0.1.0's Python argument names (test-side, written out by hand)."""
    return re.sub(r"_([a-z])", lambda m: m.group(1).upper(), name)


def _as_wire(node: Any) -> Any:
    if isinstance(node, dict):
        return {_wire(k): _as_wire(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_as_wire(v) for v in node]
    return node


def _fixture_rows() -> list[tuple[str, dict[str, Any], str, str | None]]:
    db = sqlite3.connect(FIXTURE)
    try:
        rows = db.execute("SELECT action, payload, tx_local_id, message_id FROM outbox ORDER BY seq").fetchall()
    finally:
        db.close()
    return [(a, json.loads(p), tx, mid) for a, p, tx, mid in rows]


def _received(csms: CsmsSimulator) -> list[tuple[str, str, dict[str, Any]]]:
    """(action, unique id, payload) of every transaction message the CSMS got, in order."""
    found = []
    for frame in csms.frames:
        message = json.loads(frame.raw)
        if frame.direction == "in" and message[0] == 2 and message[2] in (
                "StartTransaction", "MeterValues", "StopTransaction"):
            found.append((message[2], message[1], message[3]))
    return found


async def test_a_release_0_1_database_upgrades_and_drains_in_order(tmp_path: Path) -> None:
    shutil.copy(FIXTURE, tmp_path / "evse.sqlite3")
    rows = _fixture_rows()
    csms = CsmsSimulator()
    await csms.start()
    app = App(sim_config(), state_dir=tmp_path, csms_url=csms.url)
    await app.start()
    try:
        # Everything queued, plus the PowerLoss stop of the transaction left open.
        await wait_until(lambda: len(_received(csms)) == len(rows) + 1, timeout=15, what="the old queue to drain")
        got = _received(csms)
        assert [g[0] for g in got] == [r[0] for r in rows] + ["StopTransaction"]
        assert got[0][1] == rows[0][3]  # the retry in progress keeps its message id
        ids = {}
        for (action, _mid, payload), (old_action, old_payload, tx, _old_mid) in zip(got, rows, strict=False):
            assert action == old_action
            expected = _as_wire(old_payload)
            if action == "StartTransaction":
                assert payload == expected
                ids[tx] = len(ids) + 1  # the bench CSMS numbers transactions from 1
            else:
                assert payload == {**expected, "transactionId": ids[tx]}
        power_loss = got[-1][2]
        assert power_loss["reason"] == "PowerLoss" and power_loss["transactionId"] == 2
        assert (power_loss["meterStop"], power_loss["timestamp"]) == (1000020, "2026-12-01T08:57:13.680Z")
        assert [t.reason for t in csms.transactions.values()] == ["Local", "PowerLoss"]
        # The keys the CSMS changed and the local list survive the upgrade.
        known = await csms.call(CP, call.GetConfiguration(key=[
            "TransactionMessageRetryInterval", "MeterValuesSampledData", "LocalPreAuthorize"]))
        assert {k["key"]: k["value"] for k in known.configuration_key} == {
            "TransactionMessageRetryInterval": "600",
            "MeterValuesSampledData": "Energy.Active.Import.Register,Current.Import.L1",
            "LocalPreAuthorize": "true"}
        assert (await csms.call(CP, call.GetLocalListVersion())).list_version == 3
    finally:
        await app.stop()
        await csms.stop()


def test_a_database_from_a_newer_release_is_refused_not_relabelled(tmp_path: Path) -> None:
    import pytest

    from controller.schema import StorageError
    from controller.storage import Store

    Store(tmp_path).close()
    db = sqlite3.connect(tmp_path / "evse.sqlite3")
    db.execute("UPDATE meta SET value = '9' WHERE key = 'schema_version'")
    db.commit()
    db.close()
    with pytest.raises(StorageError, match="has schema 9, newer than this release's 2"):
        Store(tmp_path)
    db = sqlite3.connect(tmp_path / "evse.sqlite3")
    assert db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == ("9",)
    db.close()


def _layout(path: Path) -> dict[str, list[tuple[str, str, int, Any]]]:
    db = sqlite3.connect(path)
    try:
        tables = [t for (t,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        return {t: [(c[1], c[2], c[3], c[4]) for c in db.execute(f"PRAGMA table_info({t})")] for t in tables}
    finally:
        db.close()


def test_a_migrated_database_has_the_layout_of_a_new_one(tmp_path: Path) -> None:
    from controller.storage import Store

    (tmp_path / "old").mkdir()
    shutil.copy(FIXTURE, tmp_path / "old" / "evse.sqlite3")
    Store(tmp_path / "old").close()
    Store(tmp_path / "new").close()
    old, new = _layout(tmp_path / "old" / "evse.sqlite3"), _layout(tmp_path / "new" / "evse.sqlite3")
    assert "start_failed" not in [c[0] for c in old["transactions"]]  # written by 0.1.0, never read
    assert {t: sorted(cols) for t, cols in old.items()} == {t: sorted(cols) for t, cols in new.items()}
