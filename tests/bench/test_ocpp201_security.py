"""Security profiles 1 and 2 on OCPP 2.0.1: HTTP Basic with BasicAuthPassword, TLS to a CSMS with a configured CA."""

from __future__ import annotations

import asyncio
import base64
import datetime
import io
import ipaddress
import logging
import ssl
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from ocpp.v201 import call

from controller.app import App
from controller.ocpp import device_model as dm
from controller.ocpp.rpc import SecretFilter
from hil.csms import CsmsSimulator
from tests.bench.test_ocpp201_core import CP
from tests.conftest import sim_config, wait_until

PASSWORD = "bench-password-0001"


def _pem_pair(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A CA, and a certificate for 127.0.0.1 it signed: (ca.pem, server.pem, server.key)."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bench CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(1).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True).sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(2).not_valid_before(now)
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False).sign(ca_key, hashes.SHA256()))
    paths = tmp_path / "ca.pem", tmp_path / "server.pem", tmp_path / "server.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return paths


async def test_TC_A_01_09_10_CS_profile_1_basic_auth_and_a_password_the_csms_changes(tmp_path: Path,
                                                                        csms: CsmsSimulator) -> None:
    csms.passwords[CP] = PASSWORD
    app = App(sim_config(version="2.0.1", basic_auth_password=PASSWORD), state_dir=tmp_path, csms_url=csms.url)
    await app.start()
    try:
        assert app.ocpp is not None
        await asyncio.wait_for(app.ocpp.connected.wait(), 10)
        assert csms.refused == [] and app.ocpp.model.get(dm.SECURITY_PROFILE) == "1"
        secret = {"component": {"name": "SecurityCtrlr"}, "variable": {"name": "BasicAuthPassword"}}
        got = await csms.call(CP, call.GetVariables(get_variable_data=[secret]))
        assert got.get_variable_result[0]["attribute_status"] == "Rejected"  # write-only: never read back
        new = "a-new-password-0002"
        csms.passwords[CP] = new
        boots = len(csms.boots)
        changed = await csms.call(CP, call.SetVariables(set_variable_data=[{**secret, "attribute_value": new}]))
        assert changed.set_variable_result[0]["attribute_status"] == "Accepted"
        await wait_until(lambda: app.ocpp is not None and app.ocpp.link.connections == 2, 10, "the reconnect")
        assert len(csms.boots) == boots and csms.refused == []  # the new password, at once; no new boot
        await wait_until(lambda: len(csms.security_events) == 2, 5, "the security event")
        assert csms.security_events == ["StartupOfTheDevice", "ReconfigurationOfSecurityParameters"]
        short = await csms.call(CP, call.SetVariables(set_variable_data=[{**secret, "attribute_value": "short"}]))
        assert short.set_variable_result[0]["attribute_status"] == "Rejected"
    finally:
        await app.stop()


async def test_TC_A_profile_1_a_wrong_password_is_refused_and_logged_without_it(
        tmp_path: Path, csms: CsmsSimulator, caplog: pytest.LogCaptureFixture) -> None:
    csms.passwords[CP] = PASSWORD
    wrong = "not-the-password-000"
    app = App(sim_config(version="2.0.1", basic_auth_password=wrong), state_dir=tmp_path, csms_url=csms.url)
    await app.start()
    try:
        await wait_until(lambda: csms.refused, 5, "a refused handshake")
        assert csms.refused[0] == (CP, wrong) and app.ocpp is not None and not app.ocpp.connected.is_set()
        assert "401" in caplog.text and wrong not in caplog.text
        csms.passwords[CP] = wrong  # the CSMS is told the station's password: the next attempt gets in
        await wait_until(lambda: len(csms.security_events) == 2, 10, "the kept security events")
        assert csms.security_events == ["FailedToAuthenticateAtCsms", "StartupOfTheDevice"]  # kept, in order
    finally:
        await app.stop()


