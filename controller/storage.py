"""The station's one SQLite database (WAL) in the state directory, and the SQL the station runs on it.

What the CSMS must receive is written here before it is sent: the queue of transaction messages (the wire JSON,
tagged with the OCPP version that spelt it), the open transactions with their latest meter reading, the device
model's values, the local list and the authorisation cache, reservations and settings. Each change that must
hold together (a transaction and its first message, a stop and its last) is one SQLite transaction, so a process
killed at any moment leaves all of it or none of it. ``synchronous = FULL`` makes a committed change survive
power loss, not only a crash. A database an older release wrote is migrated when it is opened
(:mod:`controller.schema`).
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from controller.schema import DB_NAME, prepare


@dataclass(frozen=True)
class StoredMessage:
    """A queued message: OCPP wire JSON, the version that spelt it, and its role in its transaction."""

    seq: int
    action: str
    payload: dict[str, Any]
    tx_local_id: str
    message_id: str | None
    attempts: int
    version: str
    role: str  # "start", "update" or "stop"


@dataclass(frozen=True)
class StoredTransaction:
    """A transactions row."""

    local_id: str
    connector_id: int
    id_tag: str
    meter_start: int
    started_at: str
    csms_id: int | None  # None until the CSMS confirmed the start (then -1 goes out)
    last_wh: int
    last_at: str
    open: bool


@dataclass(frozen=True)
class StoredReservation:
    """A reservations row (expiry as an RFC 3339 UTC text)."""

    reservation_id: int
    connector_id: int
    id_tag: str
    id_type: str
    group_tag: str | None
    expires_at: str


_TX_COLUMNS = "local_id, connector_id, id_tag, meter_start, started_at, csms_id, last_wh, last_at, open"
_MSG_COLUMNS = "seq, action, payload, tx_local_id, message_id, attempts, version, role"


class Store:
    """Thread-safe access to the database; every public method is one atomic change or read."""

    def __init__(self, state_dir: str | Path) -> None:
        self.path = Path(state_dir) / DB_NAME
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode = WAL")
        self._db.execute("PRAGMA synchronous = FULL")
        try:
            self._open()
        except BaseException:
            self._db.close()
            raise

    def _open(self) -> None:
        with self.atomic() as db:
            prepare(db, self.path)

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

    def backup(self, path: Path) -> None:
        """A consistent copy of the database at ``path`` (one file, written aside and renamed into place)."""
        part = path.with_name(path.name + ".part")
        part.unlink(missing_ok=True)
        copy = sqlite3.connect(part)
        try:
            with self._lock:
                self._db.backup(copy)
        finally:
            copy.close()
        with open(part, "rb") as written:
            os.fsync(written.fileno())
        part.replace(path)

    def schema_version(self) -> int:
        """The schema this database is in (after any migration)."""
        with self._lock:
            return int(self._db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0])

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()

    # ------------------------------------------------------------------ queue

    @staticmethod
    def enqueue(db: sqlite3.Connection, version: str, role: str, action: str, payload: dict[str, Any],
                tx_local_id: str) -> None:
        """Append a message (inside :meth:`atomic`) with the message id every attempt to send it will use.

        The id is chosen here, in the same commit, so sending needs no write of its own before the CALL.
        """
        db.execute("INSERT INTO outbox (version, role, action, payload, tx_local_id, message_id) "
                   "VALUES (?, ?, ?, ?, ?, ?)", (version, role, action, json.dumps(payload), tx_local_id,
                                                 str(uuid.uuid4())))

    def head(self) -> StoredMessage | None:
        """The oldest queued message: the order things happened in, across every transaction."""
        with self._lock:
            row = self._db.execute(f"SELECT {_MSG_COLUMNS} FROM outbox ORDER BY seq LIMIT 1").fetchone()
        return None if row is None else StoredMessage(row[0], row[1], json.loads(row[2]), *row[3:])

    def outbox_size(self) -> int:
        """How many messages wait."""
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0])

    def queued_for(self, local_id: str) -> int:
        """How many messages of one transaction wait."""
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM outbox WHERE tx_local_id = ?",
                                        (local_id,)).fetchone()[0])

    def last_seq(self, connector_id: int) -> int:
        """The newest queued message of a connector's transactions (0: none)."""
        with self._lock:
            row = self._db.execute("SELECT MAX(o.seq) FROM outbox o JOIN transactions t ON o.tx_local_id = "
                                   "t.local_id WHERE t.connector_id = ?", (connector_id,)).fetchone()
        return int(row[0] or 0)

    def first_seq(self) -> int | None:
        """The oldest queued message's sequence number, or None when nothing waits."""
        with self._lock:
            row = self._db.execute("SELECT MIN(seq) FROM outbox").fetchone()
        return None if row[0] is None else int(row[0])

    def mark_sending(self, seq: int, message_id: str) -> None:
        """Remember the message id used, so a retry after a restart reuses it."""
        with self.atomic() as db:
            db.execute("UPDATE outbox SET message_id = ? WHERE seq = ?", (message_id, seq))

    def count_attempt(self, seq: int) -> int:
        """One more failed attempt; returns the total."""
        with self.atomic() as db:
            db.execute("UPDATE outbox SET attempts = attempts + 1 WHERE seq = ?", (seq,))
            return int(db.execute("SELECT attempts FROM outbox WHERE seq = ?", (seq,)).fetchone()[0])

    def finish(self, message: StoredMessage, csms_id: int | None = None) -> None:
        """A message is done with (delivered, or every attempt failed), and what that means for its transaction.

        A delivered start records the CSMS's transaction id (a start given up records none, so the transaction's
        later messages go out with -1); a stop, delivered or given up, ends the transaction's row.
        """
        with self.atomic() as db:
            db.execute("DELETE FROM outbox WHERE seq = ?", (message.seq,))
            if message.role == "start" and csms_id is not None:
                db.execute("UPDATE transactions SET csms_id = ? WHERE local_id = ?", (csms_id, message.tx_local_id))
            elif message.role == "stop":
                db.execute("DELETE FROM transactions WHERE local_id = ?", (message.tx_local_id,))

    # ----------------------------------------------------------- transactions

    @staticmethod
    def open_transaction(db: sqlite3.Connection, tx: StoredTransaction) -> None:
        """Record a new transaction (inside :meth:`atomic`, with its first message)."""
        db.execute("INSERT INTO transactions (local_id, connector_id, id_tag, meter_start, started_at, last_wh, "
                   "last_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                   (tx.local_id, tx.connector_id, tx.id_tag, tx.meter_start, tx.started_at, tx.last_wh, tx.last_at))

    @staticmethod
    def close_transaction(db: sqlite3.Connection, local_id: str, wh: int, at: str) -> None:
        """Mark a transaction ended (inside :meth:`atomic`, with its last message)."""
        db.execute("UPDATE transactions SET open = 0, last_wh = ?, last_at = ? WHERE local_id = ?", (wh, at, local_id))

    def record_reading(self, local_id: str, wh: int, at: str) -> None:
        """The latest meter reading of an open transaction (what a PowerLoss stop will report)."""
        with self.atomic() as db:
            self.set_reading(db, local_id, wh, at)

    @staticmethod
    def set_reading(db: sqlite3.Connection, local_id: str, wh: int, at: str) -> None:
        """Record an open transaction's latest reading (inside :meth:`atomic`)."""
        db.execute("UPDATE transactions SET last_wh = ?, last_at = ? WHERE local_id = ? AND open = 1",
                   (wh, at, local_id))

    def transaction(self, local_id: str) -> StoredTransaction | None:
        """A transaction by station-local id."""
        with self._lock:
            row = self._db.execute(f"SELECT {_TX_COLUMNS} FROM transactions WHERE local_id = ?",
                                   (local_id,)).fetchone()
        return _tx(row) if row else None

    def transactions(self, *, open_only: bool = False) -> list[StoredTransaction]:
        """Every known transaction (those whose messages are not all delivered yet)."""
        query = f"SELECT {_TX_COLUMNS} FROM transactions" + (" WHERE open = 1" if open_only else "")
        with self._lock:
            return [_tx(r) for r in self._db.execute(query).fetchall()]

    # ------------------------------------------------ local list and cache

    def clear_auth_cache(self, id_tag: str | None = None) -> None:
        """Forget every cached authorisation (ClearCache), or one identifier's (a customer's data cleared)."""
        with self.atomic() as db:
            if id_tag is None:
                db.execute("DELETE FROM auth_cache")
            else:
                db.execute("DELETE FROM auth_cache WHERE id_tag = ?", (id_tag.upper(),))

    def auth_entry(self, table: str, id_tag: str) -> tuple[str, str | None, str | None] | None:
        """(status, expiry, group) of an identifier in ``auth_cache`` or ``local_list`` (case-insensitive)."""
        assert table in ("auth_cache", "local_list")
        with self._lock:
            row = self._db.execute(f"SELECT status, expiry, parent_id_tag FROM {table} WHERE id_tag = ?",
                                   (id_tag.upper(),)).fetchone()
        return None if row is None else (row[0], row[1], row[2])

    @staticmethod
    def put_auth_entry(db: sqlite3.Connection, table: str, id_tag: str, status: str, expiry: str | None,
                       parent: str | None) -> None:
        """Insert or replace an identifier's authorisation (inside :meth:`atomic`)."""
        assert table in ("auth_cache", "local_list")
        db.execute(f"INSERT OR REPLACE INTO {table} VALUES (?, ?, ?, ?)", (id_tag.upper(), status, expiry, parent))

    @staticmethod
    def drop_list_entry(db: sqlite3.Connection, id_tag: str | None) -> None:
        """Remove one identifier from the local list, or (None) all of them (inside :meth:`atomic`)."""
        if id_tag is None:
            db.execute("DELETE FROM local_list")
        else:
            db.execute("DELETE FROM local_list WHERE id_tag = ?", (id_tag.upper(),))

    @staticmethod
    def list_size(db: sqlite3.Connection) -> int:
        """Entries in the local list (inside :meth:`atomic`)."""
        return int(db.execute("SELECT COUNT(*) FROM local_list").fetchone()[0])

    def local_list_size(self) -> int:
        """Entries in the local authorisation list."""
        with self._lock:
            return self.list_size(self._db)

    # ------------------------------------------------- variables, settings

    def variables(self) -> dict[tuple[str, str, str], str]:
        """Every persisted device-model value by (component, variable, instance)."""
        with self._lock:
            rows = self._db.execute("SELECT component, variable, instance, value FROM variables").fetchall()
        return {(r[0], r[1], r[2]): r[3] for r in rows}

    def put_variable(self, component: str, variable: str, instance: str, value: str) -> None:
        """Persist one device-model value."""
        with self.atomic() as db:
            db.execute("INSERT OR REPLACE INTO variables VALUES (?, ?, ?, ?)", (component, variable, instance, value))

    def get_setting(self, key: str) -> str | None:
        """A persisted setting, or None."""
        with self._lock:
            row = self._db.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    @staticmethod
    def take_number(db: sqlite3.Connection, key: str) -> int:
        """Inside an :meth:`atomic` transaction: the counter ``key`` (0 at first), which moves on by one."""
        row = db.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
        number = int(row[0]) if row is not None else 0
        db.execute("INSERT OR REPLACE INTO settings VALUES (?, ?)", (key, str(number + 1)))
        return number

    @staticmethod
    def drop_setting(db: sqlite3.Connection, key: str) -> None:
        """Inside an :meth:`atomic` transaction: forget a setting."""
        db.execute("DELETE FROM settings WHERE key = ?", (key,))

    def set_setting(self, key: str, value: str, db: sqlite3.Connection | None = None) -> None:
        """Persist a setting (in its own transaction, or inside an :meth:`atomic` one)."""
        if db is not None:
            db.execute("INSERT OR REPLACE INTO settings VALUES (?, ?)", (key, value))
            return
        with self.atomic() as own:
            own.execute("INSERT OR REPLACE INTO settings VALUES (?, ?)", (key, value))

    # ----------------------------------------------------------- reservations

    def reservations(self) -> list[StoredReservation]:
        """Every reservation kept across a restart."""
        with self._lock:
            rows = self._db.execute("SELECT reservation_id, connector_id, id_tag, id_type, group_tag, expires_at "
                                    "FROM reservations").fetchall()
        return [StoredReservation(*r) for r in rows]

    def put_reservation(self, r: StoredReservation) -> None:
        """Keep a reservation (replacing one with the same id)."""
        with self.atomic() as db:
            db.execute("DELETE FROM reservations WHERE connector_id = ?", (r.connector_id,))
            db.execute("INSERT OR REPLACE INTO reservations VALUES (?, ?, ?, ?, ?, ?)",
                       (r.reservation_id, r.connector_id, r.id_tag, r.id_type, r.group_tag, r.expires_at))

    def charging_profiles(self) -> list[tuple[int, str]]:
        """The installed charging profiles: (id, the JSON :mod:`controller.ocpp.charging_profiles` wrote)."""
        with self._lock:
            rows = self._db.execute("SELECT profile_id, profile FROM charging_profiles ORDER BY profile_id").fetchall()
        return [(int(row[0]), row[1]) for row in rows]

    def put_charging_profile(self, profile_id: int, profile: str) -> None:
        """Keep (or replace) one charging profile."""
        with self.atomic() as db:
            db.execute("INSERT OR REPLACE INTO charging_profiles VALUES (?, ?)", (profile_id, profile))

    def drop_charging_profiles(self, profile_ids: list[int]) -> None:
        """Forget these charging profiles."""
        with self.atomic() as db:
            db.executemany("DELETE FROM charging_profiles WHERE profile_id = ?", [(i,) for i in profile_ids])

    def drop_reservation(self, connector_id: int) -> None:
        """A connector's reservation ended (used, cancelled or expired)."""
        with self.atomic() as db:
            db.execute("DELETE FROM reservations WHERE connector_id = ?", (connector_id,))


def _tx(row: tuple[Any, ...]) -> StoredTransaction:
    return StoredTransaction(row[0], row[1], row[2], row[3], row[4], row[5], row[6], row[7], bool(row[8]))
