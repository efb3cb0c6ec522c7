"""The durable outbox: atomic writes, order, CSMS ids, -1 for a lost start, PowerLoss recovery."""

from __future__ import annotations

from pathlib import Path

from controller.ocpp.outbox import Outbox
from controller.storage import Store, StoredTransaction


def _tx(local_id: str = "t1", meter: int = 100) -> StoredTransaction:
    at = "2026-11-21T10:00:00.000Z"
    return StoredTransaction(local_id, 1, "04A1B2C3", meter, at, None, False, meter, at, True)


def _start(outbox: Outbox, local_id: str = "t1") -> None:
    outbox.transaction_started(_tx(local_id), {"connector_id": 1, "id_tag": "04A1B2C3", "meter_start": 100,
                                               "timestamp": "2026-11-21T10:00:00.000Z"})


async def test_messages_come_out_in_order_and_survive_reopening(tmp_path: Path) -> None:
    store = Store(tmp_path)
    outbox = Outbox(store)
    _start(outbox)
    outbox.meter_sample("t1", {"connector_id": 1, "meter_value": []}, 150, "2026-11-21T10:01:00.000Z")
    outbox.transaction_ended("t1", {"meter_stop": 200, "timestamp": "2026-11-21T10:02:00.000Z", "reason": "Local"})
    store.close()
    reopened = Outbox(Store(tmp_path))
    actions = []
    for csms_id in (7, None, None):
        message = await reopened.head()
        actions.append(message.action)
        reopened.delivered(message, csms_id)
        if message.action == "StartTransaction":
            assert reopened.transaction_id("t1") == 7 and reopened.local_id_for(7) == "t1"
    assert actions == ["StartTransaction", "MeterValues", "StopTransaction"]
    assert len(reopened) == 0 and reopened.store.transactions() == []


async def test_a_start_given_up_makes_later_messages_use_minus_one(tmp_path: Path) -> None:
    outbox = Outbox(Store(tmp_path))
    _start(outbox)
    outbox.give_up(await outbox.head())
    assert outbox.transaction_id("t1") == -1


def test_open_transactions_end_as_power_loss_with_their_last_reading(tmp_path: Path) -> None:
    store = Store(tmp_path)
    outbox = Outbox(store)
    _start(outbox)
    store.record_reading("t1", 321, "2026-11-21T10:05:00.000Z")
    store.close()
    # The process died here. A new one opens the same state directory:
    store = Store(tmp_path)
    recovered = Outbox(store).recover_power_loss()
    assert [t.local_id for t in recovered] == ["t1"]
    messages = [store.head()]
    assert messages[0] is not None and messages[0].action == "StartTransaction"
    rows = store._db.execute("SELECT action, payload FROM outbox ORDER BY seq").fetchall()
    assert [r[0] for r in rows] == ["StartTransaction", "StopTransaction"]
    assert '"reason": "PowerLoss"' in rows[1][1] and '"meter_stop": 321' in rows[1][1]
    assert '"timestamp": "2026-11-21T10:05:00.000Z"' in rows[1][1]
    # Recovering twice ends nothing twice.
    assert Outbox(store).recover_power_loss() == []


def test_an_interrupted_write_leaves_nothing_half_done(tmp_path: Path) -> None:
    store = Store(tmp_path)
    try:
        with store.atomic() as db:
            store.open_transaction(db, _tx())
            raise RuntimeError("killed between the two writes")
    except RuntimeError:
        pass
    assert store.transactions() == [] and store.outbox_size() == 0


async def test_messages_of_different_transactions_keep_the_order_they_happened_in(tmp_path: Path) -> None:
    outbox = Outbox(Store(tmp_path))
    # Two connectors: "zz" starts first, "aa" second; their messages interleave.
    for local_id in ("zz", "aa"):
        _start(outbox, local_id)
    outbox.meter_sample("zz", {"connector_id": 1, "meter_value": []}, 150, "2026-11-21T10:01:00.000Z")
    outbox.transaction_ended("aa", {"meter_stop": 120, "timestamp": "2026-11-21T10:02:00.000Z", "reason": "Local"})
    outbox.transaction_ended("zz", {"meter_stop": 200, "timestamp": "2026-11-21T10:03:00.000Z", "reason": "Local"})
    sent = []
    while len(outbox):
        message = await outbox.head()
        sent.append((message.action, message.tx_local_id))
        outbox.delivered(message, 1 if message.action == "StartTransaction" else None)
    assert sent == [("StartTransaction", "zz"), ("StartTransaction", "aa"), ("MeterValues", "zz"),
                    ("StopTransaction", "aa"), ("StopTransaction", "zz")]