async def test_TC_A_04_05_CS_profile_2_tls_with_the_configured_ca_and_refused_with_another(tmp_path: Path) -> None:
    ca, cert, key = _pem_pair(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    csms = CsmsSimulator(ssl_context=context)
    await csms.start()
    try:
        assert csms.url.startswith("wss://")
        csms.passwords[CP] = PASSWORD
        config = sim_config(version="2.0.1", basic_auth_password=PASSWORD, ca_file=str(ca), csms_url=csms.url)
        app = App(config, state_dir=tmp_path / "a")
        await app.start()
        try:
            assert app.ocpp is not None
            await asyncio.wait_for(app.ocpp.connected.wait(), 10)
            assert app.ocpp.model.get(dm.SECURITY_PROFILE) == "2"
        finally:
            await app.stop()
        (tmp_path / "other").mkdir()
        other, _, _ = _pem_pair(tmp_path / "other")  # a CA that signed nothing the CSMS shows
        app = App(sim_config(version="2.0.1", basic_auth_password=PASSWORD, ca_file=str(other),
                             csms_url=csms.url), state_dir=tmp_path / "b")
        await app.start()
        try:
            await asyncio.sleep(1.0)
            assert app.ocpp is not None and not app.ocpp.connected.is_set()  # not the CSMS it was told to trust
            kept = app.ocpp.store.get_setting("security.events") or ""
            assert "InvalidCsmsCertificate" in kept and kept.count("InvalidCsmsCertificate") == 1  # once
        finally:
            await app.stop()
    finally:
        await csms.stop()


#: A fatal TLS alert protocol_version (70): what a server that speaks only TLS 1.0/1.1 says to a station that
#: offers TLS 1.2 and higher only (OpenSSL on this machine will not even serve TLS 1.1 to test against).
PROTOCOL_VERSION_ALERT = bytes([0x15, 0x03, 0x01, 0x00, 0x02, 0x02, 0x46])


async def test_TC_A_06_CS_a_csms_offering_tls_older_than_1_2_is_refused_and_told(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    async def old_tls(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(4096)  # the station's ClientHello
        writer.write(PROTOCOL_VERSION_ALERT)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(old_tls, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    ca, _, _ = _pem_pair(tmp_path)
    app = App(sim_config(version="2.0.1", basic_auth_password=PASSWORD, ca_file=str(ca),
                         csms_url=f"wss://127.0.0.1:{port}"), state_dir=tmp_path / "state")
    try:
        await app.start()
        assert app.ocpp is not None
        await wait_until(lambda: "offers only TLS older than 1.2" in caplog.text, 5, "the refusal")
        await asyncio.sleep(0.6)  # a few retries
        assert not app.ocpp.connected.is_set()
        kept = [e["type"] for e in app.ocpp.security_events.pending()]
        assert kept.count("InvalidTLSVersion") == 1  # kept for the CSMS, once however often it retries
    finally:
        await app.stop()
        server.close()
        await server.wait_closed()


async def test_a_password_never_reaches_a_log_even_at_debug(tmp_path: Path, csms: CsmsSimulator) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(SecretFilter())  # as `evse run` installs it on its handlers
    root = logging.getLogger()
    levels = {name: logging.getLogger(name).level for name in ("", "ocpp", "websockets", "controller.ocpp.frames")}
    root.addHandler(handler)
    for name in levels:
        logging.getLogger(name).setLevel(logging.DEBUG)
    csms.passwords[CP] = PASSWORD
    app = App(sim_config(version="2.0.1", basic_auth_password=PASSWORD), state_dir=tmp_path, csms_url=csms.url)
    try:
        await app.start()
        assert app.ocpp is not None
        await asyncio.wait_for(app.ocpp.connected.wait(), 10)
        secret = {"component": {"name": "SecurityCtrlr"}, "variable": {"name": "BasicAuthPassword"}}
        new = "another-password-03"
        csms.passwords[CP] = new
        await csms.call(CP, call.SetVariables(set_variable_data=[{**secret, "attribute_value": "x" * 41}]))
        await csms.call(CP, call.SetVariables(set_variable_data=[{**secret, "attribute_value": new}]))
        await wait_until(lambda: app.ocpp is not None and app.ocpp.link.connections == 2, 10, "the reconnect")
    finally:
        await app.stop()
        root.removeHandler(handler)
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)
    text = stream.getvalue()
    assert "SetVariables" in text and "BasicAuthPassword" in text  # the frames were logged ...
    assert PASSWORD not in text and new not in text and "x" * 41 not in text  # ... without the passwords
    assert base64.b64encode(f"{CP}:{PASSWORD}".encode()).decode() not in text


async def test_a_clock_set_by_the_csms_is_a_security_event(tmp_path: Path, csms: CsmsSimulator) -> None:
    csms.clock_offset = 120.0  # the CSMS is two minutes ahead: the station follows, and says so
    app = App(sim_config(version="2.0.1"), state_dir=tmp_path, csms_url=csms.url)
    await app.start()
    try:
        await wait_until(lambda: "SettingSystemTime" in csms.security_events, 5, "SettingSystemTime")
        assert app.ocpp is not None
        skew = (app.ocpp.clock.utcnow() - datetime.datetime.now(datetime.UTC)).total_seconds()
        assert 110 < skew < 130
    finally:
        await app.stop()
