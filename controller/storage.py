"""The station's one SQLite database (WAL) in the state directory.

What the CSMS must receive is written here before it is sent: the outbox of
transaction messages, the open transactions with their latest meter reading,
and settings the CSMS changed. Each change that must hold together (a
transaction and its StartTransaction, a stop and its StopTransaction) is one
SQLite transaction, so a process killed at any moment leaves either all of it
or none of it. ``synchronous = FULL`` makes a committed change survive power
loss, not only a crash.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DB_NAME = "evse.sqlite3"
SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    action TEXT NOT NULL,
    payload TEXT NOT NULL,
    tx_local_id TEXT NOT NULL,
    message_id TEXT,
    attempts INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS transactions (
    local_id TEXT PRIMARY KEY,
    connector_id INTEGER NOT NULL,
    id_tag TEXT NOT NULL,
    meter_start INTEGER NOT NULL,
    started_at TEXT NOT NULL,
    csms_id INTEGER,
    start_failed INTEGER NOT NULL DEFAULT 0,
    last_wh INTEGER NOT NULL,
    last_at TEXT NOT NULL,
    open INTEGER NOT NULL DEFAULT 1
);
CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS auth_cache (
    id_tag TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    expiry TEXT,
    parent_id_tag TEXT
);
CREATE TABLE IF NOT EXISTS local_list (
    id_tag TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    expiry TEXT,
    parent_id_tag TEXT
);
"""


@dataclass(frozen=True)
class StoredMessage:
    """An outbox row."""

    seq: int
    action: str
    payload: dict[str, Any]
    tx_local_id: str
    message_id: str | None
    attempts: int


@dataclass(frozen=True)
class StoredTransaction:
    """A transactions row."""

    local_id: str
    connector_id: int
    id_tag: str
    meter_start: int
    started_at: str
    csms_id: int | None
    start_failed: bool
    last_wh: int
    last_at: str
    open: bool


