"""Waiting on the bench for something to become true, without blocking the loop."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


async def until(predicate: Callable[[], object], timeout: float, interval: float = 0.002) -> bool:
    """Poll ``predicate`` every ``interval`` s until it is true or ``timeout`` s pass; returns whether it is."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        await asyncio.sleep(interval)
    return bool(predicate())
