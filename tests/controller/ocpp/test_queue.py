"""The durable queue: atomic writes, order, CSMS ids, -1 for a lost start, PowerLoss recovery, waiting for delivery."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from controller.ocpp.queue import START, STOP, UPDATE, Queue
from controller.storage import Store, StoredTransaction

AT = "2026-11-21T10:00:00.000Z"


def _tx(local_id: str = "t1", meter: int = 100, connector: int = 1) -> StoredTransaction:
    return StoredTransaction(local_id, connector, "04A1B2C3", meter, AT, None, meter, AT, True)


def _start(queue: Queue, local_id: str = "t1", connector: int = 1) -> None:
    queue.transaction_started(_tx(local_id, connector=connector), "StartTransaction",
                              {"connectorId": connector, "idTag": "04A1B2C3", "meterStart": 100, "timestamp": AT})


def _stop(queue: Queue, local_id: str, wh: int, at: str) -> None:
    queue.transaction_ended(local_id, "StopTransaction", {"meterStop": wh, "timestamp": at, "reason": "Local"}, wh, at)


def _sample(queue: Queue, local_id: str, wh: int, at: str) -> None:
    queue.updated(local_id, "MeterValues", {"connectorId": 1, "meterValue": []}, wh, at)


async def test_messages_come_out_in_order_as_wire_json_and_survive_reopening(tmp_path: Path) -> None:
    store = Store(tmp_path)
    queue = Queue(store, "1.6")
    _start(queue)
    _sample(queue, "t1", 150, "2026-11-21T10:01:00.000Z")
    _stop(queue, "t1", 200, "2026-11-21T10:02:00.000Z")
    store.close()
    reopened = Queue(Store(tmp_path), "1.6")
    sent = []
    for csms_id in (7, None, None):
        message = await reopened.head()
        sent.append((message.action, message.role, message.version))
        reopened.delivered(message, csms_id)
        if message.role == START:
            assert message.payload["idTag"] == "04A1B2C3"  # OCPP's field names, not a library's
            assert reopened.transaction_id("t1") == 7 and reopened.local_id_for(7) == "t1"
    assert sent == [("StartTransaction", START, "1.6"), ("MeterValues", UPDATE, "1.6"),
                    ("StopTransaction", STOP, "1.6")]
    assert len(reopened) == 0 and reopened.store.transactions() == []


async def test_messages_of_different_transactions_keep_the_order_they_happened_in(tmp_path: Path) -> None:
    queue = Queue(Store(tmp_path), "1.6")
    # Two EVSEs: "zz" starts first, "aa" second; their messages interleave.
    _start(queue, "zz", 1)
    _start(queue, "aa", 2)
    _sample(queue, "zz", 150, "2026-11-21T10:01:00.000Z")
    _stop(queue, "aa", 120, "2026-11-21T10:02:00.000Z")
    _stop(queue, "zz", 200, "2026-11-21T10:03:00.000Z")
    sent = []
    while len(queue):
        message = await queue.head()
        sent.append((message.action, message.tx_local_id))
        queue.delivered(message, 1 if message.role == START else None)
    assert sent == [("StartTransaction", "zz"), ("StartTransaction", "aa"), ("MeterValues", "zz"),
                    ("StopTransaction", "aa"), ("StopTransaction", "zz")]


async def test_a_start_given_up_makes_later_messages_use_minus_one(tmp_path: Path) -> None:
    queue = Queue(Store(tmp_path), "1.6")
    _start(queue)
    queue.give_up(await queue.head())
    assert queue.transaction_id("t1") == -1 and queue.store.transaction("t1") is not None


async def test_a_stop_given_up_still_ends_its_transaction(tmp_path: Path) -> None:
    queue = Queue(Store(tmp_path), "1.6")
    _start(queue)
    queue.delivered(await queue.head(), 3)
    _stop(queue, "t1", 200, AT)
    queue.give_up(await queue.head())
    assert queue.store.transactions() == [] and len(queue) == 0


async def test_an_update_given_up_leaves_the_transaction_alone(tmp_path: Path) -> None:
    queue = Queue(Store(tmp_path), "1.6")
    _start(queue)
    queue.delivered(await queue.head(), 3)
    _sample(queue, "t1", 150, AT)
    queue.give_up(await queue.head())
    assert queue.transaction_id("t1") == 3 and queue.store.transaction("t1") is not None


def test_open_transactions_end_as_power_loss_with_their_last_reading(tmp_path: Path) -> None:
    store = Store(tmp_path)
    queue = Queue(store, "1.6")
    _start(queue)
    store.record_reading("t1", 321, "2026-11-21T10:05:00.000Z")  # the meter poll's reading
    _start(queue, "t2", 2)
    _sample(queue, "t2", 250, "2026-11-21T10:04:00.000Z")  # a MeterValues sample records its reading too
    store.close()
    # The process died here. A new one opens the same state directory:
    store = Store(tmp_path)
    queue = Queue(store, "1.6")
    recovered = queue.recover_power_loss(lambda tx: ("StopTransaction", {"meterStop": tx.last_wh,
                                                                          "timestamp": tx.last_at}))
    assert [t.local_id for t in recovered] == ["t1", "t2"]
    stops = {}
    while len(queue):
        message = store.head()
        assert message is not None
        if message.role == STOP:
            stops[message.tx_local_id] = message.payload
        queue.delivered(message, 1 if message.role == START else None)
    assert stops == {"t1": {"meterStop": 321, "timestamp": "2026-11-21T10:05:00.000Z"},
                     "t2": {"meterStop": 250, "timestamp": "2026-11-21T10:04:00.000Z"}}
    assert queue.recover_power_loss(lambda tx: ("x", {})) == []  # recovering twice ends nothing twice


def test_an_interrupted_write_leaves_nothing_half_done(tmp_path: Path) -> None:
    store = Store(tmp_path)
    with pytest.raises(RuntimeError), store.atomic() as db:
        store.open_transaction(db, _tx())
        raise RuntimeError("killed between the two writes")
    assert store.transactions() == [] and store.outbox_size() == 0


async def test_waiting_for_delivery_up_to_a_message(tmp_path: Path) -> None:
    queue = Queue(Store(tmp_path), "1.6")
    _start(queue)
    _stop(queue, "t1", 200, AT)
    assert queue.last_seq(1) == 2 and queue.last_seq(2) == 0
    waiter = asyncio.create_task(queue.through(2))
    queue.delivered(await queue.head(), 1)
    await asyncio.sleep(0.01)
    assert not waiter.done()  # the stop is still queued
    queue.delivered(await queue.head())
    await asyncio.wait_for(waiter, 1)


def test_the_same_message_id_and_attempts_survive_a_restart(tmp_path: Path) -> None:
    store = Store(tmp_path)
    _start(Queue(store, "1.6"))
    head = store.head()
    assert head is not None
    store.mark_sending(head.seq, "m-1")
    assert store.count_attempt(head.seq) == 1
    store.close()
    again = Store(tmp_path).head()
    assert again is not None and (again.message_id, again.attempts) == ("m-1", 1)
