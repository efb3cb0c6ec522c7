"""Certificate management and security profile 3, on both versions (OCTT 1.6 TC_074-077, 083, 084, 087;
2.0.1 M_01, 02, 07, 12, 13, 17-20, 22 and A_07, 11, 14)."""

from __future__ import annotations

import asyncio
import hashlib
import ssl
import stat
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from ocpp.v16 import call as call16
from ocpp.v201 import call as call201

from controller.app import App
from controller.ocpp import device_model as dm
from hil.csms import CsmsSimulator
from hil.pki import BenchCa
from tests.conftest import sim_config, wait_until

CP = "TEST-CP"
PASSWORD = "bench-password-0001"
ROOT = {"1.6": "CentralSystemRootCertificate", "2.0.1": "CSMSRootCertificate"}


def expected_hash(pem: str) -> dict[str, str]:
    """A root's hash data computed here with hashlib, not with the station's code (OCSP CertID, SHA-256)."""
    cert = x509.load_pem_x509_certificate(pem.encode())
    key = cert.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    return {"hash_algorithm": "SHA256", "issuer_name_hash": hashlib.sha256(cert.subject.public_bytes()).hexdigest(),
            "issuer_key_hash": hashlib.sha256(key).hexdigest(), "serial_number": f"{cert.serial_number:x}"}


@pytest.fixture
async def station(request: pytest.FixtureRequest, tmp_path: Path, csms: CsmsSimulator) -> AsyncIterator[App]:
    app = App(sim_config(version=request.param), state_dir=tmp_path, csms_url=csms.url)
    await app.start()
    assert app.ocpp is not None
    await asyncio.wait_for(app.ocpp.connected.wait(), 10)
    yield app
    await app.stop()


def both() -> Any:
    return pytest.mark.parametrize("station", ["1.6", "2.0.1"], indirect=True)


def version(app: App) -> str:
    return app.config.ocpp.version


def sign_trigger(app: App) -> Any:
    """The trigger that makes the station send a CSR: 1.6 ExtendedTriggerMessage, 2.0.1 TriggerMessage."""
    if version(app) == "1.6":
        return call16.ExtendedTriggerMessage(requested_message="SignChargePointCertificate")
    return call201.TriggerMessage(requested_message="SignChargingStationCertificate")


async def install(csms: CsmsSimulator, app: App, pem: str, kind: str | None = None) -> str:
    calls = call16 if version(app) == "1.6" else call201
    result = await csms.call(CP, calls.InstallCertificate(certificate_type=kind or ROOT[version(app)],
                                                          certificate=pem))
    return str(result.status)


async def installed(csms: CsmsSimulator, app: App) -> tuple[str, list[dict[str, Any]]]:
    if version(app) == "1.6":
        result = await csms.call(CP, call16.GetInstalledCertificateIds(certificate_type=ROOT["1.6"]))
        return str(result.status), result.certificate_hash_data or []
    result = await csms.call(CP, call201.GetInstalledCertificateIds(certificate_type=[ROOT["2.0.1"]]))
    return str(result.status), [c["certificate_hash_data"] for c in result.certificate_hash_data_chain or []]


async def delete(csms: CsmsSimulator, app: App, data: dict[str, str]) -> str:
    calls = call16 if version(app) == "1.6" else call201
    wire = {"hashAlgorithm": data["hash_algorithm"], "issuerNameHash": data["issuer_name_hash"],
            "issuerKeyHash": data["issuer_key_hash"], "serialNumber": data["serial_number"]}
    return str((await csms.call(CP, calls.DeleteCertificate(certificate_hash_data=wire))).status)


@both()
async def test_TC_075_076_M_01_02_12_13_17_18_19_20_22_CS_install_list_and_delete_roots(
        station: App, csms: CsmsSimulator, tmp_path: Path) -> None:
    ca = BenchCa(tmp_path / "pki")
    assert await installed(csms, station) == ("NotFound", [])
    assert await install(csms, station, ca.pem) == "Accepted"
    maker = BenchCa(tmp_path / "maker", name="manufacturer CA")
    assert await install(csms, station, maker.pem, "ManufacturerRootCertificate") == "Accepted"
    status, found = await installed(csms, station)
    assert status == "Accepted" and found == [expected_hash(ca.pem)]  # the CSMS roots only
    if version(station) == "2.0.1":  # M_17/M_18: several types, or all of them
        result = await csms.call(CP, call201.GetInstalledCertificateIds())
        assert [c["certificate_type"] for c in result.certificate_hash_data_chain] == \
            ["CSMSRootCertificate", "ManufacturerRootCertificate"]
        assert result.certificate_hash_data_chain[1]["certificate_hash_data"] == expected_hash(maker.pem)
        makers = await csms.call(CP, call201.GetInstalledCertificateIds(  # M_13
            certificate_type=["ManufacturerRootCertificate"]))
        assert [c["certificate_hash_data"] for c in makers.certificate_hash_data_chain] == [expected_hash(maker.pem)]
    assert station.ocpp is not None and station.ocpp.model.get(dm.CERTIFICATE_ENTRIES) == "2"
    assert await delete(csms, station, found[0]) == "Accepted"
    assert await delete(csms, station, found[0]) == "NotFound"
    assert await installed(csms, station) == ("NotFound", [])


