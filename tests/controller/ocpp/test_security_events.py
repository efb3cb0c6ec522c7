"""Security events are kept on disk until delivered: across a restart, in order, once, one of a kind waiting."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from controller.clock import Clock
from controller.ocpp.security_events import SecurityEvents
from controller.storage import Store


def spell(event: dict[str, str]) -> tuple[str, dict[str, Any]]:
    return "SecurityEventNotification", {"type": event["type"], "timestamp": event["timestamp"]}


async def test_events_survive_a_restart_and_go_out_in_order_once(tmp_path: Path) -> None:
    sent: list[str] = []

    async def offline(message: tuple[str, dict[str, Any]]) -> dict[str, Any] | None:
        return None  # the CSMS is not reachable

    async def online(message: tuple[str, dict[str, Any]]) -> dict[str, Any] | None:
        sent.append(message[1]["type"])
        return {}

    store = Store(tmp_path)
    before = SecurityEvents(store, Clock(), spell, offline)
    assert before.keep("FailedToAuthenticateAtCsms") and not before.keep("FailedToAuthenticateAtCsms")
    assert before.keep("StartupOfTheDevice")
    await before.deliver()
    store.close()
    store = Store(tmp_path)  # a restart: what was kept is still there
    after = SecurityEvents(store, Clock(), spell, online)
    await after.deliver()
    await after.deliver()
    assert sent == ["FailedToAuthenticateAtCsms", "StartupOfTheDevice"] and after.pending() == []
    store.close()


def test_a_version_without_the_message_keeps_none(tmp_path: Path) -> None:
    async def send(message: tuple[str, dict[str, Any]]) -> dict[str, Any] | None:
        return {}

    store = Store(tmp_path)
    events = SecurityEvents(store, Clock(), None, send)
    assert not events.keep("StartupOfTheDevice") and events.pending() == []
    store.close()
