"""Transaction messages waiting for the CSMS: durable, in the order they happened, each delivered once.

StartTransaction, StopTransaction and transaction MeterValues go through here
and are written to the store before anyone tries to send them; other
messages may overtake them. Each transaction's row in the store carries the
CSMS's transactionId once known, so later messages (and RemoteStop) can be
resolved, and a start that could never be confirmed resolves to -1.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from controller.storage import Store, StoredMessage, StoredTransaction

log = logging.getLogger(__name__)

UNKNOWN_TRANSACTION_ID = -1


class Outbox:
    """The durable FIFO of transaction messages and the transactions they belong to."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._changed = asyncio.Event()
        self._empty = asyncio.Event()

    # ----------------------------------------------------------- producers

    def transaction_started(self, tx: StoredTransaction, start_payload: dict[str, Any]) -> None:
        """Record a transaction and queue its StartTransaction, atomically."""
        with self.store.atomic() as db:
            self.store.open_transaction(db, tx)
            self.store.enqueue(db, "StartTransaction", start_payload, tx.local_id)
        self._changed.set()

    def meter_sample(self, local_id: str, payload: dict[str, Any], wh: int, at: str) -> None:
        """Queue a MeterValues and remember the reading, atomically."""
        with self.store.atomic() as db:
            self.store.enqueue(db, "MeterValues", payload, local_id)
            self.store.set_reading(db, local_id, wh, at)
        self._changed.set()

    def transaction_ended(self, local_id: str, stop_payload: dict[str, Any]) -> None:
        """Close a transaction and queue its StopTransaction, atomically."""
        with self.store.atomic() as db:
            self.store.close_transaction(db, local_id, stop_payload["meter_stop"], stop_payload["timestamp"])
            self.store.enqueue(db, "StopTransaction", stop_payload, local_id)
        self._changed.set()

    def recover_power_loss(self) -> list[StoredTransaction]:
        """End every transaction a dead process left open, with reason PowerLoss and its last reading."""
        recovered = self.store.transactions(open_only=True)
        for tx in recovered:
            payload = {"meter_stop": tx.last_wh, "timestamp": tx.last_at, "reason": "PowerLoss"}
            self.transaction_ended(tx.local_id, payload)
            log.warning(
                "connector %d: transaction %s for %s was open when the station went down; "
                "ending it as PowerLoss at %d Wh (%s)", tx.connector_id, tx.local_id, tx.id_tag, tx.last_wh, tx.last_at,
            )
        return recovered

    # ------------------------------------------------------------- sender

    async def head(self) -> StoredMessage:
        """The oldest message, waiting until there is one."""
        while True:
            self._changed.clear()
            message = self.store.head()
            if message is not None:
                return message
            self._empty.set()
            await self._changed.wait()

    def transaction_id(self, local_id: str) -> int:
        """The CSMS's id for a transaction, or -1 when its start was never confirmed."""
        tx = self.store.transaction(local_id)
        if tx is None or tx.csms_id is None:
            return UNKNOWN_TRANSACTION_ID
        return tx.csms_id

    def local_id_for(self, csms_id: int) -> str | None:
        """The station-local id of the transaction the CSMS calls ``csms_id``."""
        for tx in self.store.transactions():
            if tx.csms_id == csms_id:
                return tx.local_id
        return None

    def delivered(self, message: StoredMessage, csms_id: int | None = None) -> None:
        """The CSMS confirmed a message: drop it (and note the id a StartTransaction got)."""
        with self.store.atomic() as db:
            db.execute("DELETE FROM outbox WHERE seq = ?", (message.seq,))
            if message.action == "StartTransaction" and csms_id is not None:
                db.execute("UPDATE transactions SET csms_id = ? WHERE local_id = ?", (csms_id, message.tx_local_id))
            elif message.action == "StopTransaction":
                db.execute("DELETE FROM transactions WHERE local_id = ?", (message.tx_local_id,))

    def give_up(self, message: StoredMessage) -> None:
        """Every attempt failed: drop the message; a lost start makes later messages use -1."""
        with self.store.atomic() as db:
            db.execute("DELETE FROM outbox WHERE seq = ?", (message.seq,))
            if message.action == "StartTransaction":
                db.execute("UPDATE transactions SET start_failed = 1 WHERE local_id = ?", (message.tx_local_id,))
            elif message.action == "StopTransaction":
                db.execute("DELETE FROM transactions WHERE local_id = ?", (message.tx_local_id,))

    async def drained(self) -> None:
        """Wait until every message has been delivered (or given up)."""
        while self.store.outbox_size():
            self._empty.clear()
            await self._empty.wait()

    def __len__(self) -> int:
        return self.store.outbox_size()
