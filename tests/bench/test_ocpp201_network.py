"""Network connection profiles on 2.0.1: SetNetworkProfile (B09), migrating to another CSMS with a fallback (B10),
and upgrading the security profile without a way back (A05) - with a second bench CSMS, and one behind TLS."""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from ocpp.v201 import call

from controller.app import App
from controller.ocpp import device_model as dm
from hil.csms import CsmsSimulator
from tests.bench.test_ocpp201_core import CP
from tests.bench.test_ocpp201_security import PASSWORD, _pem_pair
from tests.conftest import sim_config, wait_until


def profile(url: str, security: int = 1, version: str = "OCPP20", **extra: Any) -> dict[str, Any]:
    return {"ocpp_version": version, "ocpp_transport": "JSON", "ocpp_csms_url": url, "message_timeout": 30,
            "security_profile": security, "ocpp_interface": "Wired0", **extra}


async def set_profile(csms: CsmsSimulator, slot: int, data: dict[str, Any]) -> str:
    return str((await csms.call(CP, call.SetNetworkProfile(configuration_slot=slot, connection_data=data))).status)


async def set_priority(csms: CsmsSimulator, slots: str) -> str:
    result = await csms.call(CP, call.SetVariables(set_variable_data=[{
        "component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "NetworkConfigurationPriority"},
        "attribute_value": slots}]))
    return str(result.set_variable_result[0]["attribute_status"])


@asynccontextmanager
async def station(state: Path, csms_url: str, **ocpp: Any) -> AsyncIterator[App]:
    app = App(sim_config(version="2.0.1", basic_auth_password=PASSWORD, **ocpp), state_dir=state, csms_url=csms_url)
    await app.start()
    try:
        yield app
    finally:
        await app.stop()


async def reset(app: App, csms: CsmsSimulator) -> None:
    assert (await csms.call(CP, call.Reset(type="Immediate"))).status == "Accepted"
    await wait_until(lambda: app.restart == "hard", what="the restart")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_TC_B_43_CS_a_profile_this_station_cannot_use_is_rejected(tmp_path: Path, csms: CsmsSimulator) -> None:
    csms.passwords[CP] = PASSWORD
    async with station(tmp_path, csms.url) as app:
        assert app.ocpp is not None
        await asyncio.wait_for(app.ocpp.connected.wait(), 10)
        other = "ws://127.0.0.1:9/"
        answers = [await set_profile(csms, 1, profile(other)),  # the configured CSMS's, in use
                   await set_profile(csms, 2, profile(other, version="OCPP16")),
                   await set_profile(csms, 2, profile(other, security=3)),  # needs a client certificate
                   await set_profile(csms, 2, profile(other, security=0)),  # lower than in use (1)
                   await set_profile(csms, 2, profile("http://127.0.0.1:9/")),
                   await set_profile(csms, 2, profile(other, security=2)),  # profile 2 is TLS: wss://
                   await set_profile(csms, 9, profile(other))]
        assert answers == ["Rejected"] * 7
        assert await set_priority(csms, "2,1") == "Rejected"  # slot 2 holds nothing
        assert await set_profile(csms, 2, profile(other)) == "Accepted"
        assert await set_priority(csms, "2,1") == "RebootRequired"


async def test_TC_B_45_CS_migrate_to_another_csms_after_a_reset(tmp_path: Path, csms: CsmsSimulator) -> None:
    csms.passwords[CP] = PASSWORD
    new = CsmsSimulator()
    new.passwords[CP] = PASSWORD
    await new.start()
    try:
        async with station(tmp_path, csms.url) as app:
            assert app.ocpp is not None
            await asyncio.wait_for(app.ocpp.connected.wait(), 10)
            assert await set_profile(csms, 2, profile(new.url)) == "Accepted"
            assert await set_priority(csms, "2,1") == "RebootRequired"
            assert CP not in new.connections  # nothing changes before the reset
            await reset(app, csms)
        async with station(tmp_path, csms.url) as again:
            assert again.ocpp is not None
            await asyncio.wait_for(again.ocpp.connected.wait(), 10)
            assert new.boot_reasons == ["RemoteReset"] and again.ocpp.network.active.slot == 2
    finally:
        await new.stop()


async def test_TC_B_46_CS_a_profile_that_does_not_connect_falls_back_to_the_next(tmp_path: Path,
                                                                                csms: CsmsSimulator) -> None:
    csms.passwords[CP] = PASSWORD
    async with station(tmp_path, csms.url) as app:
        assert app.ocpp is not None
        await asyncio.wait_for(app.ocpp.connected.wait(), 10)
        attempts = {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "NetworkProfileConnectionAttempts"}}
        result = await csms.call(CP, call.SetVariables(set_variable_data=[{**attempts, "attribute_value": "2"}]))
        assert result.set_variable_result[0]["attribute_status"] == "Accepted"
        assert await set_profile(csms, 2, profile(f"ws://127.0.0.1:{free_port()}/")) == "Accepted"  # nobody there
        assert await set_priority(csms, "2,1") == "RebootRequired"
        await reset(app, csms)
    boots = len(csms.boot_reasons)
    async with station(tmp_path, csms.url) as again:
        assert again.ocpp is not None
        await asyncio.wait_for(again.ocpp.connected.wait(), 15)  # two failures on slot 2, then slot 1
        assert again.ocpp.network.active.slot == 1 and len(csms.boot_reasons) == boots + 1


async def test_TC_A_19_22_CS_an_upgrade_to_tls_has_no_way_back(tmp_path: Path, csms: CsmsSimulator) -> None:
    ca, cert, key = _pem_pair(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    secure = CsmsSimulator(ssl_context=context)
    secure.passwords[CP] = csms.passwords[CP] = PASSWORD
    await secure.start()
    try:
        async with station(tmp_path / "state", csms.url, ca_file=str(ca)) as app:
            assert app.ocpp is not None
            await asyncio.wait_for(app.ocpp.connected.wait(), 10)
            assert app.ocpp.model.get(dm.SECURITY_PROFILE) == "1"
            assert await set_profile(csms, 2, profile(secure.url, security=2)) == "Accepted"
            assert await set_priority(csms, "2") == "RebootRequired"
            await reset(app, csms)
        async with station(tmp_path / "state", csms.url, ca_file=str(ca)) as again:
            assert again.ocpp is not None
            await asyncio.wait_for(again.ocpp.connected.wait(), 10)
            assert CP in secure.connections and again.ocpp.model.get(dm.SECURITY_PROFILE) == "2"
            down = await secure.call(CP, call.SetNetworkProfile(configuration_slot=3, connection_data=profile(
                csms.url, security=1)))
            assert down.status == "Rejected"  # A_22: no downgrade
            # Even listed again, the unsecured profile is not used: the station has connected over TLS.
            assert await secure.call(CP, call.SetVariables(set_variable_data=[{
                "component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "NetworkConfigurationPriority"},
                "attribute_value": "1,2"}])) is not None
            assert [p.slot for p in again.ocpp.network.order()] == [2]
    finally:
        await secure.stop()
