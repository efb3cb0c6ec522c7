"""Shared fixtures: a simulated charger (real drivers over mocked buses) and the bench CSMS."""

from __future__ import annotations

import asyncio
import time
import tomllib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from controller.app import App
from controller.config import Config, parse_config
from hil.csms import CsmsSimulator


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


ROOT = Path(__file__).resolve().parent.parent

#: Bench timings for the socket build: every safety device, reacting in fractions of a second.
FAST_CONNECTOR: dict[str, Any] = {
    "overcurrent_grace": 0.3,
    "pilot": {"ev_stop_timeout": 0.5},
    "meter": {"poll_interval": 0.1, "loss_timeout": 1.0},
    "contactor": {"feedback_delay": 0.05},
    "rcm": {"test_timeout": 0.5, "release_timeout": 0.5, "reclose_delay": 0.3},
    "lock": {"pulse": 0.1, "min_interval": 0.05},
    "temperature": {"poll_interval": 0.05},
}


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        out[key] = _merge(out.get(key, {}), value) if isinstance(value, dict) else value
    return out


def socket_config(connectors: int = 1, *, connector: dict[str, Any] | None = None,
                  station: dict[str, Any] | None = None) -> Config:
    """config/sim-two-socket.toml (one or both connectors) with bench timings and optional overrides."""
    data = tomllib.loads((ROOT / "config" / "sim-two-socket.toml").read_text())
    data["station"] = _merge(data["station"], {"id": "TEST-CP", **(station or {})})
    data["ocpp"] = {"meter_value_sample_interval": 1, "reconnect_min": 0.2, "reconnect_max": 0.5}
    data["rfid"] = {"poll_interval": 0.05}
    data["connector"] = [_merge(_merge(c, FAST_CONNECTOR), connector or {}) for c in data["connector"][:connectors]]
    return parse_config(data, "<test socket build>")


async def wait_until(predicate: Callable[[], bool], timeout: float = 5.0, what: str = "condition") -> None:
    """Poll ``predicate`` until true; fail the test with ``what`` on timeout."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.01)


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
    app = App(socket_config(), state_dir=tmp_path, csms_url=csms.url)
    await app.start()
    assert app.ocpp is not None and app.sim is not None
    await asyncio.wait_for(app.ocpp.connected.wait(), 10)
    app.sim.timeline.clear()
    yield app
    await app.stop()


@pytest.fixture
async def charger(tmp_path: Path, csms: CsmsSimulator) -> AsyncIterator[App]:
    """A simulated charger connected and booted to the bench CSMS."""
    app = App(sim_config(), state_dir=tmp_path, csms_url=csms.url)
    await app.start()
    assert app.ocpp is not None and app.sim is not None
    await asyncio.wait_for(app.ocpp.connected.wait(), 10)
    # The boot self-test switched the contactor once; tests look at what happens after it.
    app.sim.timeline.clear()
    yield app
    await app.stop()