@both()
async def test_TC_M_07_CS_install_certificate_refuses_what_is_no_usable_root(station: App, csms: CsmsSimulator,
                                                                  tmp_path: Path) -> None:
    ca = BenchCa(tmp_path / "pki")
    leaf, _ = ca.pair("leaf", "not a root")
    expired, _ = ca.pair("old", "expired", expired=True)
    assert await install(csms, station, "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n") \
        == "Rejected"
    assert await install(csms, station, leaf.read_text()) == "Rejected"  # not self-signed
    assert await install(csms, station, expired.read_text()) == "Rejected"
    if version(station) == "2.0.1":
        assert await install(csms, station, ca.pem, "V2GRootCertificate") == "Rejected"  # no ISO 15118 here
    assert await installed(csms, station) == ("NotFound", [])


@both()
async def test_TC_074_A_11_CS_the_csms_renews_the_station_certificate(station: App, csms: CsmsSimulator,
                                                                      tmp_path: Path) -> None:
    ca = BenchCa(tmp_path / "pki")
    csms.signer = ca.sign_csr
    assert await install(csms, station, ca.pem) == "Accepted"  # the CSMS root the new certificate leads to
    assert (await csms.call(CP, sign_trigger(station))).status == "Accepted"
    await wait_until(lambda: csms.signed_answers, 5, "CertificateSigned answered")
    assert csms.signed_answers == ["Accepted"]
    csr = x509.load_pem_x509_csr(csms.csrs[0].encode())
    assert csr.subject.rfc4514_string() == f"CN={CP}" and csr.is_signature_valid
    certs = tmp_path / "certs"
    assert stat.S_IMODE(certs.stat().st_mode) == 0o700
    assert stat.S_IMODE((certs / "station.key").stat().st_mode) == 0o600
    assert station.ocpp is not None
    mine = station.ocpp.certificates.client_certificate()
    assert mine is not None and mine.issuer == ca.cert.subject


@both()
async def test_TC_077_A_14_CS_a_certificate_for_another_key_is_refused_with_a_security_event(
        station: App, csms: CsmsSimulator, tmp_path: Path) -> None:
    ca = BenchCa(tmp_path / "pki")
    other, _ = ca.pair("other", CP)  # the right name, but not the key of the station's CSR
    assert await install(csms, station, ca.pem) == "Accepted"
    csms.signer = lambda _csr: other.read_text()
    event = "InvalidChargePointCertificate" if version(station) == "1.6" else "InvalidChargingStationCertificate"
    assert (await csms.call(CP, sign_trigger(station))).status == "Accepted"
    await wait_until(lambda: csms.signed_answers, 5, "CertificateSigned answered")
    assert csms.signed_answers == ["Rejected"]
    await wait_until(lambda: event in csms.security_events, 5, f"the {event} security event")
    assert station.ocpp is not None and station.ocpp.certificates.client_certificate() is None


async def tls_csms(ca: BenchCa, client_certificates: ssl.VerifyMode) -> CsmsSimulator:
    server = CsmsSimulator(ssl_context=ca.server_context(client_certificates))
    await server.start()
    return server


@pytest.mark.parametrize("ocpp_version", ["1.6", "2.0.1"])
async def test_TC_087_A_07_CS_profile_3_a_client_certificate_is_accepted_an_expired_or_revoked_one_refused(
        tmp_path: Path, ocpp_version: str) -> None:
    ca = BenchCa(tmp_path / "pki")
    good = ca.pair("good", CP)
    expired = ca.pair("expired", CP, expired=True)
    revoked = ca.pair("revoked", CP)
    ca.revoke(revoked[0])
    csms = await tls_csms(ca, ssl.CERT_REQUIRED)
    try:
        for name, (cert, key) in (("good", good), ("expired", expired), ("revoked", revoked)):
            config = sim_config(version=ocpp_version, csms_url=csms.url, ca_file=str(ca.ca_file),
                                client_cert_file=str(cert), client_key_file=str(key))
            app = App(config, state_dir=tmp_path / name)
            await app.start()
            try:
                assert app.ocpp is not None
                if name == "good":
                    await asyncio.wait_for(app.ocpp.connected.wait(), 10)
                    assert app.ocpp.model.get(dm.SECURITY_PROFILE) == "3" and csms.client_certificates[-1] == (CP, CP)
                else:
                    await asyncio.sleep(1.0)  # several attempts, every one refused in the handshake
                    assert not app.ocpp.connected.is_set() and app.ocpp.link.connections == 0
            finally:
                await app.stop()
    finally:
        await csms.stop()


