"""Transaction messages waiting for the CSMS, delivered in the order they happened.

StartTransaction, StopTransaction and transaction MeterValues go through
here; everything else may overtake them. Items carry the station-local
transaction id, resolved to the CSMS's id when sent.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass
from typing import Any


@dataclass
class OutboxItem:
    """One message: its action, its payload (snake_case, without transactionId) and its transaction."""

    action: str
    payload: dict[str, Any]
    tx_local_id: str
    attempts: int = 0


class Outbox:
    """A FIFO of transaction messages; the sender peeks, sends, then pops."""

    def __init__(self) -> None:
        self._items: deque[OutboxItem] = deque()
        self._changed = asyncio.Event()
        self._empty = asyncio.Event()

    def put(self, item: OutboxItem) -> None:
        """Queue a message behind every earlier one."""
        self._items.append(item)
        self._changed.set()

    async def head(self) -> OutboxItem:
        """The oldest message, waiting until there is one."""
        while not self._items:
            self._changed.clear()
            await self._changed.wait()
        return self._items[0]

    def pop(self) -> OutboxItem:
        """Remove the oldest message (after the CSMS confirmed it, or it was given up)."""
        item = self._items.popleft()
        if not self._items:
            self._empty.set()
        return item

    async def drained(self) -> None:
        """Wait until every message has been delivered (or given up)."""
        if self._items:
            self._empty.clear()
            await self._empty.wait()

    def __len__(self) -> int:
        return len(self._items)
