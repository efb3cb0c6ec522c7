"""PN532 HSU framing (from the reference's byte layouts) and the driver against a simulated PN532 on a pty."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

from hal.errors import HalProtocolError
from hal.rfid.pn532 import Pn532Reader, parse_passive_target
from hal.rfid.pn532_frame import (
    ACK_FRAME,
    NACK_FRAME,
    Ack,
    DataFrame,
    ErrorFrame,
    FrameParser,
    Nack,
    encode_frame,
)
from hil.readers import ERROR_FRAME, Pn532Simulator, host_commands, pn532_frame

# GetFirmwareVersion command as UM0701 spells it: 00 00 FF 02 FE D4 02 2A 00
GET_FIRMWARE = bytes.fromhex("0000FF02FED4022A00")
# Its answer: IC 0x32, version 1.6, support 7
FIRMWARE_RESPONSE = bytes.fromhex("0000FF06FAD50332010607E800")


def test_encode_matches_the_datasheet_bytes() -> None:
    assert encode_frame(0xD4, b"\x02") == GET_FIRMWARE


def test_the_simulated_pn532_frames_by_the_datasheet() -> None:
    assert pn532_frame(bytes.fromhex("0332010607")) == FIRMWARE_RESPONSE
    received = bytearray(b"\x55\x55" + bytes(14) + GET_FIRMWARE + ACK_FRAME + GET_FIRMWARE[:5])
    assert host_commands(received) == [b"\x02", b""]  # the command, then the host's ACK
    received.extend(GET_FIRMWARE[5:])  # the rest of a split frame
    assert host_commands(received) == [b"\x02"]


def test_parser_reads_ack_nack_error_and_data_frames() -> None:
    frames = FrameParser().feed(ACK_FRAME + FIRMWARE_RESPONSE + NACK_FRAME + ERROR_FRAME)
    assert frames == [Ack(), DataFrame(0xD5, bytes.fromhex("0332010607")), Nack(), ErrorFrame()]


def test_parser_waits_for_the_rest_of_a_split_frame() -> None:
    parser = FrameParser()
    assert parser.feed(FIRMWARE_RESPONSE[:5]) == []
    assert parser.feed(FIRMWARE_RESPONSE[5:9]) == []
    assert parser.feed(FIRMWARE_RESPONSE[9:]) == [DataFrame(0xD5, bytes.fromhex("0332010607"))]


def test_parser_resynchronises_after_garbage() -> None:
    parser = FrameParser()
    frames = parser.feed(b"\x55\x55\x13\xff\x37" + FIRMWARE_RESPONSE)
    assert frames == [DataFrame(0xD5, bytes.fromhex("0332010607"))]


@pytest.mark.parametrize("index", [3, 4, 11])  # LEN, LCS, DCS
def test_parser_drops_frames_with_bad_checksums_and_finds_the_next(index: int) -> None:
    bad = bytearray(FIRMWARE_RESPONSE)
    bad[index] ^= 0x01
    parser = FrameParser()
    assert parser.feed(bytes(bad) + ACK_FRAME) == [Ack()]
    assert parser.errors >= 1


def test_extended_frames_round_trip() -> None:
    payload = bytes(range(256)) + b"\x01\x02"
    frame = encode_frame(0xD5, payload)
    assert frame[3:5] == b"\xff\xff"
    assert FrameParser().feed(frame) == [DataFrame(0xD5, payload)]


def test_passive_target_uids_are_uppercase_hex() -> None:
    assert parse_passive_target(bytes.fromhex("01010004080404a1b2c3")) == "04A1B2C3"
    assert parse_passive_target(bytes.fromhex("01010044000704112233445566")) == "04112233445566"
    assert parse_passive_target(b"\x00") is None
    with pytest.raises(HalProtocolError, match="NFCID length"):
        parse_passive_target(bytes.fromhex("0101000408050102030405"))


@contextlib.asynccontextmanager
async def running(sim: Pn532Simulator | None, port: str = "", **options: float,
                  ) -> AsyncIterator[tuple[Pn532Reader, list[str]]]:
    """A reader task on the simulator's pty (or on ``port``), torn down with the simulator; ``options`` go to the
    reader."""
    options = {"poll_interval": 0.02, "response_timeout": 0.3, **options}
    reader = Pn532Reader(port=sim.path if sim else port, **options)  # type: ignore[arg-type]
    reader.reopen_delay = (0.02, 0.2)
    cards: list[str] = []
    if sim is not None:
        await sim.start()
    task = asyncio.create_task(reader.run(cards.append))
    try:
        yield reader, cards
        assert not task.done(), "the reader task ended"
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        if sim is not None:
            await sim.stop()


async def _until(predicate: object, timeout: float = 3.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not predicate():  # type: ignore[operator]
        assert loop.time() < end, "timed out"
        await asyncio.sleep(0.01)


async def test_driver_wakes_configures_and_reports_a_card_once_per_tap() -> None:
    sim = Pn532Simulator()
    async with running(sim) as (reader, cards):
        await _until(lambda: reader.firmware is not None)
        assert sim.commands[:3] == [0x14, 0x02, 0x32]  # SAMConfiguration, firmware, RF retries
        sim.tap("04A1B2C3", duration=0.3)
        await _until(lambda: cards)
        await asyncio.sleep(0.4)  # many polls while the card stays in the field
        assert cards == ["04A1B2C3"]
        sim.tap("04112233445566", duration=0.2)
        await _until(lambda: len(cards) == 2)
        assert cards[1] == "04112233445566"


async def test_with_no_card_the_pn532_waits_and_a_tap_is_answered_at_once() -> None:
    sim = Pn532Simulator()
    loop = asyncio.get_running_loop()
    async with running(sim, poll_interval=0.05, card_wait=0.4) as (reader, cards):
        await _until(lambda: sim.waiting)
        assert sim.passive_retries == 0xFF  # the driver asked the PN532 to wait for a card
        before = sim.commands.count(0x4A)
        await asyncio.sleep(1.0)
        # One InListPassiveTarget per card_wait (0.4 s), each ended by the host's ACK: not one per 50 ms poll.
        assert sim.commands.count(0x4A) - before <= 4 and sim.aborted >= 2 and reader.healthy
        await _until(lambda: sim.waiting)
        tapped = loop.time()
        sim.tap("04A1B2C3", duration=0.3)
        await _until(lambda: cards)
        assert cards == ["04A1B2C3"] and loop.time() - tapped < 0.05  # the waiting PN532 answered at once
        # While the card stays, the field is polled with bounded retries; its leaving is seen within a poll,
        # and the same card tapped again right after is a new presentation.
        await _until(lambda: sim.passive_retries == reader.activation_retries)
        await _until(lambda: sim.waiting, timeout=2.0)
        sim.tap("04A1B2C3", duration=0.2)
        await _until(lambda: len(cards) == 2)
        assert cards == ["04A1B2C3", "04A1B2C3"] and reader.failures == 0


async def test_an_answer_that_comes_as_the_host_ends_the_wait_is_skipped_and_the_card_still_counts() -> None:
    sim = Pn532Simulator()
    sim.answer_late = True
    async with running(sim, poll_interval=0.05, card_wait=0.3) as (reader, cards):
        await _until(lambda: sim.waiting)
        sim.tap("04A1B2C3", duration=1.0)  # held back until the host ends this wait, then sent late
        await _until(lambda: cards)
        assert cards == ["04A1B2C3"] and reader.stale_frames == 1 and reader.failures == 0


async def test_noise_on_the_retries_switch_is_one_miss_not_a_lost_reader() -> None:
    sim = Pn532Simulator()
    async with running(sim, poll_interval=0.05, card_wait=0.4) as (reader, cards):
        await _until(lambda: sim.waiting)
        sim.corrupt_code = 0x32  # the answer to the switch to bounded retries, as the card comes, is spoilt
        sim.tap("04A1B2C3", duration=0.6)
        await _until(lambda: cards)
        await _until(lambda: sim.passive_retries == reader.activation_retries)  # the switch, tried again
        assert sim.corrupt_code is None and cards == ["04A1B2C3"] and reader.failures == 0
        await _until(lambda: sim.waiting, timeout=2.0)  # the card left: waiting again, the same session
        sim.tap("04A1B2C3", duration=0.2)
        await _until(lambda: len(cards) == 2)
        assert reader.failures == 0


async def test_driver_survives_corrupted_split_and_garbage_responses() -> None:
    sim = Pn532Simulator()
    async with running(sim) as (reader, cards):
        await _until(lambda: reader.firmware is not None)
        sim.corrupt_next = True
        sim.garbage = b"\x13\x37\x00"
        sim.split = True
        sim.tap("04A1B2C3", duration=0.5)
        await _until(lambda: cards)
        assert cards == ["04A1B2C3"]


async def test_a_silent_reader_is_reopened_without_crashing() -> None:
    sim = Pn532Simulator()
    sim.silent = True
    async with running(sim) as (reader, cards):
        await _until(lambda: reader.failures >= 2)
        sim.silent = False
        sim.tap("04A1B2C3", duration=2.0)
        await _until(lambda: cards, timeout=5)
        assert cards == ["04A1B2C3"]


async def test_a_missing_port_is_retried_not_fatal() -> None:
    async with running(None, port="/dev/does-not-exist-evse") as (reader, _cards):
        await _until(lambda: reader.failures >= 3)
