"""The CAN bus role over python-can's ``virtual`` interface: a peer on the same channel is the far end."""

from __future__ import annotations

import asyncio
import itertools
import logging
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import can
import pytest

from hal.can import Frame, PythonCanBus
from hal.drivers import CAN_BUSES
from hal.errors import HalConfigError, HalIOError

_channels = itertools.count()


@pytest.fixture
def channel() -> str:
    return f"test-can-{next(_channels)}"


@pytest.fixture
def peer(channel: str) -> Iterator[can.BusABC]:
    bus = can.Bus(interface="virtual", channel=channel)
    yield bus
    bus.shutdown()


@pytest.fixture
async def bus(channel: str) -> AsyncIterator[PythonCanBus]:
    driver = CAN_BUSES.resolve("python-can")(interface="virtual", channel=channel, bitrate=500_000)
    assert isinstance(driver, PythonCanBus)
    await driver.open()
    yield driver
    await driver.close()


async def _collect(bus: PythonCanBus, count: int, timeout: float = 2.0) -> list[Frame]:
    got: list[Frame] = []
    done = asyncio.Event()

    def handler(frame: Frame) -> None:
        got.append(frame)
        if len(got) >= count:
            done.set()

    stop = bus.subscribe(handler)
    try:
        await asyncio.wait_for(done.wait(), timeout)
    finally:
        stop()
    return got


async def test_frames_from_the_peer_reach_the_loop_stamped_with_the_monotonic_clock(
        bus: PythonCanBus, peer: can.BusABC) -> None:
    loop_thread = threading.get_ident()
    threads: list[int] = []
    bus.subscribe(lambda _f: threads.append(threading.get_ident()))
    before = time.monotonic()
    waiting = asyncio.create_task(_collect(bus, 2))
    await asyncio.sleep(0)
    peer.send(can.Message(arbitration_id=0x102, data=bytes([2, 0x7C, 0x01, 0x10, 0, 0x01, 0x80, 0]),
                          is_extended_id=False))
    peer.send(can.Message(arbitration_id=0x1826F456, data=bytes([1, 1, 0]), is_extended_id=True))
    first, second = await waiting
    assert first == Frame(0x102, bytes([2, 0x7C, 0x01, 0x10, 0, 0x01, 0x80, 0]))
    assert second == Frame(0x1826F456, bytes([1, 1, 0]), extended=True)
    assert before <= first.at <= second.at <= time.monotonic()
    assert set(threads) == {loop_thread}
    assert bus.counters.received == 2


async def test_frames_sent_arrive_at_the_peer_in_order(bus: PythonCanBus, peer: can.BusABC) -> None:
    for i in range(200):
        assert bus.send(Frame(0x108, bytes([0, i % 256, 1, 2])))
    received = [await asyncio.to_thread(peer.recv, 1.0) for _ in range(200)]
    assert [m.data[1] for m in received if m is not None] == [i % 256 for i in range(200)]
    assert all(m is not None and m.arbitration_id == 0x108 and not m.is_extended_id for m in received)
    assert bus.counters.sent == 200


async def test_a_failing_handler_is_logged_and_the_others_still_hear_the_bus(
        bus: PythonCanBus, peer: can.BusABC, caplog: pytest.LogCaptureFixture) -> None:
    def broken(_frame: Frame) -> None:
        raise ValueError("bad layout")

    bus.subscribe(broken)
    waiting = asyncio.create_task(_collect(bus, 1))
    await asyncio.sleep(0)
    peer.send(can.Message(arbitration_id=0x100, data=bytes(8), is_extended_id=False))
    assert len(await waiting) == 1
    assert "failed on frame 100 [8] 00 00 00 00 00 00 00 00" in caplog.text


async def test_a_full_transmit_queue_drops_and_says_so_without_blocking(
        bus: PythonCanBus, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    stuck = threading.Event()

    def no_ack(_msg: can.Message, timeout: float | None = None) -> None:
        stuck.wait(timeout)  # a controller nobody acknowledges: every send waits out its timeout
        raise can.CanOperationError("transmit buffer full")

    monkeypatch.setattr(bus._bus, "send", no_ack)
    started = time.monotonic()
    results = [bus.send(Frame(0x109, bytes(8))) for _ in range(PythonCanBus.QUEUE_LIMIT + 50)]
    assert time.monotonic() - started < 0.5  # the caller never waited for the controller
    assert results.count(False) >= 49
    assert bus.counters.dropped == results.count(False)
    assert caplog.text.count("transmit queue full") == 1
    stuck.set()


async def test_receive_errors_are_logged_once_and_the_bus_recovers(
        bus: PythonCanBus, peer: can.BusABC, caplog: pytest.LogCaptureFixture,
        monkeypatch: pytest.MonkeyPatch) -> None:
    caplog.set_level(logging.INFO, "hal.can")
    real_recv = bus._bus.recv
    failures = iter(range(3))

    def flaky(timeout: float | None = None) -> Any:
        if next(failures, None) is not None:
            raise can.CanOperationError("bus off")
        return real_recv(timeout)

    monkeypatch.setattr(bus._bus, "recv", flaky)
    waiting = asyncio.create_task(_collect(bus, 1, timeout=3.0))
    await asyncio.sleep(0.5)
    peer.send(can.Message(arbitration_id=0x102, data=bytes(8), is_extended_id=False))
    assert len(await waiting) == 1
    assert caplog.text.count("receive failed (bus off)") == 1
    assert "receiving again" in caplog.text
    assert bus.counters.receive_errors == 3


async def test_a_closed_bus_hears_nothing_more(bus: PythonCanBus, peer: can.BusABC) -> None:
    heard: list[Frame] = []
    bus.subscribe(heard.append)
    await bus.close()
    peer.send(can.Message(arbitration_id=0x102, data=bytes(8), is_extended_id=False))
    await asyncio.sleep(0.2)
    assert heard == []
    assert not any(t.is_alive() for t in threading.enumerate() if t.name.startswith("can-test-can"))


async def test_an_unknown_interface_names_what_python_can_knows() -> None:
    with pytest.raises(HalConfigError, match=r"unknown CAN interface 'sockcan'; python-can knows .*socketcan.*virtual"):
        await PythonCanBus(interface="sockcan", channel="can0").open()


async def test_a_socketcan_bus_that_cannot_open_says_how_to_bring_it_up() -> None:
    # This machine's kernel has no CAN; a Pi without the overlay or with can0 down fails the same way.
    with pytest.raises(HalIOError, match=r"CAN bus can0 \(socketcan\): cannot open .*"
                                         r"ip link set can0 up type can bitrate 500000"):
        await PythonCanBus(interface="socketcan", channel="can0", bitrate=500_000).open()


@pytest.mark.parametrize(("ident", "data", "extended", "message"), [
    (0x800, b"", False, "11-bit"),
    (0x20000000, b"", True, "29-bit"),
    (0x100, bytes(9), False, "at most 8 bytes"),
])
def test_frames_that_classic_can_cannot_carry_are_refused(ident: int, data: bytes, extended: bool,
                                                          message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Frame(ident, data, extended)
