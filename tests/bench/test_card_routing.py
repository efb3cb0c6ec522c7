"""The shared reader on a two-socket station: a card tapped before the cable, and the socket its vehicle is at.

With no vehicle waiting, a tap goes to the first free connector. A tap as the vehicle arrives at the other one
(before its plug-in is confirmed, or while the CSMS decides) follows it there; one made well before moves with a
second tap, since a car plugged in meanwhile may be a stranger's.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from ocpp.v16 import call
from ocpp.v201 import call as call201

from controller.app import App
from hil.benchconfig import socket_config
from hil.csms import CsmsSimulator
from tests.bench.test_ocpp16_core import CP, TAG, calls, script
from tests.bench.test_ocpp201_core import events
from tests.bench.test_ocpp201_txpoints import set_variables
from tests.bench.test_safety import TAG2
from tests.conftest import wait_until


def statuses(csms: CsmsSimulator, connector: int) -> list[str]:
    return [s["status"] for s in calls(csms, "StatusNotification") if s["connectorId"] == connector]


@pytest.fixture
async def two(tmp_path: Path, csms: CsmsSimulator) -> AsyncIterator[App]:
    app = App(socket_config(2), state_dir=tmp_path, csms_url=csms.url)
    await app.start()
    try:
        yield app
    finally:
        await app.stop()


async def test_a_tap_as_the_vehicle_arrives_at_the_other_socket_charges_it(two: App, csms: CsmsSimulator) -> None:
    # The tap is read before the pilot has confirmed the plug-in, so it first goes to the free connector 1.
    await script(two, f"tap {TAG}; expect Preparing 1; wait 0.3; plug 2; expect Charging 2; expect Available 1")
    assert [(s["connectorId"], s["idTag"]) for s in calls(csms, "StartTransaction")] == [(2, TAG)]
    assert not calls(csms, "StopTransaction")
    await wait_until(lambda: statuses(csms, 1)[-2:] == ["Preparing", "Available"], what="connector 1 free again")
    assert [a["idTag"] for a in calls(csms, "Authorize")] == [TAG]  # asked once: the decision moved with it


async def test_a_tap_just_after_plugging_in_charges_that_socket(two: App, csms: CsmsSimulator) -> None:
    await script(two, f"plug 2; tap {TAG}; expect Charging 2; expect Available 1")
    assert [s["connectorId"] for s in calls(csms, "StartTransaction")] == [2]


async def test_a_card_tapped_well_before_the_cable_stays_until_tapped_again(two: App, csms: CsmsSimulator) -> None:
    await script(two, f"tap {TAG}; expect Preparing 1; wait 2.5; plug 2; expect Preparing 2; wait 0.5")
    assert two.status(1) == "Preparing" and not calls(csms, "StartTransaction")  # it might be a stranger's car
    await script(two, f"tap {TAG}; expect Available 1; wait 0.7; tap {TAG}; expect Charging 2")  # cancelled; again
    assert [(s["connectorId"], s["idTag"]) for s in calls(csms, "StartTransaction")] == [(2, TAG)]


async def test_a_stranger_plugging_in_after_a_tap_does_not_charge_on_that_card(two: App,
                                                                               csms: CsmsSimulator) -> None:
    await script(two, f"tap {TAG}; expect Preparing 1; wait 2.5; plug 2; wait 0.3; tap {TAG2}; expect Charging 2; "
                      "plug 1; expect Charging 1")
    assert [(s["connectorId"], s["idTag"]) for s in calls(csms, "StartTransaction")] == [(2, TAG2), (1, TAG)]


async def test_a_vehicle_plugged_in_while_the_csms_decides_gets_the_card(two: App, csms: CsmsSimulator) -> None:
    csms.slow_answers["Authorize"] = 1.0  # the plug-in is confirmed while the Authorize is out
    await script(two, f"tap {TAG}; wait 0.1; plug 2; expect Charging 2 within 4; expect Available 1")
    assert [s["connectorId"] for s in calls(csms, "StartTransaction")] == [2]
    assert "Preparing" not in statuses(csms, 1)  # connector 1 never took it


async def test_a_vehicle_plugged_in_long_after_the_tap_does_not_get_a_slow_answer(two: App,
                                                                                   csms: CsmsSimulator) -> None:
    csms.slow_answers["Authorize"] = 3.5  # a stranger plugs in at 2.5 s, before the answer
    await script(two, f"tap {TAG}; wait 2.5; plug 2; expect Preparing 2; expect Preparing 1 within 3; wait 0.3")
    assert two.status(2) == "Preparing" and not calls(csms, "StartTransaction")
    assert two.station.evses[1].session is not None and two.station.evses[2].session is None


async def test_a_remote_start_for_a_named_connector_stays_there(two: App, csms: CsmsSimulator) -> None:
    answer = await csms.call(CP, call.RemoteStartTransaction(id_tag=TAG, connector_id=1))
    assert answer.status == "Accepted"
    await script(two, "expect Preparing 1; plug 2; expect Preparing 2; wait 0.5")
    assert two.status(1) == "Preparing" and two.status(2) == "Preparing"
    assert not calls(csms, "StartTransaction")
    await script(two, "plug 1; expect Charging 1")


async def test_201_a_transaction_opened_at_the_tap_ends_and_the_moved_session_opens_the_next(
        tmp_path: Path, csms: CsmsSimulator) -> None:
    app = App(socket_config(2, ocpp={"version": "2.0.1"}), state_dir=tmp_path, csms_url=csms.url)
    await app.start()
    try:
        await wait_until(lambda: csms.boots, what="the boot")
        assert await set_variables(csms, "TxCtrlr", TxStartPoint="Authorized") == ["Accepted"]
        await script(app, f"tap {TAG}; expect Preparing 1; wait 0.2; plug 2; expect Charging 2; expect Available 1")
        await wait_until(lambda: len({e["transactionInfo"]["transactionId"] for e in events(csms)}) == 2,
                         what="a second transaction")
        sent = events(csms)
        first, second = (e["transactionInfo"]["transactionId"] for e in (sent[0], sent[-1]))
        opened = [e for e in sent if e["transactionInfo"]["transactionId"] == first]
        assert [e["eventType"] for e in opened] == ["Started", "Ended"] and opened[0]["evse"]["id"] == 1
        assert opened[-1]["transactionInfo"]["stoppedReason"] == "Other"
        moved = [e for e in sent if e["transactionInfo"]["transactionId"] == second]
        assert (moved[0]["eventType"], moved[0]["evse"]["id"], moved[0]["idToken"]["idToken"]) == ("Started", 2, TAG)
        answer = await csms.call(CP, call201.RequestStopTransaction(transaction_id=second))
        assert answer.status == "Accepted"
        await wait_until(lambda: any(e["eventType"] == "Ended" and e["transactionInfo"]["transactionId"] == second
                                     for e in events(csms)), 5, what="the moved transaction's end")
    finally:
        await app.stop()

