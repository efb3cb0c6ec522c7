"""The J1939-21 transport receiver: against python-can-j1939 as an independent sender, and frame by frame."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Iterator

import j1939
import pytest

from controller.charging.j1939 import T1, T2, Address, Message, TransportReceiver, frame_id
from hal.can import Frame, PythonCanBus

CHARGER, BMS = 0x56, 0xF4
BRM, BCP, BCS, BMV = 0x0200, 0x0600, 0x1100, 0x1500
TP_CM_IN = 0x1CEC56F4  # BMS -> charger
TP_DT_IN = 0x1CEB56F4
TP_CM_OUT = 0x1CECF456  # charger -> BMS
_channels = itertools.count()


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def sent() -> list[Frame]:
    return []


@pytest.fixture
def got() -> list[Message]:
    return []


@pytest.fixture
def rx(clock: FakeClock, sent: list[Frame], got: list[Message]) -> TransportReceiver:
    return TransportReceiver(CHARGER, send=sent.append, deliver=got.append, clock=clock)


def cm(*data: int, dest: int = CHARGER) -> Frame:
    return Frame(0x1CEC00F4 | dest << 8, bytes(data), extended=True)


def dt(seq: int, payload: bytes, dest: int = CHARGER) -> Frame:
    return Frame(0x1CEB00F4 | dest << 8, bytes([seq]) + payload.ljust(7, b"\xff"), extended=True)


def rts(size: int, pgn: int, per_cts: int = 0xFF) -> Frame:
    return cm(0x10, size & 0xFF, size >> 8, -(-size // 7), per_cts, pgn & 0xFF, pgn >> 8, 0)


def packets(data: bytes) -> list[bytes]:
    return [data[i:i + 7] for i in range(0, len(data), 7)]


BRM_49 = bytes(range(1, 50))


# ------------------------------------------------------------ against python-can-j1939


@pytest.fixture
def channel() -> str:
    return f"j1939-{next(_channels)}"


@pytest.fixture
async def charger_bus(channel: str) -> AsyncIterator[PythonCanBus]:
    bus = PythonCanBus(interface="virtual", channel=channel)
    await bus.open()
    yield bus
    await bus.close()


@pytest.fixture
def bms(channel: str) -> Iterator[j1939.ControllerApplication]:
    """An independent BMS-side J1939 stack at 0xF4 (GB/T has no address claim)."""
    ecu = j1939.ElectronicControlUnit(max_cmdt_packets=0xFF)
    ecu.connect(interface="virtual", channel=channel)
    ca = j1939.ControllerApplication(j1939.Name(arbitrary_address_capable=0, industry_group=0, vehicle_system=0,
                                                function=0, function_instance=0, ecu_instance=0,
                                                manufacturer_code=0, identity_number=0xF4),
                                     BMS, bypass_address_claim=True)
    ecu.add_ca(controller_application=ca)
    ca.start()
    yield ca
    ca.stop()
    ecu.disconnect()


async def _receive_from(bms: j1939.ControllerApplication, bus: PythonCanBus, pgn: int, data: bytes,
                        dest: int = CHARGER) -> tuple[Message, list[Frame]]:
    loop = asyncio.get_running_loop()
    done: asyncio.Future[Message] = loop.create_future()
    heard: list[Frame] = []

    def deliver(message: Message) -> None:
        if not done.done():
            done.set_result(message)

    rx = TransportReceiver(CHARGER, send=bus.send, deliver=deliver, clock=loop.time)

    def on_frame(frame: Frame) -> None:
        heard.append(frame)
        rx.on_frame(frame)

    bus.subscribe(on_frame)
    assert bms.send_pgn(0, pgn >> 8, dest, 7, list(data))
    message = await asyncio.wait_for(done, 3)
    await asyncio.sleep(0.05)  # the EndOfMsgAck reaches the peer
    return message, heard


@pytest.mark.parametrize(("pgn", "size"), [(BRM, 49), (BRM, 41), (BCP, 13), (BCS, 9)])
async def test_messages_from_an_independent_j1939_stack_arrive_whole(
        bms: j1939.ControllerApplication, charger_bus: PythonCanBus, pgn: int, size: int) -> None:
    data = BRM_49[:size]
    message, _ = await _receive_from(bms, charger_bus, pgn, data)
    assert (message.pgn, message.source, message.data) == (pgn, BMS, data)


async def test_one_cts_grants_every_packet_and_the_end_is_acknowledged(
        bms: j1939.ControllerApplication, charger_bus: PythonCanBus, channel: str) -> None:
    import can

    spy = can.Bus(interface="virtual", channel=channel)
    try:
        await _receive_from(bms, charger_bus, BRM, BRM_49)
        ours = []
        while (msg := spy.recv(0.1)) is not None:
            if msg.arbitration_id == TP_CM_OUT:
                ours.append(bytes(msg.data).hex(" ").upper())
    finally:
        spy.shutdown()
    # The QT BMS's real exchange for a 49-byte BRM (dc.md 3): CTS 7 packets from 1, then EOMA 49 bytes / 7.
    assert ours == ["11 07 01 FF FF 00 02 00", "13 31 00 07 FF 00 02 00"]


async def test_a_broadcast_message_arrives_without_a_handshake(
        bms: j1939.ControllerApplication, charger_bus: PythonCanBus) -> None:
    data = bytes(range(20))
    message, heard = await _receive_from(bms, charger_bus, BMV, data, dest=0xFF)
    assert message.data == data
    assert not [f for f in heard if f.id == TP_CM_OUT]


# ------------------------------------------------------------ frame by frame


def test_ids_split_and_join() -> None:
    assert frame_id(6, 0x2600, BMS, CHARGER) == 0x1826F456  # CHM
    assert Address.of(0x181056F4) == Address(6, 0x1000, CHARGER, BMS)  # BCL
    assert Address.of(0x18FECA00) == Address(6, 0xFECA, 0xFF, 0x00)  # PDU2: broadcast


def test_a_sender_that_limits_its_blocks_gets_a_cts_per_block(rx: TransportReceiver, sent: list[Frame],
                                                              got: list[Message]) -> None:
    assert rx.on_frame(rts(49, BRM, per_cts=2))
    for seq, payload in enumerate(packets(BRM_49), start=1):
        rx.on_frame(dt(seq, payload))
    grants = [(f.data[1], f.data[2]) for f in sent if f.data[0] == 0x11]
    assert grants == [(2, 1), (2, 3), (2, 5), (1, 7)]
    assert got[0].data == BRM_49
    assert sent[-1].data[0] == 0x13
    assert all(f.id == TP_CM_OUT for f in sent)


def test_dt_gaps_up_to_200_ms_and_a_repeated_packet_are_fine(rx: TransportReceiver, clock: FakeClock,
                                                             got: list[Message]) -> None:
    rx.on_frame(rts(41, BRM))
    for seq, payload in enumerate(packets(BRM_49[:41]), start=1):
        clock.now += 0.2
        rx.poll()
        rx.on_frame(dt(seq, payload))
        rx.on_frame(dt(seq, payload))
    assert [m.data for m in got] == [BRM_49[:41]]


def test_a_sender_that_never_starts_is_aborted_after_t2(rx: TransportReceiver, clock: FakeClock,
                                                        sent: list[Frame], got: list[Message]) -> None:
    rx.on_frame(rts(13, BCP))
    clock.now += T2 - 0.01
    rx.poll()
    assert len(sent) == 1  # only the CTS so far
    clock.now += 0.02
    rx.poll()
    assert sent[-1].data.hex(" ").upper() == "FF 03 FF FF FF 00 06 00"
    assert got == [] and rx.failures == {"timeout": 1}


def test_a_sender_that_stops_half_way_is_aborted_after_t1(rx: TransportReceiver, clock: FakeClock,
                                                          sent: list[Frame], got: list[Message]) -> None:
    rx.on_frame(rts(49, BRM))
    rx.on_frame(dt(1, BRM_49[:7]))
    clock.now += T1 + 0.01
    rx.poll()
    assert sent[-1].data[:2] == bytes([0xFF, 3])
    rx.on_frame(dt(2, BRM_49[7:14]))  # too late: no session any more, nothing answered
    assert got == [] and len(sent) == 2


def test_a_packet_out_of_order_aborts_with_reason_7(rx: TransportReceiver, sent: list[Frame],
                                                     got: list[Message]) -> None:
    rx.on_frame(rts(49, BRM))
    rx.on_frame(dt(1, BRM_49[:7]))
    rx.on_frame(dt(3, BRM_49[14:21]))
    assert sent[-1].data[:2] == bytes([0xFF, 7]) and got == []


def test_a_peer_abort_ends_its_session(rx: TransportReceiver, got: list[Message]) -> None:
    rx.on_frame(rts(13, BCP))
    rx.on_frame(cm(0xFF, 1, 0xFF, 0xFF, 0xFF, 0x00, 0x06, 0x00))
    rx.on_frame(dt(1, BRM_49[:7]))
    rx.on_frame(dt(2, BRM_49[7:13]))
    assert got == [] and rx.failures == {"aborted by peer": 1}


def test_a_new_rts_replaces_an_unfinished_one(rx: TransportReceiver, got: list[Message]) -> None:
    rx.on_frame(rts(49, BRM))
    rx.on_frame(dt(1, BRM_49[:7]))
    rx.on_frame(rts(9, BCS))
    rx.on_frame(dt(1, bytes(range(7))))
    rx.on_frame(dt(2, bytes([7, 8])))
    assert [(m.pgn, m.data) for m in got] == [(BCS, bytes(range(9)))]


def test_a_broadcast_that_goes_quiet_is_dropped_without_an_abort(rx: TransportReceiver, clock: FakeClock,
                                                                 sent: list[Frame], got: list[Message]) -> None:
    rx.on_frame(cm(0x20, 20, 0, 3, 0xFF, 0x00, 0x15, 0x00, dest=0xFF))
    rx.on_frame(dt(1, bytes(7), dest=0xFF))
    clock.now += T1 + 0.01
    rx.poll()
    assert sent == [] and got == [] and rx.failures == {"timeout": 1}


def test_an_impossible_announcement_is_refused(rx: TransportReceiver, sent: list[Frame]) -> None:
    rx.on_frame(cm(0x10, 49, 0, 3, 0xFF, 0x00, 0x02, 0x00))  # 49 bytes cannot fit 3 packets
    assert sent[-1].data[:2] == bytes([0xFF, 2])


def test_frames_for_others_and_short_frames_are_not_taken(rx: TransportReceiver, sent: list[Frame],
                                                           caplog: pytest.LogCaptureFixture) -> None:
    assert not rx.on_frame(Frame(0x181056F4, bytes(5), extended=True))  # BCL: not a transport frame
    assert not rx.on_frame(Frame(0x102, bytes(8)))  # an 11-bit frame
    assert not rx.on_frame(Frame(0x1CEC57F4, rts(13, BCP).data, extended=True))  # for node 0x57
    assert rx.on_frame(Frame(TP_CM_IN, bytes([0x10, 13, 0]), extended=True))
    assert "shorter than 8 bytes" in caplog.text
    assert sent == []
