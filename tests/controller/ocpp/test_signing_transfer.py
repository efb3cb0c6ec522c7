"""Firmware signature checks and the FTP / HTTP transfers, against the bench PKI and servers on 127.0.0.1."""

from __future__ import annotations

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
