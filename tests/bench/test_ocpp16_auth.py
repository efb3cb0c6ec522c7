"""Local authorisation on the bench: cache, local list, offline rules, pre-authorisation, parentIdTag.

Test names follow the OCTT 1.6 charge-point test cases they mirror.
"""

from __future__ import annotations

from ocpp.v16 import call

from controller.app import App
from hil.csms import CsmsSimulator
from tests.bench.test_ocpp16_core import CP, TAG, calls, change, script
from tests.conftest import wait_until


async def go_offline(charger: App, csms: CsmsSimulator) -> None:
    assert charger.ocpp is not None
    # The outage starts once the station has its earlier messages confirmed: cutting the link between the
    # CSMS receiving a message and the station reading the reply makes the station (rightly) send it again.
    await wait_until(lambda: charger.ocpp is not None and len(charger.ocpp.queue) == 0, what="the outbox to drain")
    await csms.stop()
    await wait_until(lambda: not charger.ocpp.connected.is_set(), what="the station to notice the outage")


async def send_list(csms: CsmsSimulator, version: int, kind: str, entries: list[dict[str, object]]) -> str:
    result = await csms.call(CP, call.SendLocalList(list_version=version, update_type=kind,
                                                    local_authorization_list=entries))
    return str(result.status)


async def test_TC_007_1_CS_a_cached_id_starts_offline(charger: App, csms: CsmsSimulator) -> None:
    await script(charger, f"plug; tap {TAG}; expect Charging; wait 0.7; tap {TAG}; expect Finishing; unplug")
    await script(charger, "expect Available")
    await go_offline(charger, csms)
    await script(charger, f"plug; wait 0.7; tap {TAG}; expect Charging")
    await csms.start()
    await wait_until(lambda: len(calls(csms, "StartTransaction")) == 2, timeout=10, what="the offline start")


async def test_TC_061_1_CS_a_cleared_cache_no_longer_authorises_offline(charger: App, csms: CsmsSimulator) -> None:
    await script(charger, f"plug; tap {TAG}; expect Charging; wait 0.7; tap {TAG}; expect Finishing; unplug")
    assert (await csms.call(CP, call.ClearCache())).status == "Accepted"
    await go_offline(charger, csms)
    await script(charger, f"expect Available; plug; wait 0.7; tap {TAG}; wait 0.5; expect Preparing")


async def test_TC_008_1_CS_an_id_in_the_local_list_starts_offline(charger: App, csms: CsmsSimulator) -> None:
    assert await send_list(csms, 1, "Full", [{"idTag": "0A0B0C0D", "idTagInfo": {"status": "Accepted"}}]) == "Accepted"
    await go_offline(charger, csms)
    await script(charger, "plug; tap 0A0B0C0D; expect Charging")


async def test_blocked_and_expired_local_entries_refuse_offline(charger: App, csms: CsmsSimulator) -> None:
    await send_list(csms, 1, "Full", [
        {"idTag": "0A0B0C0D", "idTagInfo": {"status": "Blocked"}},
        {"idTag": "0A0B0C0E", "idTagInfo": {"status": "Accepted", "expiryDate": "2020-01-01T00:00:00Z"}},
    ])
    await go_offline(charger, csms)
    await script(charger, "plug; tap 0A0B0C0D; wait 0.7; tap 0A0B0C0E; wait 0.5; expect Preparing")


async def test_TC_042_043_CS_local_list_versions_and_failures(charger: App, csms: CsmsSimulator) -> None:
    assert (await csms.call(CP, call.GetLocalListVersion())).list_version == 0
    assert await send_list(csms, 5, "Full", [{"idTag": "AAAA0001", "idTagInfo": {"status": "Accepted"}}]) == "Accepted"
    assert (await csms.call(CP, call.GetLocalListVersion())).list_version == 5
    assert await send_list(csms, 4, "Differential", []) == "VersionMismatch"
    assert await send_list(csms, 6, "Differential", [{"idTag": "AAAA0001"}]) == "Accepted"  # removes it
    assert (await csms.call(CP, call.GetLocalListVersion())).list_version == 0  # empty again
    too_many = [{"idTag": f"B{i:07d}", "idTagInfo": {"status": "Accepted"}} for i in range(251)]
    assert await send_list(csms, 7, "Full", too_many) == "Failed"


async def test_local_pre_authorize_starts_without_waiting_for_the_csms(charger: App, csms: CsmsSimulator) -> None:
    await send_list(csms, 1, "Full", [{"idTag": TAG, "idTagInfo": {"status": "Accepted"}}])
    assert await change(csms, "LocalPreAuthorize", "true") == "Accepted"
    await script(charger, f"plug; tap {TAG}; expect Charging")
    assert "Authorize" not in csms.actions()


async def test_TC_037_3_CS_offline_unknown_id_then_invalid_at_the_csms(charger: App, csms: CsmsSimulator) -> None:
    assert await change(csms, "AllowOfflineTxForUnknownId", "true") == "Accepted"
    csms.invalid_at_start.add("0D0E0A0D")
    await go_offline(charger, csms)
    await script(charger, "plug; tap 0D0E0A0D; expect Charging")
    await csms.start()
    await script(charger, "expect Finishing within 10")  # StopTransactionOnInvalidId (default true)
    await wait_until(lambda: calls(csms, "StopTransaction"), what="StopTransaction")
    assert calls(csms, "StopTransaction")[0]["reason"] == "DeAuthorized"


async def test_an_unknown_id_is_refused_offline_by_default(charger: App, csms: CsmsSimulator) -> None:
    await go_offline(charger, csms)
    await script(charger, "plug; tap 0D0E0A0D; wait 0.5; expect Preparing")


async def test_TC_069_CS_a_card_with_the_same_parent_stops_the_session(charger: App, csms: CsmsSimulator) -> None:
    csms.parents.update({TAG: "FLEET-7", "0F0F0F0F": "FLEET-7"})
    await script(charger, f"plug; tap {TAG}; expect Charging; wait 0.7; tap 0F0F0F0F; expect Finishing")
    await wait_until(lambda: calls(csms, "StopTransaction"), what="StopTransaction")
    stop = calls(csms, "StopTransaction")[0]
    assert (stop["reason"], stop["idTag"]) == ("Local", "0F0F0F0F")


async def test_TC_068_CS_a_different_card_without_parent_does_not_stop(charger: App, csms: CsmsSimulator) -> None:
    await script(charger, f"plug; tap {TAG}; expect Charging; wait 0.7; tap 0F0F0F0F; wait 0.5; expect Charging")


async def test_TC_023_5_CS_authorize_remote_tx_requests(charger: App, csms: CsmsSimulator) -> None:
    assert await change(csms, "AuthorizeRemoteTxRequests", "true") == "Accepted"
    assert await csms.remote_start(CP, "DEADBEEF", 1) == "Accepted"  # the bench CSMS calls DEADBEEF invalid
    await wait_until(lambda: "Authorize" in csms.actions(), what="Authorize for the remote idTag")
    await script(charger, "wait 0.3; expect Available")
    assert await csms.remote_start(CP, "REMOTE01", 1) == "Accepted"
    await script(charger, "expect Preparing; plug; expect Charging")
    assert csms.actions().count("Authorize") == 2


async def test_remote_start_without_authorisation_by_default(charger: App, csms: CsmsSimulator) -> None:
    assert await csms.remote_start(CP, "DEADBEEF", 1) == "Accepted"
    await script(charger, "expect Preparing")
    assert "Authorize" not in csms.actions()