async def test_TC_083_084_CS_raise_the_security_profile_and_never_lower_it(tmp_path: Path) -> None:
    ca = BenchCa(tmp_path / "pki")
    csms = await tls_csms(ca, ssl.CERT_OPTIONAL)  # profile 2 without a client certificate, 3 with one
    try:
        csms.passwords[CP] = PASSWORD
        csms.signer = ca.sign_csr
        config = sim_config(csms_url=csms.url, basic_auth_password=PASSWORD, ca_file=str(ca.ca_file))
        app = App(config, state_dir=tmp_path / "station")
        await app.start()
        try:
            assert app.ocpp is not None
            await asyncio.wait_for(app.ocpp.connected.wait(), 10)
            assert app.ocpp.model.get(dm.SECURITY_PROFILE) == "2"
            change = await csms.call(CP, call16.ChangeConfiguration(key="SecurityProfile", value="3"))
            assert change.status == "Rejected"  # no client certificate yet
            trigger = call16.ExtendedTriggerMessage(requested_message="SignChargePointCertificate")
            assert (await csms.call(CP, trigger)).status == "Accepted"
            await wait_until(lambda: csms.signed_answers == ["Accepted"], 5, "the signed certificate taken")
            change = await csms.call(CP, call16.ChangeConfiguration(key="SecurityProfile", value="3"))
            assert change.status == "Accepted"
            await wait_until(lambda: app.ocpp is not None and app.ocpp.link.connections == 2, 10, "the reconnect")
            await wait_until(lambda: app.ocpp is not None and app.ocpp.model.get(dm.SECURITY_PROFILE) == "3", 5,
                             "profile 3 in use")
            assert csms.client_certificates[-1] == (CP, CP)
            lower = await csms.call(CP, call16.ChangeConfiguration(key="SecurityProfile", value="2"))
            assert lower.status == "Rejected"  # TC_084
            got = await csms.call(CP, call16.GetConfiguration(key=["SecurityProfile", "AuthorizationKey"]))
            keys = {k["key"]: k for k in got.configuration_key}
            assert keys["SecurityProfile"]["value"] == "3" and "value" not in keys["AuthorizationKey"]
        finally:
            await app.stop()
    finally:
        await csms.stop()


async def test_a_raised_profile_that_cannot_connect_falls_back_to_the_one_before(tmp_path: Path) -> None:
    ca = BenchCa(tmp_path / "pki")
    stranger = BenchCa(tmp_path / "other", name="another CA")
    cert, key = stranger.pair("station", CP)  # a certificate the CSMS's CA did not issue: profile 3 cannot work
    csms = await tls_csms(ca, ssl.CERT_OPTIONAL)
    try:
        csms.passwords[CP] = PASSWORD
        config = sim_config(csms_url=csms.url, basic_auth_password=PASSWORD, ca_file=str(ca.ca_file),
                            client_cert_file=str(cert), client_key_file=str(key), security_profile=2)
        app = App(config, state_dir=tmp_path / "station")
        await app.start()
        try:
            assert app.ocpp is not None
            await asyncio.wait_for(app.ocpp.connected.wait(), 10)
            assert app.ocpp.model.get(dm.SECURITY_PROFILE) == "2"
            app.ocpp.model.set(dm.NETWORK_PROFILE_ATTEMPTS, "2")
            change = await csms.call(CP, call16.ChangeConfiguration(key="SecurityProfile", value="3"))
            assert change.status == "Accepted"
            await wait_until(lambda: app.ocpp is not None and app.ocpp.link.connections == 2, 15,
                             "the fallback connection")
            assert app.ocpp.model.get(dm.SECURITY_PROFILE) == "2"  # back on the profile that works
            assert app.ocpp.model.get(dm.NETWORK_PRIORITY) == "1"  # and the raise given up, across restarts too
            assert csms.client_certificates == []  # the stranger's certificate never got through a handshake
        finally:
            await app.stop()
    finally:
        await csms.stop()
