"""Shutdown ends tasks even when one swallows a cancellation (CPython 3.11 wait_for race)."""

from __future__ import annotations

import asyncio
import contextlib

from controller.tasks import cancel_and_wait


async def test_a_task_that_swallows_one_cancellation_still_ends() -> None:
    async def stubborn() -> None:
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(10)  # the lost cancellation
        await asyncio.sleep(10)  # carries on, as a task inside ocpp's call() does

    task = asyncio.create_task(stubborn())
    await asyncio.sleep(0)
    await asyncio.wait_for(cancel_and_wait([task]), 1.0)
    assert task.cancelled()
