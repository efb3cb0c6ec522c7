"""The local session history: every ended transaction, kept ``api.history_days`` days.

It is the charger's own record for the operator (the status page, ``evse status``), beside what the CSMS bills: a
session ended while the CSMS was unreachable is here at once. One SQLite file, ``<state_dir>/sessions.sqlite3``,
separate from the transaction queue, so that the history can be deleted or copied without touching billing.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from pathlib import Path
from typing import Any

from controller.clock import iso_utc
from controller.domain.events import Event, TransactionEnded

log = logging.getLogger(__name__)

FILE = "sessions.sqlite3"
SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY,
    evse INTEGER NOT NULL,
    id_token TEXT NOT NULL,
    started_at TEXT NOT NULL,
    stopped_at TEXT NOT NULL,
    ended REAL NOT NULL,
    meter_start_wh INTEGER NOT NULL,
    meter_stop_wh INTEGER NOT NULL,
    stop_reason TEXT NOT NULL
)
"""


class SessionHistory:
    """Ended sessions, newest first; fed by the station's TransactionEnded events."""

    def __init__(self, state_dir: str | Path, days: int) -> None:
        self.path = Path(state_dir) / FILE
        self.days = days
        self._db = sqlite3.connect(self.path)
        self._db.execute(SCHEMA)
        self._db.commit()
        self.prune()

    def on_event(self, event: Event) -> None:
        """Station subscriber: record each transaction as it ends."""
        if isinstance(event, TransactionEnded):
            tx = event.transaction
            stopped = tx.stopped_at or tx.started_at
            self._db.execute(
                "INSERT OR REPLACE INTO sessions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (tx.local_id, tx.evse_id, tx.id_token.value, iso_utc(tx.started_at), iso_utc(stopped),
                 stopped.timestamp(), tx.meter_start_wh, tx.meter_stop_wh if tx.meter_stop_wh is not None
                 else tx.meter_start_wh, tx.stop_reason.value if tx.stop_reason else "Other"))
            self._db.commit()

    def prune(self) -> int:
        """Forget sessions older than the configured days; how many went."""
        cursor = self._db.execute("DELETE FROM sessions WHERE ended < ?", (time.time() - self.days * 86400,))
        self._db.commit()
        if cursor.rowcount:
            log.info("session history: %d session(s) older than %d days removed", cursor.rowcount, self.days)
        return cursor.rowcount

    def close(self) -> None:
        """Close the database file."""
        self._db.close()


def read_sessions(state_dir: str | Path, limit: int = 100) -> list[dict[str, Any]]:
    """The newest ``limit`` sessions as the API gives them (read-only; [] when there is no history yet)."""
    path = Path(state_dir) / FILE
    if not path.exists():
        return []
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = db.execute("SELECT id, evse, id_token, started_at, stopped_at, meter_start_wh, meter_stop_wh, "
                          "stop_reason FROM sessions ORDER BY ended DESC LIMIT ?", (limit,)).fetchall()
    finally:
        db.close()
    return [{"id": r[0], "evse": r[1], "id_token": r[2], "started_at": r[3], "stopped_at": r[4],
             "meter_start_wh": r[5], "meter_stop_wh": r[6], "energy_wh": r[6] - r[5], "stop_reason": r[7]}
            for r in rows]
