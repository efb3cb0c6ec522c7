"""Firmware signature checks and the FTP / HTTP transfers, against the bench PKI and servers on 127.0.0.1."""

from __future__ import annotations

import base64
import hashlib
import socket
from datetime import UTC, datetime
from pathlib import Path

import pytest

from controller.ocpp.signing import INVALID_CERTIFICATE, INVALID_SIGNATURE, ImageRefused, verify_image
from controller.ocpp.transfer import TransferError, download, upload
from hil.pki import BenchCa
from tests.fileservers import ftp_server, http_server

IMAGE = b"a release wheel's bytes" * 1000


@pytest.fixture
def maker(tmp_path: Path) -> BenchCa:
    return BenchCa(tmp_path / "maker", name="manufacturer CA")


def test_a_signed_image_from_the_manufacturer_verifies(maker: BenchCa) -> None:
    cert, key = maker.pair("signer", "firmware signer")
    digest = verify_image(IMAGE, maker.sign_image(IMAGE, key), cert.read_text(), [maker.cert], datetime.now(UTC))
    assert digest == hashlib.sha256(IMAGE).hexdigest()


def test_a_tampered_image_or_a_foreign_signer_is_refused(maker: BenchCa, tmp_path: Path) -> None:
    cert, key = maker.pair("signer", "firmware signer")
    signature = maker.sign_image(IMAGE, key)
    with pytest.raises(ImageRefused) as tampered:
        verify_image(IMAGE + b"!", signature, cert.read_text(), [maker.cert], datetime.now(UTC))
    assert tampered.value.status == INVALID_SIGNATURE
    stranger = BenchCa(tmp_path / "stranger", name="someone else")
    other_cert, other_key = stranger.pair("signer", "not the manufacturer")
    with pytest.raises(ImageRefused) as foreign:
        verify_image(IMAGE, stranger.sign_image(IMAGE, other_key), other_cert.read_text(), [maker.cert],
                     datetime.now(UTC))
    assert foreign.value.status == INVALID_CERTIFICATE
    expired, expired_key = maker.pair("old", "expired signer", expired=True)
    with pytest.raises(ImageRefused, match="not valid now"):
        verify_image(IMAGE, maker.sign_image(IMAGE, expired_key), expired.read_text(), [maker.cert],
                     datetime.now(UTC))
    with pytest.raises(ImageRefused) as garbled:
        verify_image(IMAGE, "not base64!", cert.read_text(), [maker.cert], datetime.now(UTC))
    assert garbled.value.status == INVALID_SIGNATURE


def test_files_go_up_and_come_down_over_ftp_and_http(tmp_path: Path) -> None:
    with ftp_server(tmp_path / "ftp") as ftp, http_server(tmp_path / "http") as http:
        upload(ftp + "/", "up.bin", IMAGE)
        assert download(ftp + "/up.bin") == IMAGE
        upload(http, "up.bin", IMAGE)
        assert download(http + "/up.bin") == IMAGE
        with pytest.raises(TransferError) as missing:
            download(ftp + "/missing.bin")
        assert "bench-ftp-pass" not in str(missing.value)


def test_a_server_that_is_not_there_is_a_transfer_error_without_the_password() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(TransferError) as failed:
        download(f"ftp://user:s3cret-pass@127.0.0.1:{port}/image.whl")
    assert "s3cret-pass" not in str(failed.value)
    with pytest.raises(TransferError, match="not FTP or HTTP"):
        download("file:///etc/passwd")


def test_a_tls_certificate_or_a_chain_through_a_non_ca_cannot_sign_firmware(maker: BenchCa) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    def cert(name: str, key: ec.EllipticCurvePrivateKey, issuer: x509.Name, issuer_key: ec.EllipticCurvePrivateKey,
             *extensions: x509.ExtensionType) -> x509.Certificate:
        now = datetime.now(UTC)
        builder = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
                   .issuer_name(issuer).public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now.replace(year=now.year - 1)).not_valid_after(now.replace(year=now.year + 1)))
        for extension in extensions:
            builder = builder.add_extension(extension, critical=False)
        return builder.sign(issuer_key, hashes.SHA256())

    def pem(*certs: x509.Certificate) -> str:
        return "".join(c.public_bytes(serialization.Encoding.PEM).decode() for c in certs)

    tls_key = ec.generate_private_key(ec.SECP256R1())
    tls = cert("csms.example", tls_key, maker.subject, maker.key,
               x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]))
    signature = base64.b64encode(tls_key.sign(IMAGE, ec.ECDSA(hashes.SHA256()))).decode()
    with pytest.raises(ImageRefused, match="does not allow signing code") as server:
        verify_image(IMAGE, signature, pem(tls), [maker.cert], datetime.now(UTC))
    assert server.value.status == INVALID_CERTIFICATE
    # An end-entity certificate under the root minting signers of its own: refused.
    leaf_key, signer_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    leaf = cert("some device", leaf_key, maker.subject, maker.key)
    signer = cert("rogue signer", signer_key, leaf.subject, leaf_key,
                  x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]))
    signature = base64.b64encode(signer_key.sign(IMAGE, ec.ECDSA(hashes.SHA256()))).decode()
    with pytest.raises(ImageRefused, match="is not a CA certificate"):
        verify_image(IMAGE, signature, pem(signer, leaf), [maker.cert], datetime.now(UTC))
