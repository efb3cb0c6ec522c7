"""The local status API: status, sessions, samples and the live event stream, over real HTTP on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from controller.app import App
from controller.cli import main
from hil.csms import CsmsSimulator
from hil.pytest_plugin import bench_app
from tests.bench.test_ocpp16_core import TAG, script
from tests.conftest import sim_config, wait_until


@pytest.fixture
async def served(tmp_path: Path, csms: CsmsSimulator) -> AsyncIterator[App]:
    """The simulated charger with its status API on a free loopback port."""
    async with bench_app(sim_config(), csms, tmp_path, api_listen="127.0.0.1:0") as app:
        yield app


def _url(app: App, path: str) -> str:
    assert app.api is not None
    return app.api.url.rstrip("/") + path


async def _json(http: aiohttp.ClientSession, url: str, **kwargs: Any) -> Any:
    async with http.get(url, **kwargs) as response:
        assert response.status == 200, await response.text()
        return await response.json()


async def test_status_shows_each_evse_as_a_person_would_read_it(served: App, csms: CsmsSimulator) -> None:
    async with aiohttp.ClientSession() as http:
        status = await _json(http, _url(served, "/api/v1/status"))
        assert status["station"]["id"] == "TEST-CP" and status["csms"]["connected"] is True
        (evse,) = status["evses"]
        assert (evse["status"], evse["vehicle"], evse["pilot"], evse["transaction"]) == (
            "Available", "absent", "A", None)
        await script(served, f"plug; tap {TAG}; expect Charging; wait 1.5")
        await wait_until(lambda: served.publisher is not None and served.publisher.status["evses"][0][
            "power_w"], what="a reading while charging")
        status = await _json(http, _url(served, "/api/v1/status"))
        (evse,) = status["evses"]
        assert evse["status"] == "Charging" and evse["pilot"] == "C" and evse["contactor_closed"] is True
        assert evse["offered_a"] == 32.0 and evse["transaction"]["id_token"] == TAG
        assert evse["power_w"] > 1000 and max(evse["current_a"]) > 6


async def test_the_event_stream_sends_status_changes_and_samples_live(served: App) -> None:
    events: list[tuple[str, Any]] = []

    async def listen() -> None:
        async with aiohttp.ClientSession() as http, http.get(_url(served, "/api/v1/events")) as response:
            assert response.headers["Content-Type"] == "text/event-stream"
            kind = ""
            async for raw in response.content:
                line = raw.decode().rstrip("\n")
                if line.startswith("event: "):
                    kind = line[7:]
                elif line.startswith("data: "):
                    events.append((kind, json.loads(line[6:])))

    reader = asyncio.create_task(listen())
    try:
        await wait_until(lambda: events, what="the stream's first status")
        assert events[0][0] == "status"
        await script(served, "plug; expect Preparing")
        await wait_until(lambda: any(k == "change" and d["text"] == "connector 1 is Preparing" for k, d in events),
                         what="the change line")
        await wait_until(lambda: any(k == "status" and d["evses"][0]["status"] == "Preparing" for k, d in events),
                         what="the new status")
        await wait_until(lambda: any(k == "sample" for k, _ in events), what="a sample", timeout=3)
    finally:
        reader.cancel()


async def test_an_ended_session_is_in_the_history_and_in_evse_status(served: App, tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    await script(served, f"plug; tap {TAG}; expect Charging; wait 1; unplug; expect Available")
    async with aiohttp.ClientSession() as http:
        body = await _json(http, _url(served, "/api/v1/sessions"))
        (session,) = body["sessions"]
        assert session["id_token"] == TAG and session["stop_reason"] == "EVDisconnected"
        assert session["energy_wh"] == session["meter_stop_wh"] - session["meter_start_wh"] >= 0
        async with http.get(_url(served, "/api/v1/sessions?limit=lots")) as bad:
            assert bad.status == 400 and "limit" in (await bad.json())["error"]
    code = await asyncio.to_thread(main, ["status", "--url", _url(served, ""), "--sessions", "3"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "connector 1 (AC): Available, vehicle absent (pilot A)" in out
    assert f"connector 1  {TAG}" in out and "EVDisconnected" in out


async def test_a_token_is_required_when_one_is_set(tmp_path: Path, csms: CsmsSimulator) -> None:
    config = sim_config()
    config.api.token = "s3cret-token"
    async with bench_app(config, csms, tmp_path, api_listen="127.0.0.1:0") as app, aiohttp.ClientSession() as http:
        async with http.get(_url(app, "/api/v1/status")) as refused:
            assert refused.status == 401 and "a token is required" in (await refused.json())["error"]
        await _json(http, _url(app, "/api/v1/status"), headers={"Authorization": "Bearer s3cret-token"})
        await _json(http, _url(app, "/api/v1/status?token=s3cret-token"))


async def test_without_an_api_evse_status_reads_the_state_directory(charger: App, tmp_path: Path) -> None:
    await script(charger, "plug; expect Preparing")
    assert charger.publisher is not None
    await wait_until(lambda: (tmp_path / "status.json").exists() and json.loads(
        (tmp_path / "status.json").read_text())["evses"][0]["status"] == "Preparing", what="status.json")
    proc = await asyncio.to_thread(subprocess.run, [sys.executable, "-m", "controller.cli", "status", "--state-dir",
                                                    str(tmp_path)], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert "TEST-CP: evse-controller" in proc.stdout and "connector 1 (AC): Preparing" in proc.stdout
    assert "status.json, written" in proc.stdout


def test_evse_status_with_nothing_to_read_says_where_it_looked(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "controller.cli", "status", "--state-dir", str(tmp_path)],
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2
    assert proc.stderr.startswith("evse status: no charger status found") and "status.json" in proc.stderr


async def test_a_port_in_use_stops_the_start_in_one_line(tmp_path: Path, csms: CsmsSimulator) -> None:
    blocker = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = blocker.sockets[0].getsockname()[1]
    try:
        app = App(sim_config(), state_dir=tmp_path, csms_url=csms.url, api_listen=f"127.0.0.1:{port}")
        with pytest.raises(OSError, match=rf"status API cannot listen on 127\.0\.0\.1:{port}: .*\(api\.listen or "):
            await app.start()  # and everything built so far made safe (App.start stops on any failure)
    finally:
        blocker.close()
        await blocker.wait_closed()
