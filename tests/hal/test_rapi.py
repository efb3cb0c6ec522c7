"""The OpenEVSE RAPI driver against the simulated board on a pty pair."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from hal.errors import HalProtocolError, HalTimeoutError
from hal.rapi import RapiContactor, RapiPilot, RapiRcm, checksum, frame, parse
from hil.nullmodem import NullModem
from hil.rapi_sim import ENABLED, RapiSimulator
from tests.conftest import wait_until


def test_frames_carry_the_xor_checksum_and_bad_ones_are_refused() -> None:
    assert frame("GS") == b"$GS^30\r"  # the firmware's own example
    assert parse(f"$OK 16^{checksum('$OK 16')}") == ["OK", "16"]
    assert parse("$OK 16:07^" + checksum("$OK 16:07")) == ["OK", "16"]  # a sequence id, echoed
    assert parse("$AT 03 03 16 0140") == ["AT", "03", "03", "16", "0140"]
    with pytest.raises(HalProtocolError, match="checksum 00 does not match"):
        parse("$OK^00")
    with pytest.raises(HalProtocolError, match="not a frame"):
        parse("OK")


@pytest.fixture
async def board() -> AsyncIterator[tuple[RapiSimulator, dict[str, Any]]]:
    cable = NullModem()
    await cable.start()
    sim = RapiSimulator(cable.a)
    sim.start()
    yield sim, {"port": cable.b, "poll_interval": 0.1, "timeout": 0.3}
    sim.stop()
    cable.close()


def _read(pilot: RapiPilot) -> float | None:
    try:
        return pilot.read_voltage()
    except (HalTimeoutError, HalProtocolError):
        return None


async def test_a_session_on_the_boards_pilot_and_relay(board: tuple[RapiSimulator, dict[str, Any]]) -> None:
    sim, link = board
    pilot, contactor = RapiPilot(board=link), RapiContactor(board=link)
    try:
        pilot.stop_offer()
        await wait_until(lambda: _read(pilot) == 12.0 and "FS" in sim.commands, what="+12 V (sleep), state A")
        sim.car = 2
        await wait_until(lambda: _read(pilot) == 9.0, what="state B")
        pilot.offer_current(16)
        await wait_until(lambda: sim.mode == ENABLED and sim.amps == 16, what="enabled at 16 A")
        assert "SC 16 V" in sim.commands  # volatile: not written to the board's EEPROM
        sim.car = 3
        await wait_until(lambda: _read(pilot) == 6.0 and sim.relay, what="state C and the relay on")
        await wait_until(lambda: contactor.board.fresh() is not None and contactor.board.fresh().vflags & 0x40,
                         what="the $AT with the relay")
        assert contactor.feedback_closed is None  # closed by the board before the supervisor's word
        contactor.close()
        assert contactor.feedback_closed is True
        contactor.open()
        await wait_until(lambda: not sim.relay and sim.commands[-1] == "FD", what="$FD and the relay off")
        await asyncio.sleep(1.1)
        assert contactor.feedback_closed is False
    finally:
        await asyncio.to_thread(contactor.shutdown)
        await asyncio.to_thread(pilot.close)


async def test_the_boards_faults_arrive_through_the_roles(board: tuple[RapiSimulator, dict[str, Any]]) -> None:
    sim, link = board
    pilot, contactor, rcm = RapiPilot(board=link), RapiContactor(board=link), RapiRcm(board=link)
    trips: list[bool] = []
    rcm.on_trip = trips.append
    try:
        pilot.stop_offer()
        await wait_until(lambda: _read(pilot) == 12.0, what="the first report")
        sim.fault = 5
        await wait_until(lambda: pilot.read_low_voltage() == 0.0, what="the diode check failing")
        sim.fault = 6
        await wait_until(lambda: trips == [True], what="the GFCI trip")
        sim.fault = 10
        await wait_until(lambda: _read(pilot) is None, what="over temperature making the pilot unreadable")
        with pytest.raises(HalProtocolError, match="over temperature"):
            pilot.read_voltage()
        contactor.close()
        contactor.open()
        sim.fault = 8
        await asyncio.sleep(1.2)
        assert contactor.feedback_closed is True  # a stuck relay reads closed after the order
    finally:
        await asyncio.to_thread(rcm.close)
        await asyncio.to_thread(contactor.shutdown)
        await asyncio.to_thread(pilot.close)


async def test_a_silent_board_makes_the_pilot_unreadable(board: tuple[RapiSimulator, dict[str, Any]]) -> None:
    sim, link = board
    pilot = RapiPilot(board=link)
    try:
        pilot.stop_offer()
        await wait_until(lambda: _read(pilot) == 12.0, what="the first report")
        await asyncio.to_thread(sim.stop)
        await wait_until(lambda: _read(pilot) is None, timeout=5, what="the pilot to read as lost")
        with pytest.raises(HalTimeoutError, match="no answer"):
            pilot.read_voltage()
    finally:
        await asyncio.to_thread(pilot.close)
