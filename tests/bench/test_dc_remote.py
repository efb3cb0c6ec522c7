"""`evse run --config config/sim-chademo.toml` (and sim-gbt) with the car bus on python-can-remote, the car elsewhere.

Three processes besides the test: a python-can-remote server on 127.0.0.1 (the bus), the charger
(`evse run`), and the car (`evse-hil car chademo`), which reaches the charger's lines and power cable
through the charger's car link. The test drives the charger with `evse-hil ctl`'s client.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from hil.control import send_script
from hil.meter import free_tcp_port
from tests.conftest import wait_until
from tests.hal.test_can_remote import _wait_listening

PY = sys.executable
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
async def can_server() -> AsyncIterator[str]:
    port = free_tcp_port()
    server = await asyncio.create_subprocess_exec(
        PY, "-m", "can_remote", "-i", "virtual", "-c", "dc-remote-test", "-H", "127.0.0.1", "-p", str(port),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        await asyncio.to_thread(_wait_listening, port)
        yield f"ws://127.0.0.1:{port}/"
    finally:
        server.kill()
        await server.wait()


def _config(tmp_path: Path, kind: str, url: str) -> Path:
    text = (ROOT / "config" / f"sim-{kind}.toml").read_text()
    text = text.replace(f'interface = "virtual"\nchannel = "{kind}-car-1"', f'interface = "remote"\nchannel = "{url}"')
    assert url in text
    path = tmp_path / "charger.toml"
    path.write_text(text)
    return path


async def _lines(stream: asyncio.StreamReader, into: list[dict[str, object]]) -> None:
    while line := await stream.readline():
        into.append(json.loads(line))


@pytest.mark.parametrize("kind", ["chademo", "gbt"])
async def test_the_charger_charges_a_car_in_another_process_over_python_can_remote(
        tmp_path: Path, can_server: str, kind: str) -> None:
    state = tmp_path / "state"
    charger = await asyncio.create_subprocess_exec(
        PY, "-m", "controller.cli", "run", "--config", str(_config(tmp_path, kind, can_server)),
        "--state-dir", str(state), "--log-level", "warning", stderr=subprocess.PIPE)
    car: asyncio.subprocess.Process | None = None
    try:
        link = state / "car-1.sock"
        await wait_until(lambda: link.exists() and (state / "bench.sock").exists(), 20, "the charger to start")
        car = await asyncio.create_subprocess_exec(
            PY, "-m", "hil.cli", "car", kind, "--link", str(link), "--channel", can_server, "--quick",
            "--soc", "40", stdout=subprocess.PIPE)
        assert car.stdout is not None
        reports: list[dict[str, object]] = []
        reader = asyncio.create_task(_lines(car.stdout, reports))
        await wait_until(lambda: reports, 20, "the car to plug in")
        assert reports[0]["event"] == "plugged in"
        result = await send_script(state, "expect Preparing within 10; tap 04A1B2C3; expect Charging within 30")
        assert result["ok"], result
        # The car in the other process sees the current it asked for over CAN, through the link's cable.
        await wait_until(lambda: any(float(str(r.get("current", 0))) > 20 for r in reports), 20, "current at the car")
        heard = max(int(str(r.get("frames_heard", 0))) for r in reports)
        assert heard > 20  # the charger's frames (CHAdeMO's 0x108/0x109 every 100 ms, GB/T's CCS) crossed over
        result = await send_script(state, "tap 04A1B2C3; expect Finishing within 10")
        assert result["ok"], result
        car.terminate()  # the car unplugs and leaves
        assert await asyncio.wait_for(car.wait(), 10) == 0
        await reader
        assert reports[-1] == {"event": "unplugged"}
        result = await send_script(state, "expect Available within 5")
        assert result["ok"], result
    finally:
        if car is not None and car.returncode is None:
            car.kill()
            await car.wait()
        charger.terminate()
        _, err = await asyncio.wait_for(charger.communicate(), 20)
        assert charger.returncode == 0, err.decode()
