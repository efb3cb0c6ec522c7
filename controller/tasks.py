"""Cancelling tasks so that they really end, and polling for a condition without blocking the loop.

CPython 3.11's ``asyncio.wait_for`` (used inside the ``ocpp`` package's
``call()``) loses a cancellation that arrives just as its inner future
completes; the task then carries on into its next await. Shutdown and
reconnect code therefore cancel again until every task is done.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from typing import Any


async def cancel_and_wait(tasks: Iterable[asyncio.Task[Any]], retry: float = 0.05) -> None:
    """Cancel ``tasks`` and wait until all are done, cancelling again any that swallowed it."""
    pending = {t for t in tasks if not t.done()}
    while pending:
        for task in pending:
            task.cancel()
        _done, pending = await asyncio.wait(pending, timeout=retry)


async def until(predicate: Callable[[], object], timeout: float, interval: float = 0.002) -> bool:
    """Poll ``predicate`` every ``interval`` s until it is true or ``timeout`` s pass; returns whether it is."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        await asyncio.sleep(interval)
    return bool(predicate())
