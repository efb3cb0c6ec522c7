"""The 1.6 security whitepaper's profile 1: HTTP Basic with AuthorizationKey (TC_073, TC_085), never logged."""

from __future__ import annotations

import asyncio
import io
import logging
from pathlib import Path

from ocpp.v16 import call

from controller.app import App
from controller.ocpp.rpc import SecretFilter
from hil.csms import CsmsSimulator
from tests.bench.test_ocpp16_core import CP
from tests.conftest import sim_config, wait_until

PASSWORD = "bench-password-0001"


async def test_TC_073_085_CS_authorization_key_changed_by_the_csms_and_never_logged(tmp_path: Path,
                                                                                  csms: CsmsSimulator) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(SecretFilter())  # as `evse run` installs it on its handlers
    root = logging.getLogger()
    levels = {name: logging.getLogger(name).level for name in ("", "ocpp", "websockets", "controller.ocpp.frames")}
    root.addHandler(handler)
    for name in levels:
        logging.getLogger(name).setLevel(logging.DEBUG)
    csms.passwords[CP] = PASSWORD
    app = App(sim_config(basic_auth_password=PASSWORD), state_dir=tmp_path, csms_url=csms.url)
    try:
        await app.start()
        assert app.ocpp is not None
        await asyncio.wait_for(app.ocpp.connected.wait(), 10)
        assert csms.refused == []  # TC_085: the right password gets in
        new = "a-new-authorization-key-02"
        csms.passwords[CP] = new
        short = await csms.call(CP, call.ChangeConfiguration(key="AuthorizationKey", value="short"))
        assert short.status == "Rejected"  # fewer than 16 characters
        changed = await csms.call(CP, call.ChangeConfiguration(key="AuthorizationKey", value=new))
        assert changed.status == "Accepted"
        await wait_until(lambda: app.ocpp is not None and app.ocpp.link.connections == 2, 10, "the reconnect")
        assert csms.refused == []
        await wait_until(lambda: "ReconfigurationOfSecurityParameters" in csms.security_events, 5,
                         "the security event")
        got = await csms.call(CP, call.GetConfiguration(key=["AuthorizationKey"]))
        assert got.configuration_key == [{"key": "AuthorizationKey", "readonly": False}]  # write-only
    finally:
        await app.stop()
        root.removeHandler(handler)
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)
    text = stream.getvalue()
    assert "AuthorizationKey" in text and new not in text and PASSWORD not in text
