"""A charger whose EVSE board owns the pilot and the relay (an EVSE-WB over Modbus, an OpenEVSE over RAPI): a
session, the supervisor still deciding, the board's RCD/GFCI error arriving in the fault catalogue."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from ocpp.v16 import call

from controller.app import App
from controller.config import Config, parse_config
from controller.hardware import Platform
from hil.csms import CsmsSimulator
from hil.evsewb_sim import EvseWbSimulator
from hil.meter import MeterSimulator
from hil.nullmodem import NullModem
from hil.rapi_sim import RapiSimulator
from tests.bench.test_ocpp16_commands import last_status
from tests.conftest import wait_until

TAG = "04A1B2C3"


class BoardBench(Platform):
    """The board (Modbus TCP or RAPI on a pty pair) and the meter on loopback; the meter follows the relay."""

    def __init__(self, config: Config, kind: str) -> None:
        super().__init__(config)
        self.kind = kind
        self.board: Any = EvseWbSimulator() if kind == "evsewb" else None
        self.cable = NullModem()
        self.meter = MeterSimulator("sdm630", phases=3)
        self._follow: asyncio.Task[None] | None = None

    def check(self) -> None:
        """Loopback buses: no GPIO needed."""

    async def start(self) -> None:
        if self.kind == "evsewb":
            await self.board.start_tcp()
        else:
            await self.cable.start()
            self.board = RapiSimulator(self.cable.a)
            self.board.start()
        await self.meter.start_tcp()
        self._follow = asyncio.create_task(self._draw())

    def trip(self) -> None:
        """The board's residual-current device trips."""
        if self.kind == "evsewb":
            self.board.rcd_error = True
        else:
            self.board.fault = 6  # GFCI fault

    def relay_ordered_off(self) -> bool:
        if self.kind == "evsewb":
            return bool(self.board.current_raw == 0 and (1004, 1) in self.board.writes)
        return bool("FD" in self.board.commands and not self.board.relay)

    async def _draw(self) -> None:
        while True:
            self.meter.set_current(self.board.amps if self.board.relay else 0.0)
            await asyncio.sleep(0.05)

    def driver_args(self, role: str, evse_id: int | None = None) -> dict[str, Any]:
        if role == "board":
            if self.kind == "evsewb":
                return {"transport": "tcp", "host": "127.0.0.1", "tcp_port": self.board.port}
            return {"port": self.cable.b}
        if role == "meter":
            return {"transport": "tcp", "host": "127.0.0.1", "tcp_port": self.meter.port}
        return {}

    async def stop(self) -> None:
        if self._follow is not None:
            self._follow.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._follow
        await super().stop()
        await self.meter.stop()
        if self.kind == "evsewb":
            await self.board.stop()
        else:
            await asyncio.to_thread(self.board.stop)
            self.cable.close()


def board_config(csms_url: str, kind: str = "evsewb") -> Config:
    return parse_config({
        "station": {"hardware": "pi", "id": "BOARD-1", "reading_persist_interval": 0.2},
        "ocpp": {"csms_url": csms_url, "reconnect_min": 0.2, "reconnect_max": 0.5},
        "rfid": {"driver": "none"},
        "connector": [{"id": 1, "max_current": 16, "phases": 3,
                       "pilot": {"driver": kind}, "contactor": {"driver": kind}, "rcm": {"driver": kind},
                       "board": {"port": "/dev/ttyUSB1", "poll_interval": 0.05},
                       "meter": {"poll_interval": 0.2}}],
    }, "<board test>")


@pytest.fixture(params=["evsewb", "rapi"])
async def charger(request: pytest.FixtureRequest, tmp_path: Path,
                  csms: CsmsSimulator) -> AsyncIterator[tuple[App, BoardBench]]:
    app = App(board_config(csms.url, request.param), state_dir=tmp_path)
    bench = app.platform = BoardBench(app.config, request.param)
    await app.start()
    try:
        assert app.ocpp is not None
        await asyncio.wait_for(app.ocpp.connected.wait(), 10)
        yield app, bench
    finally:
        await app.stop()


async def test_a_session_runs_on_the_boards_pilot_and_relay(charger: tuple[App, BoardBench],
                                                           csms: CsmsSimulator) -> None:
    app, bench = charger
    board = bench.board
    await wait_until(lambda: last_status(csms, 1) == "Available", what="Available")
    board.car = 2
    await wait_until(lambda: last_status(csms, 1) == "Preparing", what="Preparing on B")
    result = await csms.call("BOARD-1", call.RemoteStartTransaction(id_tag=TAG, connector_id=1))
    assert result.status == "Accepted"
    await wait_until(lambda: board.amps == 16.0 and (bench.kind == "evsewb" or board.mode == 0),
                     what="the board offering 16 A")
    board.car = 3
    await wait_until(lambda: last_status(csms, 1) == "Charging", timeout=10, what="Charging")
    assert board.relay and app.supervisor.closed(1)
    await wait_until(lambda: len(csms.transactions) == 1, what="StartTransaction")
    # The board's RCD reports an error: the supervisor opens and the board is told to drop its relay.
    bench.trip()
    await wait_until(lambda: last_status(csms, 1) == "Faulted", what="Faulted")
    assert not app.supervisor.closed(1)
    await wait_until(bench.relay_ordered_off, what="the relay ordered off")
    faults = [s for s in (c for c in csms_calls(csms) if c.get("connectorId") == 1) if s["status"] == "Faulted"]
    assert faults[-1]["errorCode"] == "GroundFailure"


def csms_calls(csms: CsmsSimulator) -> list[dict[str, Any]]:
    from tests.bench.test_ocpp16_core import calls

    return calls(csms, "StatusNotification")


def test_the_board_must_own_pilot_and_relay_alike(tmp_path: Path) -> None:
    from controller.config import ConfigError

    data = {"station": {"hardware": "sim"}, "connector": [{"id": 1, "pilot": {"driver": "evsewb"}}]}
    with pytest.raises(ConfigError) as info:
        parse_config(data, "<t>")
    assert any("connector[id=1].contactor.driver = 'gpio': expected the board's driver for the pilot and the "
               "contactor alike" in p for p in info.value.problems)
    assert any("connector[id=1].pilot.driver = 'evsewb': expected 'gpio' on simulated hardware" in p
               for p in info.value.problems)