class Store:
    """Thread-safe access to the database; every public method is one atomic change or read."""

    def __init__(self, state_dir: str | Path) -> None:
        self.path = Path(state_dir) / DB_NAME
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode = WAL")
        self._db.execute("PRAGMA synchronous = FULL")
        self._db.executescript(_SCHEMA)
        with self.atomic() as db:
            db.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))

    @contextlib.contextmanager
    def atomic(self) -> Iterator[sqlite3.Connection]:
        """One SQLite transaction: everything inside commits together or not at all."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()

    # ----------------------------------------------------------------- outbox

    @staticmethod
    def enqueue(db: sqlite3.Connection, action: str, payload: dict[str, Any], tx_local_id: str) -> None:
        """Append a message (inside :meth:`atomic`)."""
        db.execute(
            "INSERT INTO outbox (action, payload, tx_local_id) VALUES (?, ?, ?)",
            (action, json.dumps(payload), tx_local_id),
        )

    def head(self) -> StoredMessage | None:
        """The oldest queued message."""
        with self._lock:
            row = self._db.execute(
                "SELECT seq, action, payload, tx_local_id, message_id, attempts FROM outbox ORDER BY seq LIMIT 1"
            ).fetchone()
        if row is None:
            return None
        return StoredMessage(row[0], row[1], json.loads(row[2]), row[3], row[4], row[5])

    def outbox_size(self) -> int:
        """How many messages wait."""
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0])

    def mark_sending(self, seq: int, message_id: str) -> None:
        """Remember the message id used, so a retry after a restart reuses it."""
        with self.atomic() as db:
            db.execute("UPDATE outbox SET message_id = ? WHERE seq = ?", (message_id, seq))

    def count_attempt(self, seq: int) -> int:
        """One more failed attempt; returns the total."""
        with self.atomic() as db:
            db.execute("UPDATE outbox SET attempts = attempts + 1 WHERE seq = ?", (seq,))
            return int(db.execute("SELECT attempts FROM outbox WHERE seq = ?", (seq,)).fetchone()[0])

    # ----------------------------------------------------------- transactions

    @staticmethod
    def open_transaction(db: sqlite3.Connection, tx: StoredTransaction) -> None:
        """Record a new transaction (inside :meth:`atomic`, with its StartTransaction)."""
        db.execute(
            "INSERT INTO transactions (local_id, connector_id, id_tag, meter_start, started_at, last_wh, last_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (tx.local_id, tx.connector_id, tx.id_tag, tx.meter_start, tx.started_at, tx.last_wh, tx.last_at),
        )

    @staticmethod
    def close_transaction(db: sqlite3.Connection, local_id: str, wh: int, at: str) -> None:
        """Mark a transaction ended (inside :meth:`atomic`, with its StopTransaction)."""
        db.execute("UPDATE transactions SET open = 0, last_wh = ?, last_at = ? WHERE local_id = ?", (wh, at, local_id))

    def record_reading(self, local_id: str, wh: int, at: str) -> None:
        """The latest meter reading of an open transaction (what a PowerLoss stop will report)."""
        with self.atomic() as db:
            self.set_reading(db, local_id, wh, at)

    @staticmethod
    def set_reading(db: sqlite3.Connection, local_id: str, wh: int, at: str) -> None:
        """Record an open transaction's latest reading (inside :meth:`atomic`)."""
        db.execute(
            "UPDATE transactions SET last_wh = ?, last_at = ? WHERE local_id = ? AND open = 1", (wh, at, local_id)
        )

    def transaction(self, local_id: str) -> StoredTransaction | None:
        """A transaction by station-local id."""
        with self._lock:
            row = self._db.execute(
                "SELECT local_id, connector_id, id_tag, meter_start, started_at, csms_id, start_failed, last_wh,"
                " last_at, open FROM transactions WHERE local_id = ?",
                (local_id,),
            ).fetchone()
        return _tx(row) if row else None

    def transactions(self, *, open_only: bool = False) -> list[StoredTransaction]:
        """Every known transaction (those whose messages are not all delivered yet)."""
        query = (
            "SELECT local_id, connector_id, id_tag, meter_start, started_at, csms_id, start_failed, last_wh, last_at,"
            " open FROM transactions"
        )
        if open_only:
            query += " WHERE open = 1"
        with self._lock:
            return [_tx(r) for r in self._db.execute(query).fetchall()]

    # ------------------------------------------------------------- auth cache

    def clear_auth_cache(self) -> None:
        """Forget every cached authorisation (ClearCache)."""
        with self.atomic() as db:
            db.execute("DELETE FROM auth_cache")

    def auth_entry(self, table: str, id_tag: str) -> tuple[str, str | None, str | None] | None:
        """(status, expiry, parentIdTag) of an idTag in ``auth_cache`` or ``local_list`` (case-insensitive)."""
        assert table in ("auth_cache", "local_list")
        with self._lock:
            row = self._db.execute(
                f"SELECT status, expiry, parent_id_tag FROM {table} WHERE id_tag = ?", (id_tag.upper(),)
            ).fetchone()
        return None if row is None else (row[0], row[1], row[2])

    @staticmethod
    def put_auth_entry(db: sqlite3.Connection, table: str, id_tag: str, status: str, expiry: str | None,
                       parent: str | None) -> None:
        """Insert or replace an idTag's authorisation (inside :meth:`atomic`)."""
        assert table in ("auth_cache", "local_list")
        db.execute(f"INSERT OR REPLACE INTO {table} VALUES (?, ?, ?, ?)", (id_tag.upper(), status, expiry, parent))

    def local_list_size(self) -> int:
        """Entries in the local authorisation list."""
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM local_list").fetchone()[0])

    # --------------------------------------------------------------- settings

    def get_setting(self, key: str) -> str | None:
        """A persisted setting, or None."""
        with self._lock:
            row = self._db.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_setting(self, key: str, value: str) -> None:
        """Persist a setting."""
        with self.atomic() as db:
            db.execute("INSERT INTO settings VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                       (key, value))


def _tx(row: tuple[Any, ...]) -> StoredTransaction:
    return StoredTransaction(row[0], row[1], row[2], row[3], row[4], row[5], bool(row[6]), row[7], row[8], bool(row[9]))
