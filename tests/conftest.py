"""Shared fixtures: a simulated charger (real drivers over mocked buses) and the bench CSMS."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from controller.app import App
from controller.config import Config, parse_config
from hil.benchconfig import socket_config
from hil.csms import CsmsSimulator
from hil.pytest_plugin import bench_app


def sim_config(**ocpp: Any) -> Config:
    """The sim default with fast intervals for tests."""
    data: dict[str, Any] = {
        "station": {"hardware": "sim", "id": "TEST-CP"},
        "ocpp": {"meter_value_sample_interval": 1, "reconnect_min": 0.2, "reconnect_max": 0.5, **ocpp},
        "rfid": {"poll_interval": 0.05},
        "connector": [{"id": 1, "meter": {"poll_interval": 0.2, "loss_timeout": 1.0},
                       "pilot": {"adc_low_channel": 1},
                       "contactor": {"mirror_pin": 27, "feedback_delay": 0.05}}],
    }
    return parse_config(data, "<test>")


async def wait_until(predicate: Callable[[], object], timeout: float = 5.0, what: str = "condition") -> float:
    """Poll ``predicate`` until true and return the monotonic time it was seen so; fail with ``what`` on timeout."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.01)
    return time.monotonic()


@pytest.fixture
async def csms() -> AsyncIterator[CsmsSimulator]:
    """The bench CSMS on a loopback port, rejecting tag DEADBEEF."""
    server = CsmsSimulator(rejected_tags={"DEADBEEF"})
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def socket(tmp_path: Path, csms: CsmsSimulator) -> AsyncIterator[App]:
    """The socket build's connector 1 (diode check, PP, RCM, lock, LED, temperature), booted to the bench CSMS."""
    async with bench_app(socket_config(), csms, tmp_path) as app:
        yield app


@pytest.fixture
async def charger(tmp_path: Path, csms: CsmsSimulator) -> AsyncIterator[App]:
    """A simulated charger connected and booted to the bench CSMS."""
    async with bench_app(sim_config(), csms, tmp_path) as app:
        yield app


@pytest.fixture
async def station201(tmp_path: Path, csms: CsmsSimulator) -> AsyncIterator[App]:
    """A simulated charger speaking OCPP 2.0.1, connected and booted to the bench CSMS."""
    async with bench_app(sim_config(version="2.0.1"), csms, tmp_path) as app:
        yield app
