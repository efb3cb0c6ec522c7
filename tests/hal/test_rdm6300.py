"""RDM6300 frames: checksum, resynchronisation, split frames, de-duplicated repeats, and the driver on a pty."""

from __future__ import annotations

import asyncio
import contextlib

from hal.rfid.rdm6300 import Rdm6300Parser, Rdm6300Reader
from hil.readers import Rdm6300Simulator, rdm6300_frame

TAG = bytes.fromhex("0A001B2C3D")
# 02 | "0A001B2C3D" | XOR 0A^00^1B^2C^3D = 0x00 -> "00" | 03
FRAME = b"\x020A001B2C3D00\x03"


def test_the_simulated_reader_sends_the_documented_layout() -> None:
    assert rdm6300_frame(TAG) == FRAME


def test_parser_accepts_a_valid_frame() -> None:
    assert Rdm6300Parser().feed(FRAME) == ["0A001B2C3D"]


def test_parser_drops_a_bad_checksum_and_keeps_going() -> None:
    bad = FRAME[:11] + b"FF" + FRAME[13:]
    parser = Rdm6300Parser()
    assert parser.feed(bad + FRAME) == ["0A001B2C3D"]
    assert parser.errors == 1


def test_parser_resynchronises_after_garbage_and_non_hex() -> None:
    parser = Rdm6300Parser()
    assert parser.feed(b"\xff\x02ZZZZ\x03noise" + FRAME) == ["0A001B2C3D"]


def test_parser_joins_split_frames() -> None:
    parser = Rdm6300Parser()
    assert parser.feed(FRAME[:6]) == []
    assert parser.feed(FRAME[6:]) == ["0A001B2C3D"]


def test_repeats_are_reported_once_until_the_tag_leaves_the_field() -> None:
    now = [100.0]
    reader = Rdm6300Reader(port="unused", removal_time=0.5, clock=lambda: now[0])
    seen: list[str] = []
    for _ in range(5):
        reader.accept(FRAME, seen.append)
        now[0] += 0.1
    assert seen == ["0A001B2C3D"]
    now[0] += 1.0  # silence: the tag was taken away and presented again
    reader.accept(FRAME, seen.append)
    assert seen == ["0A001B2C3D", "0A001B2C3D"]


async def test_driver_reads_the_simulated_module_on_a_pty() -> None:
    sim = Rdm6300Simulator()
    await sim.start()
    reader = Rdm6300Reader(port=sim.path)
    cards: list[str] = []
    task = asyncio.create_task(reader.run(cards.append))
    try:
        await asyncio.sleep(0.1)
        sim.tap("0A001B2C3D", duration=0.4)
        await asyncio.sleep(0.7)
        assert cards == ["0A001B2C3D"]
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await sim.stop()
