"""The database's layout: its tables, its version, and the migration from each older release's schema.

:class:`controller.storage.Store` opens a database through :func:`prepare`; :mod:`controller.releases` reads
:func:`stored_schema` to tell whether a release it is about to run can open the state directory's database.
"""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path
from typing import Any

DB_NAME = "evse.sqlite3"
SCHEMA_VERSION = 2


class StorageError(Exception):
    """The database cannot be used by this release; the message says why."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    action TEXT NOT NULL,
    payload TEXT NOT NULL,
    tx_local_id TEXT NOT NULL,
    message_id TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    version TEXT NOT NULL DEFAULT '1.6',
    role TEXT NOT NULL DEFAULT 'update'
);
CREATE TABLE IF NOT EXISTS transactions (
    local_id TEXT PRIMARY KEY,
    connector_id INTEGER NOT NULL,
    id_tag TEXT NOT NULL,
    meter_start INTEGER NOT NULL,
    started_at TEXT NOT NULL,
    csms_id INTEGER,
    last_wh INTEGER NOT NULL,
    last_at TEXT NOT NULL,
    open INTEGER NOT NULL DEFAULT 1
);
CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS auth_cache (id_tag TEXT PRIMARY KEY, status TEXT NOT NULL, expiry TEXT, parent_id_tag TEXT);
CREATE TABLE IF NOT EXISTS local_list (id_tag TEXT PRIMARY KEY, status TEXT NOT NULL, expiry TEXT, parent_id_tag TEXT);
CREATE TABLE IF NOT EXISTS variables (
    component TEXT NOT NULL, variable TEXT NOT NULL, instance TEXT NOT NULL DEFAULT '', value TEXT NOT NULL,
    PRIMARY KEY (component, variable, instance)
);
CREATE TABLE IF NOT EXISTS reservations (
    reservation_id INTEGER PRIMARY KEY, connector_id INTEGER NOT NULL, id_tag TEXT NOT NULL, id_type TEXT NOT NULL,
    group_tag TEXT, expires_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS charging_profiles (profile_id INTEGER PRIMARY KEY, profile TEXT NOT NULL);
"""

# Release 0.1.0 (schema 1) kept the 1.6 configuration keys as settings "ocpp.<Key>"; schema 2 keeps them as
# device-model variables. This is where each of that release's keys went, frozen here: a later change to the
# live aliases (controller/ocpp/v16/keys.py) must not change what an old database migrates to.
_V1_KEYS: dict[str, tuple[str, str, str]] = {
    "AllowOfflineTxForUnknownId": ("AuthCtrlr", "OfflineTxForUnknownIdEnabled", ""),
    "AuthorizationCacheEnabled": ("AuthCacheCtrlr", "Enabled", ""),
    "AuthorizeRemoteTxRequests": ("AuthCtrlr", "AuthorizeRemoteStart", ""),
    "ClockAlignedDataInterval": ("AlignedDataCtrlr", "Interval", ""),
    "ConnectionTimeOut": ("TxCtrlr", "EVConnectionTimeOut", ""),
    "ConnectorPhaseRotation": ("InternalCtrlr", "ConnectorPhaseRotation", ""),
    "HeartbeatInterval": ("OCPPCommCtrlr", "HeartbeatInterval", ""),
    "LocalAuthorizeOffline": ("AuthCtrlr", "LocalAuthorizeOffline", ""),
    "LocalPreAuthorize": ("AuthCtrlr", "LocalPreAuthorize", ""),
    "MaxEnergyOnInvalidId": ("TxCtrlr", "MaxEnergyOnInvalidId", ""),
    "MeterValuesAlignedData": ("AlignedDataCtrlr", "Measurands", ""),
    "MeterValuesSampledData": ("SampledDataCtrlr", "TxUpdatedMeasurands", ""),
    "MeterValueSampleInterval": ("SampledDataCtrlr", "TxUpdatedInterval", ""),
    "MinimumStatusDuration": ("OCPPCommCtrlr", "MinimumStatusDuration", ""),
    "ResetRetries": ("OCPPCommCtrlr", "ResetRetries", ""),
    "StopTransactionOnEVSideDisconnect": ("TxCtrlr", "StopTxOnEVSideDisconnect", ""),
    "StopTransactionOnInvalidId": ("TxCtrlr", "StopTxOnInvalidId", ""),
    "StopTxnAlignedData": ("AlignedDataCtrlr", "TxEndedMeasurands", ""),
    "StopTxnSampledData": ("SampledDataCtrlr", "TxEndedMeasurands", ""),
    "TransactionMessageAttempts": ("OCPPCommCtrlr", "MessageAttempts", "TransactionEvent"),
    "TransactionMessageRetryInterval": ("OCPPCommCtrlr", "MessageAttemptInterval", "TransactionEvent"),
    "UnlockConnectorOnEVSideDisconnect": ("OCPPCommCtrlr", "UnlockOnEVSideDisconnect", ""),
    "WebSocketPingInterval": ("OCPPCommCtrlr", "WebSocketPingInterval", ""),
    "LocalAuthListEnabled": ("LocalAuthListCtrlr", "Enabled", ""),
}
_V1_ROLES = {"StartTransaction": "start", "StopTransaction": "stop"}


