"""The EVSE-WB / EVSE-DIN board driver against the simulated board: over Modbus TCP and RTU on a pty."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from hal.errors import HalTimeoutError
from hal.evsewb import COMMAND, TURN_OFF_NOW, EvseWbContactor, EvseWbPilot, EvseWbRcm
from hil.evsewb_sim import EvseWbSimulator
from hil.nullmodem import NullModem
from tests.conftest import wait_until


@pytest.fixture
async def board() -> AsyncIterator[tuple[EvseWbSimulator, dict[str, Any]]]:
    sim = EvseWbSimulator()
    port = await sim.start_tcp()
    yield sim, {"transport": "tcp", "host": "127.0.0.1", "tcp_port": port, "poll_interval": 0.05, "timeout": 0.3}
    await sim.stop()


async def _volts(pilot: EvseWbPilot, volts: float) -> None:
    await wait_until(lambda: _read(pilot) == volts, what=f"the pilot at {volts} V")


def _read(pilot: EvseWbPilot) -> float | None:
    try:
        return pilot.read_voltage()
    except HalTimeoutError:
        return None


async def test_the_pilot_offers_current_and_reads_the_cars_state(board: tuple[EvseWbSimulator, dict]) -> None:
    sim, link = board
    pilot = EvseWbPilot(board=link)
    try:
        pilot.set_unavailable()
        await wait_until(lambda: pilot.board.fresh() is not None, what="the first poll")
        assert pilot.read_voltage() == -12.0  # state F as asked, whatever the board shows
        pilot.stop_offer()
        await _volts(pilot, 12.0)
        sim.car = 2
        await _volts(pilot, 9.0)
        pilot.offer_current(16)
        await wait_until(lambda: sim.amps == 16.0, what="16 A on the board")
        assert sim.current_raw == 1600 and sim.config_bits & 0x80  # firmware 18: 0.01 A, switched on at start
        sim.car = 3
        await _volts(pilot, 6.0)
        assert pilot.read_low_voltage() == -12.0
        sim.diode_failed = True
        await wait_until(lambda: pilot.read_low_voltage() == 0.0, what="the diode check failing")
    finally:
        await asyncio.to_thread(pilot.close)  # it waits for the board's last write: not on the loop
    await wait_until(lambda: sim.current_raw == 0, what="no PWM once released")


async def test_the_relay_is_the_boards_and_open_orders_it_off(board: tuple[EvseWbSimulator, dict]) -> None:
    sim, link = board
    pilot, contactor = EvseWbPilot(board=link), EvseWbContactor(board=link)
    try:
        assert pilot.board is contactor.board  # one link, one poller
        pilot.offer_current(10)
        sim.car = 3
        await wait_until(lambda: sim.relay, what="the board's relay")
        await asyncio.sleep(0.15)
        assert contactor.feedback_closed is None  # closed by the board before the supervisor's word: not a weld
        contactor.close()
        assert contactor.commanded_closed and contactor.feedback_closed is True
        contactor.open()
        await wait_until(lambda: (COMMAND, TURN_OFF_NOW) in sim.writes and not sim.relay, what="the relay off")
        assert sim.current_raw == 0
        await asyncio.sleep(1.1)
        assert contactor.feedback_closed is False
    finally:
        await asyncio.to_thread(contactor.shutdown)
        await asyncio.to_thread(pilot.close)  # it waits for the board's last write: not on the loop


async def test_a_welded_relay_reads_closed_after_the_grace(board: tuple[EvseWbSimulator, dict]) -> None:
    sim, link = board
    contactor = EvseWbContactor(board=link)
    try:
        contactor.close()
        contactor.open()
        await asyncio.sleep(0.2)
        sim.car, sim.current_raw = 3, 1600  # the relay stays on whatever it is told
        await asyncio.sleep(1.0)
        assert contactor.feedback_closed is True
    finally:
        await asyncio.to_thread(contactor.shutdown)


async def test_the_boards_rcd_error_is_a_trip(board: tuple[EvseWbSimulator, dict]) -> None:
    sim, link = board
    rcm = EvseWbRcm(board=link)
    trips: list[bool] = []
    rcm.on_trip = trips.append
    try:
        assert rcm.tests_itself
        await asyncio.sleep(0.2)
        assert not rcm.tripped
        sim.rcd_error = True
        await wait_until(lambda: trips == [True], what="the trip")
    finally:
        await asyncio.to_thread(rcm.close)


async def test_a_board_that_stops_answering_makes_the_pilot_unreadable(board: tuple[EvseWbSimulator, dict]) -> None:
    sim, link = board
    pilot = EvseWbPilot(board={**link, "timeout": 0.1})
    try:
        pilot.stop_offer()
        await _volts(pilot, 12.0)
        await sim.stop()
        await wait_until(lambda: _read(pilot) is None, what="the pilot to read as lost", timeout=5)
        with pytest.raises(HalTimeoutError, match=r"EVSE board at 127\.0\.0\.1:.* no answer"):
            pilot.read_voltage()
    finally:
        await asyncio.to_thread(pilot.close)  # it waits for the board's last write: not on the loop


async def test_the_driver_talks_rtu_to_an_older_board_on_a_serial_line() -> None:
    cable = NullModem()
    await cable.start()
    sim = EvseWbSimulator(unit=3, firmware=15)
    await sim.start_serial(cable.a, baudrate=9600)
    link = {"transport": "rtu", "port": cable.b, "baudrate": 9600, "address": 3, "poll_interval": 0.1,
            "timeout": 0.5}
    pilot, contactor = EvseWbPilot(board=link), EvseWbContactor(board=link)
    try:
        pilot.offer_current(13)
        sim.car = 2
        await _volts(pilot, 9.0)
        assert sim.current_raw == 13  # whole amps before firmware 17
        assert contactor.feedback_closed is None  # firmware 15 reports no relay
    finally:
        await asyncio.to_thread(contactor.shutdown)
        await asyncio.to_thread(pilot.close)  # it waits for the board's last write: not on the loop
        await sim.stop()
        cable.close()
