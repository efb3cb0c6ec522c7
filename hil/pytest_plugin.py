"""pytest fixtures for benches: a simulated charger, the bench CSMS, and the script runner.

Installed with the package (the ``pytest11`` entry point ``evse_hil``); it needs pytest-asyncio (the ``bench``
extra). A test then reads like the script a bench engineer would write::

    import pytest

    @pytest.mark.bench_config("config/sim-two-socket.toml")
    async def test_a_residual_current_opens_the_contactor(bench_charger):
        await bench_charger.run("plug; tap 04A1B2C3; expect Charging; fault rcm; expect Faulted")
        assert bench_charger.timeline.first("contactor", 1, "open", 0.0) is not None
        await bench_charger.run("expect csms StatusNotification")

Fixtures: ``bench_csms`` (the bench CSMS on 127.0.0.1; ``@pytest.mark.bench_reject("TAG", ...)`` makes it refuse
cards), ``bench_config`` (the simulated charger's config: the ``bench_config`` mark's file or table, else the
built-in sim defaults; override the fixture for more) and ``bench_charger`` (that charger started, connected and
booted to ``bench_csms``; stopped safely after the test). :func:`bench_app` does the same for any config.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from controller.app import App
from controller.config import Config, default_config, load_config, parse_config
from hil.csms import CsmsSimulator
from hil.script import check_script, parse_script
from hil.simhw import SimHardware
from hil.steps import StepResult, run_steps
from hil.timeline import Timeline

try:
    import pytest_asyncio
    HAVE_PYTEST_ASYNCIO = True
except ImportError:  # the plugin loads wherever the package is installed; its fixtures need pytest-asyncio
    HAVE_PYTEST_ASYNCIO = False

#: How long a charger may take to reach the CSMS before its fixture fails.
BOOT_WAIT = 10.0


class ScriptFailed(AssertionError):
    """A script step failed: the message lists every step with its result."""


@contextlib.asynccontextmanager
async def bench_app(config: Config, csms: CsmsSimulator, state_dir: Path, **options: Any) -> AsyncIterator[App]:
    """``config``'s simulated charger, connected and booted to ``csms``, its timeline cleared of the boot's
    self-tests; stopped (outputs safe) afterwards. ``options`` go to :class:`~controller.app.App`
    (``api_listen``, ``clock``)."""
    app = App(config, state_dir=state_dir, csms_url=csms.url, **options)
    await app.start()
    try:
        assert app.ocpp is not None and isinstance(app.platform, SimHardware)
        await asyncio.wait_for(app.ocpp.connected.wait(), BOOT_WAIT)
        app.platform.timeline.clear()
        yield app
    finally:
        await app.stop()


class _Bench:
    """The simulated hardware as scripts see it, with the fixture's CSMS as the one ``csms`` steps steer."""

    def __init__(self, sim: SimHardware, csms: CsmsSimulator) -> None:
        self._sim = sim
        self.csms = csms

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sim, name)


class BenchCharger:
    """A running simulated charger and its CSMS, driven by bench scripts."""

    def __init__(self, app: App, csms: CsmsSimulator) -> None:
        self.app = app
        self.csms = csms
        assert isinstance(app.platform, SimHardware)
        self.sim: SimHardware = app.platform

    @property
    def timeline(self) -> Timeline:
        """What the bench observed (pilot states, PWM, contactor, faults, cards, meter readings)."""
        return self.sim.timeline

    async def run(self, script: str, *, check: bool = True) -> list[StepResult]:
        """Run a script; with ``check`` (the default) a failing step fails the test, listing every step."""
        steps = parse_script(script)
        check_script(steps, self.app.config)
        results = await run_steps(steps, _Bench(self.sim, self.csms))
        if check and not all(r.ok for r in results):
            lines = [f"  {r.status:<7} {r.step}" + (f": {r.detail}" if r.detail else "") for r in results]
            raise ScriptFailed("script failed:\n" + "\n".join(lines))
        return results

    def status(self, connector: int = 1) -> str:
        """A connector's status as the charger reports it."""
        return self.sim.status(connector)

    def csms_statuses(self) -> list[str]:
        """Every StatusNotification's status and vendorErrorCode/errorCode words the CSMS received, in order."""
        words: list[str] = []
        for frame in self.csms.frames:
            call = frame.call()
            if frame.direction == "in" and call is not None and call[0] == "StatusNotification":
                words += [str(call[1][k]) for k in ("status", "connectorStatus", "errorCode", "vendorErrorCode")
                          if k in call[1]]
        return words


def pytest_configure(config: pytest.Config) -> None:
    """Register the marks."""
    config.addinivalue_line("markers", "bench_config(config): the simulated charger's config file or table")
    config.addinivalue_line("markers", "bench_reject(*tags): tags the bench CSMS answers Invalid for")


@pytest.fixture
def bench_config(request: pytest.FixtureRequest) -> Config:
    """The charger's config: the ``bench_config`` mark's (a file path, or a table as ``parse_config`` takes
    it), else the built-in simulated defaults."""
    mark = request.node.get_closest_marker("bench_config")
    if mark is None:
        return default_config()
    given = mark.args[0]
    if isinstance(given, dict):
        return parse_config(given, "<bench_config mark>")
    return load_config(Path(given) if Path(given).is_absolute() else Path(request.config.rootpath) / given)


if HAVE_PYTEST_ASYNCIO:
    @pytest_asyncio.fixture
    async def bench_csms(request: pytest.FixtureRequest) -> AsyncIterator[CsmsSimulator]:
        """The bench CSMS on a loopback port."""
        mark = request.node.get_closest_marker("bench_reject")
        server = CsmsSimulator(rejected_tags={str(t).upper() for t in mark.args} if mark else None)
        await server.start()
        yield server
        await server.stop()

    @pytest_asyncio.fixture
    async def bench_charger(bench_config: Config, bench_csms: CsmsSimulator,
                            tmp_path: Path) -> AsyncIterator[BenchCharger]:
        """The configured simulated charger, booted to ``bench_csms``."""
        async with bench_app(bench_config, bench_csms, tmp_path / "state") as app:
            yield BenchCharger(app, bench_csms)
