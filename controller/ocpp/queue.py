"""Transaction messages waiting for the CSMS: durable, in the order they happened, each delivered once.

Every message of a transaction goes through here as OCPP wire JSON, tagged with the version that spelt it and
its role (the transaction's start, an update, its stop), and is written to the store before anyone tries to
send it; other messages may overtake them. Each transaction's row carries the CSMS's transactionId once known,
so later messages (and RemoteStop) resolve it, and a start that could never be confirmed resolves to -1.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from controller.storage import Store, StoredMessage, StoredTransaction

log = logging.getLogger(__name__)

UNKNOWN_TRANSACTION_ID = -1
START, UPDATE, STOP = "start", "update", "stop"


#: Told (the open store transaction, the transaction's local id, the message's role, its payload) as a message is
#: queued, inside the same store transaction; returns the payload to store (2.0.1 numbers its events here).
Stamp = Callable[[sqlite3.Connection, str, str, dict[str, Any]], dict[str, Any]]


@dataclass(frozen=True)
class TxMessage:
    """A transaction's message as an adapter spells it, and what the queue does with it."""

    role: str  # START opens the transaction's record, UPDATE is within it, STOP closes it
    local_id: str
    action: str
    payload: dict[str, Any]
    #: The energy register and moment the message reports (the record keeps the last, for a power loss).
    wh: int
    at: str
    #: START: the transaction's record.
    record: StoredTransaction | None = None


class Queue:
    """The durable FIFO of transaction messages and the transactions they belong to."""

    def __init__(self, store: Store, version: str, stamp: Stamp | None = None) -> None:
        self.store = store
        self.version = version
        self.stamp = stamp
        self._changed = asyncio.Event()
        self._delivered = asyncio.Event()

    def _enqueue(self, db: sqlite3.Connection, role: str, action: str, payload: dict[str, Any],
                 local_id: str) -> None:
        if self.stamp is not None:
            payload = self.stamp(db, local_id, role, payload)
        self.store.enqueue(db, self.version, role, action, payload, local_id)

    # ----------------------------------------------------------- producers

    def put(self, message: TxMessage) -> None:
        """Queue a transaction's message by its role."""
        if message.role == START:
            assert message.record is not None
            self.transaction_started(message.record, message.action, message.payload)
        elif message.role == STOP:
            self.transaction_ended(message.local_id, message.action, message.payload, message.wh, message.at)
        else:
            self.updated(message.local_id, message.action, message.payload, message.wh, message.at)

    def transaction_started(self, tx: StoredTransaction, action: str, payload: dict[str, Any]) -> None:
        """Record a transaction and queue its first message, atomically."""
        with self.store.atomic() as db:
            self.store.open_transaction(db, tx)
            self._enqueue(db, START, action, payload, tx.local_id)
        self._changed.set()

    def updated(self, local_id: str, action: str, payload: dict[str, Any], wh: int, at: str) -> None:
        """Queue a message within a transaction (a meter sample) and remember its reading, atomically."""
        with self.store.atomic() as db:
            self._enqueue(db, UPDATE, action, payload, local_id)
            self.store.set_reading(db, local_id, wh, at)
        self._changed.set()

    def transaction_ended(self, local_id: str, action: str, payload: dict[str, Any], wh: int, at: str) -> None:
        """Close a transaction and queue its last message, atomically."""
        with self.store.atomic() as db:
            self.store.close_transaction(db, local_id, wh, at)
            self._enqueue(db, STOP, action, payload, local_id)
        self._changed.set()

    def recover_power_loss(self, stop: Callable[[StoredTransaction], tuple[str, dict[str, Any]]]) -> list[
            StoredTransaction]:
        """End every transaction a dead process left open, with the stop ``stop`` spells from its last reading."""
        recovered = self.store.transactions(open_only=True)
        for tx in recovered:
            action, payload = stop(tx)
            self.transaction_ended(tx.local_id, action, payload, tx.last_wh, tx.last_at)
            log.warning("connector %d: transaction %s for %s was open when the station went down; ending it as "
                        "PowerLoss at %d Wh (%s)", tx.connector_id, tx.local_id, tx.id_tag, tx.last_wh, tx.last_at)
        return recovered

    # -------------------------------------------------------------- sender

    async def head(self) -> StoredMessage:
        """The oldest message, waiting until there is one."""
        while True:
            self._changed.clear()
            message = self.store.head()
            if message is not None:
                return message
            await self._changed.wait()

    def transaction_id(self, local_id: str) -> int:
        """The CSMS's id for a transaction, or -1 when its start was never confirmed."""
        tx = self.store.transaction(local_id)
        if tx is None or tx.csms_id is None:
            return UNKNOWN_TRANSACTION_ID
        return tx.csms_id

    def local_id_for(self, csms_id: int) -> str | None:
        """The station-local id of the transaction the CSMS calls ``csms_id``."""
        return next((tx.local_id for tx in self.store.transactions() if tx.csms_id == csms_id), None)

    def delivered(self, message: StoredMessage, csms_id: int | None = None) -> None:
        """The CSMS confirmed a message: drop it (and note the id a start got)."""
        self.store.finish(message, csms_id)
        self._delivered.set()

    def give_up(self, message: StoredMessage) -> None:
        """Every attempt failed: drop the message; a lost start makes later messages use -1."""
        self.store.finish(message)
        self._delivered.set()

    async def drained(self) -> None:
        """Wait until every message has been delivered (or given up)."""
        await self.through(None)

    async def through(self, seq: int | None) -> None:
        """Wait until every message up to ``seq`` (None: all of them) has been delivered or given up."""
        while True:
            first = self.store.first_seq()
            if first is None or (seq is not None and first > seq):
                return
            self._delivered.clear()
            await self._delivered.wait()

    def last_seq(self, evse_id: int) -> int:
        """The newest queued message of an EVSE's transactions (0: none)."""
        return self.store.last_seq(evse_id)

    def __len__(self) -> int:
        return self.store.outbox_size()
