"""OCTT 2.0.1 C (authorisation: statuses, the cache, GroupId, the master pass, offline rules) and D (the local list)
cases on the bench."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from ocpp.v201 import call

from controller.app import App
from controller.domain.types import Answer
from controller.ocpp import device_model as dm
from hil.csms import CsmsSimulator
from tests.bench.test_ocpp16_auth import go_offline
from tests.bench.test_ocpp16_core import TAG, script
from tests.bench.test_ocpp201_core import CP, calls, events
from tests.bench.test_ocpp201_txpoints import set_variables
from tests.conftest import sim_config, wait_until

OTHER = "0F0F0F0F"


def entry(tag: str, status: str = "Accepted", **info: Any) -> dict[str, Any]:
    return {"id_token": {"id_token": tag, "type": "ISO14443"}, "id_token_info": {"status": status, **info}}


async def send_list(csms: CsmsSimulator, version: int, kind: str, entries: list[dict[str, Any]] | None) -> str:
    request = call.SendLocalList(version_number=version, update_type=kind, local_authorization_list=entries)
    return str((await csms.call(CP, request)).status)


async def list_version(csms: CsmsSimulator) -> int:
    return int((await csms.call(CP, call.GetLocalListVersion())).version_number)


@pytest.mark.parametrize("status", ["Invalid", "Blocked", "Expired", "Unknown"])
async def test_TC_C_02_06_07_56_CS_a_card_the_csms_refuses_starts_nothing(station201: App, csms: CsmsSimulator,
                                                                         status: str) -> None:
    csms.tag_statuses[TAG] = status
    await script(station201, f"plug; tap {TAG}; wait 0.7; expect Preparing")
    await wait_until(lambda: calls(csms, "Authorize"), what="the Authorize")
    assert events(csms) == []


async def test_TC_C_39_CS_a_card_of_the_same_group_stops_the_transaction(station201: App,
                                                                       csms: CsmsSimulator) -> None:
    csms.parents.update({TAG: "FLEET-7", OTHER: "FLEET-7"})
    await script(station201, f"plug; tap {TAG}; expect Charging; wait 1.0; tap {OTHER}; expect Finishing")
    await wait_until(lambda: events(csms)[-1]["eventType"] == "Ended", what="Ended")
    ended = events(csms)[-1]
    assert ended["idToken"]["idToken"] == OTHER and ended["transactionInfo"]["stoppedReason"] == "Local"


async def test_TC_C_04_42_CS_another_card_without_the_group_does_not_stop_it(station201: App,
                                                                           csms: CsmsSimulator) -> None:
    csms.parents.update({TAG: "FLEET-7", OTHER: "FLEET-8"})
    await script(station201, f"plug; tap {TAG}; expect Charging; wait 1.0; tap {OTHER}; wait 0.7; expect Charging")


async def test_TC_C_45_49_CS_a_master_pass_stops_every_transaction_and_starts_none(station201: App,
                                                                                  csms: CsmsSimulator) -> None:
    assert await set_variables(csms, "AuthCtrlr", MasterPassGroupId="MASTERS") == ["Accepted"]
    csms.parents[OTHER] = "MASTERS"
    await script(station201, f"plug; tap {OTHER}; wait 0.7; expect Preparing")  # C_45: it cannot start one
    assert events(csms) == []
    await script(station201, f"tap {TAG}; expect Charging; wait 1.0; tap {OTHER}; expect Finishing")
    await wait_until(lambda: events(csms)[-1]["eventType"] == "Ended", what="Ended")
    ended = events(csms)[-1]
    assert ended["transactionInfo"]["stoppedReason"] == "MasterPass" and ended["idToken"]["idToken"] == OTHER


async def test_TC_C_08_32_CS_an_accepted_card_is_cached_and_starts_offline_after_a_restart(
        tmp_path: Path, csms: CsmsSimulator) -> None:
    for round_ in (1, 2):
        app = App(sim_config(version="2.0.1"), state_dir=tmp_path, csms_url=csms.url)
        await app.start()
        try:
            assert app.ocpp is not None
            await asyncio.wait_for(app.ocpp.connected.wait(), 10)
            if round_ == 1:
                await script(app, f"plug; tap {TAG}; expect Charging; wait 1.0; tap {TAG}; expect Finishing; unplug")
                continue
            await go_offline(app, csms)
            await script(app, f"expect Available; plug; tap {TAG}; expect Charging")  # from the kept cache
        finally:
            await app.stop()


async def test_TC_C_26_CS_an_unknown_card_is_refused_offline_unless_allowed(station201: App,
                                                                          csms: CsmsSimulator) -> None:
    await go_offline(station201, csms)
    await script(station201, "plug; tap 0D0E0A0D; wait 0.7; expect Preparing")
    assert station201.ocpp is not None
    assert station201.ocpp.model.set(dm.OFFLINE_TX_FOR_UNKNOWN_ID, "true") == Answer.ACCEPTED  # offline: set here
    await script(station201, "wait 0.5; tap 0D0E0A0D; expect Charging")


async def test_TC_C_21_22_23_24_CS_offline_the_local_list_decides(station201: App, csms: CsmsSimulator) -> None:
    entries = [entry("0A0B0C01"), entry("0A0B0C02", "Invalid"), entry("0A0B0C03", "Blocked"),
               entry("0A0B0C04", "Accepted", cache_expiry_date_time="2020-01-01T00:00:00Z")]
    assert await send_list(csms, 1, "Full", entries) == "Accepted"
    await go_offline(station201, csms)
    await script(station201, "plug; tap 0A0B0C02; wait 0.7; tap 0A0B0C03; wait 0.7; tap 0A0B0C04; wait 0.7; "
                             "expect Preparing; tap 0A0B0C01; expect Charging")


async def test_TC_C_27_CS_online_with_local_pre_authorize_the_list_starts_at_once(station201: App,
                                                                                csms: CsmsSimulator) -> None:
    assert await send_list(csms, 1, "Full", [entry(TAG)]) == "Accepted"
    assert await set_variables(csms, "AuthCtrlr", LocalPreAuthorize="true") == ["Accepted"]
    await script(station201, f"plug; tap {TAG}; expect Charging")
    assert calls(csms, "Authorize") == []  # the list said yes; nobody was asked


async def test_TC_D_02_03_05_06_08_CS_differential_updates_and_versions(station201: App,
                                                                       csms: CsmsSimulator) -> None:
    assert await list_version(csms) == 0
    assert await send_list(csms, 1, "Full", [entry("AAAA0001"), entry("AAAA0002")]) == "Accepted"
    assert await send_list(csms, 2, "Differential", [entry("AAAA0003")]) == "Accepted"  # D_02: added
    assert await send_list(csms, 3, "Differential", [{"id_token": {"id_token": "AAAA0001", "type": "ISO14443"}}]) \
        == "Accepted"  # D_03: an entry without idTokenInfo is removed
    assert await send_list(csms, 4, "Differential", None) == "Accepted"  # D_05: only the version moves
    assert await list_version(csms) == 4  # D_08
    assert await send_list(csms, 4, "Differential", [entry("AAAA0004")]) == "VersionMismatch"  # D_06
    assert station201.ocpp is not None and station201.ocpp.store.local_list_size() == 2


async def test_TC_D_04_07_CS_a_full_empty_list_clears_it_and_a_list_survives_a_restart(
        tmp_path: Path, csms: CsmsSimulator) -> None:
    app = App(sim_config(version="2.0.1"), state_dir=tmp_path, csms_url=csms.url)
    await app.start()
    try:
        assert app.ocpp is not None
        await asyncio.wait_for(app.ocpp.connected.wait(), 10)
        assert await send_list(csms, 3, "Full", [entry("AAAA0001")]) == "Accepted"
    finally:
        await app.stop()
    again = App(sim_config(version="2.0.1"), state_dir=tmp_path, csms_url=csms.url)
    await again.start()
    try:
        assert again.ocpp is not None
        await asyncio.wait_for(again.ocpp.connected.wait(), 10)
        assert await list_version(csms) == 3 and again.ocpp.store.local_list_size() == 1  # D_07
        assert await send_list(csms, 4, "Full", None) == "Accepted"  # D_04
        assert again.ocpp.store.local_list_size() == 0 and await list_version(csms) == 4  # 2.0.1 keeps the version
    finally:
        await again.stop()


async def test_TC_D_10_CS_with_the_list_disabled_it_is_version_0_and_cannot_be_sent(station201: App,
                                                                                  csms: CsmsSimulator) -> None:
    assert await send_list(csms, 2, "Full", [entry("AAAA0001")]) == "Accepted"
    assert await set_variables(csms, "LocalAuthListCtrlr", Enabled="false") == ["Accepted"]
    assert await list_version(csms) == 0
    assert await send_list(csms, 3, "Full", [entry("AAAA0002")]) == "Failed"