def prepare(db: sqlite3.Connection, path: Path) -> None:
    """Bring the database ``db`` (at ``path``) to this release's schema, inside the caller's transaction."""
    found = db.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'meta'").fetchone()
    version = int(db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0]) \
        if found else SCHEMA_VERSION
    if version > SCHEMA_VERSION:
        raise StorageError(f"{path} has schema {version}, newer than this release's {SCHEMA_VERSION}: "
                           "run the release that wrote it, or move the state directory aside")
    if version == 1:
        _migrate_1_to_2(db)
    _create_tables(db)  # every table exists (no-op where they do)
    db.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))


def stored_schema(state_dir: str | Path) -> int | None:
    """The schema of the database in ``state_dir`` as it is on disk (None: no database yet), read without
    migrating anything."""
    path = Path(state_dir) / DB_NAME
    if not path.exists():
        return None
    db = sqlite3.connect(path)
    try:
        row = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    except sqlite3.Error:
        return None
    finally:
        db.close()
    return int(row[0]) if row else None


def _wire_name(name: str) -> str:
    return re.sub(r"_([a-z])", lambda m: m.group(1).upper(), name)


def _wire(node: Any) -> Any:
    # Release 0.1.0 queued the ocpp package's Python argument names (meter_value, id_tag); schema 2 queues what
    # goes on the wire. 1.6's transaction messages have no field the plain rule spells differently.
    if isinstance(node, dict):
        return {_wire_name(k): _wire(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_wire(v) for v in node]
    return node


def _create_tables(db: sqlite3.Connection) -> None:
    # One statement at a time: executescript() would commit the surrounding transaction first.
    for statement in filter(str.strip, _SCHEMA.split(";")):
        db.execute(statement)


def _migrate_1_to_2(db: sqlite3.Connection) -> None:
    """Schema 1 (release 0.1.0) to 2: queued wire JSON with version and role, keys as variables."""
    db.execute("ALTER TABLE outbox ADD COLUMN version TEXT NOT NULL DEFAULT '1.6'")
    db.execute("ALTER TABLE outbox ADD COLUMN role TEXT NOT NULL DEFAULT 'update'")
    # Release 0.1.0 wrote start_failed and never read it: a start never confirmed has no csms_id, which is what
    # makes later messages go out with -1. DROP COLUMN needs SQLite 3.35 (Raspberry Pi OS 12 has 3.40).
    db.execute("ALTER TABLE transactions DROP COLUMN start_failed")
    for seq, action, payload in db.execute("SELECT seq, action, payload FROM outbox").fetchall():
        db.execute("UPDATE outbox SET payload = ?, role = ? WHERE seq = ?",
                   (json.dumps(_wire(json.loads(payload))), _V1_ROLES.get(action, "update"), seq))
    _create_tables(db)
    for key, value in db.execute("SELECT key, value FROM settings WHERE key LIKE 'ocpp.%'").fetchall():
        target = _V1_KEYS.get(key.removeprefix("ocpp."))
        if target is not None:
            db.execute("INSERT OR REPLACE INTO variables VALUES (?, ?, ?, ?)", (*target, value))
    db.execute("DELETE FROM settings WHERE key LIKE 'ocpp.%'")
