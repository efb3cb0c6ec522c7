"""Firmware updates up to the install, on a simulated charger in this process (which runs from no release, so
nothing installs here: ``test_firmware_releases.py`` installs and restarts for real). 2.0.1 L01 (TC_L_02, 03,
05, 06, 07, 08, 10, 18; F_18, F_19) and 1.6 (TC_044_2, TC_044_3, TC_081)."""

from __future__ import annotations

import io
import json
import tarfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from ocpp.v16 import call as call16
from ocpp.v201 import call as call201

from controller.app import App
from controller.clock import iso_utc
from controller.ocpp.firmware import JOB
from hil.csms import CsmsSimulator
from hil.pki import BenchCa
from tests.conftest import wait_until
from tests.fileservers import http_server

CP = "TEST-CP"


def statuses(csms: CsmsSimulator, action: str = "FirmwareStatusNotification") -> list[str]:
    return [status for name, status, _ in csms.file_statuses if name == action]


def soon(seconds: float = 0.0) -> str:
    return iso_utc(datetime.now(UTC) + timedelta(seconds=seconds))


def not_a_release() -> bytes:
    """A tar of one file that is no wheel: downloads and verifies, and cannot install."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        data = b"not a wheel"
        info = tarfile.TarInfo("README.txt")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@pytest.fixture
def maker(tmp_path: Path) -> BenchCa:
    return BenchCa(tmp_path / "maker", name="manufacturer CA")


@pytest.fixture
def served(tmp_path: Path, maker: BenchCa) -> dict[str, str]:
    """image.tar (signed, with its .sig beside it) and its signature and signing certificate."""
    root = tmp_path / "http"
    root.mkdir()
    cert, key = maker.pair("signer", "firmware signer")
    image = not_a_release()
    (root / "image.tar").write_bytes(image)
    signature = maker.sign_image(image, key)
    (root / "image.tar.sig").write_text(json.dumps({"signature": signature, "signingCertificate": cert.read_text()}))
    return {"signature": signature, "certificate": cert.read_text(), "root": str(root)}


async def install_root(app: App, csms: CsmsSimulator, maker: BenchCa, tmp_path: Path) -> None:
    """Give the charger a releases folder and the manufacturer's root, as the CSMS would (InstallCertificate)."""
    app.config.firmware.releases_dir = str(tmp_path / "opt")
    if app.config.ocpp.version == "1.6":
        answer = await csms.call(CP, call16.InstallCertificate(certificate_type="ManufacturerRootCertificate",
                                                               certificate=maker.pem))
    else:
        answer = await csms.call(CP, call201.InstallCertificate(certificate_type="ManufacturerRootCertificate",
                                                                certificate=maker.pem))
    assert answer.status == "Accepted"


def update201(url: str, served: dict[str, str], request_id: int = 1, **firmware: str | None) -> call201.UpdateFirmware:
    fields: dict[str, str | None] = {"location": url + "/image.tar", "retrieve_date_time": soon(),
                                     "signing_certificate": served["certificate"], "signature": served["signature"]}
    fields.update(firmware)
    return call201.UpdateFirmware(request_id=request_id, retries=0, retry_interval=0,
                                  firmware={k: v for k, v in fields.items() if v is not None})


# ----------------------------------------------------------------------- 2.0.1


async def test_TC_L_02_03_08_CS_a_scheduled_download_and_install_wait_for_their_times_then_fail(
        station201: App, csms: CsmsSimulator, maker: BenchCa, served: dict[str, str], tmp_path: Path) -> None:
    await install_root(station201, csms, maker, tmp_path)
    with http_server(Path(served["root"])) as url:
        answer = await csms.call(CP, update201(url, served, retrieve_date_time=soon(2.0),
                                               install_date_time=soon(3.5)))
        assert answer.status == "Accepted"
        await wait_until(lambda: "DownloadScheduled" in statuses(csms), 5, "DownloadScheduled")
        await csms.call(CP, call201.TriggerMessage(requested_message="FirmwareStatusNotification"))
        await wait_until(lambda: statuses(csms).count("DownloadScheduled") == 2, 5, "the trigger's answer")
        assert "Downloading" not in statuses(csms)
        await wait_until(lambda: "InstallationFailed" in statuses(csms), 10, "the end of the update")
    assert statuses(csms) == ["DownloadScheduled", "DownloadScheduled", "Downloading", "Downloaded",
                              "SignatureVerified", "InstallScheduled", "Installing", "InstallationFailed"]
    assert {rid for name, _, rid in csms.file_statuses if name == "FirmwareStatusNotification"} == {1}
    assert station201.ocpp is not None and station201.ocpp.store.get_setting(JOB) is None
    await csms.call(CP, call201.TriggerMessage(requested_message="FirmwareStatusNotification"))
    await wait_until(lambda: statuses(csms)[-1] == "Idle", 5, "Idle once the update ended (TC_F_18)")


async def test_TC_L_05_CS_a_signing_certificate_from_elsewhere_is_refused_before_any_download(
        station201: App, csms: CsmsSimulator, maker: BenchCa, served: dict[str, str], tmp_path: Path) -> None:
    await install_root(station201, csms, maker, tmp_path)
    stranger = BenchCa(tmp_path / "stranger", name="not the manufacturer")
    cert, _ = stranger.pair("signer", "someone's signer")
    with http_server(Path(served["root"])) as url:
        answer = await csms.call(CP, update201(url, served, signing_certificate=cert.read_text()))
    assert answer.status == "InvalidCertificate"
    await wait_until(lambda: "InvalidFirmwareSigningCertificate" in csms.security_events, 5, "the security event")
    assert statuses(csms) == []


async def test_TC_L_06_18_CS_a_tampered_or_unsigned_image_is_refused_with_InvalidSignature(
        station201: App, csms: CsmsSimulator, maker: BenchCa, served: dict[str, str], tmp_path: Path) -> None:
    await install_root(station201, csms, maker, tmp_path)
    image = Path(served["root"]) / "image.tar"
    image.write_bytes(image.read_bytes() + b"tampered")
    with http_server(Path(served["root"])) as url:
        assert (await csms.call(CP, update201(url, served))).status == "Accepted"
        await wait_until(lambda: "InvalidSignature" in statuses(csms), 10, "InvalidSignature")
        # The same event twice before the first is delivered is kept once: let the first go out.
        assert station201.ocpp is not None
        events = station201.ocpp.security_events
        await wait_until(lambda: "InvalidFirmwareSignature" in csms.security_events and not events.pending(), 5,
                         "the first event delivered")
        assert (await csms.call(CP, update201(url, served, 2, signature=None,
                                              signing_certificate=None))).status == "Accepted"
        await wait_until(lambda: statuses(csms).count("InvalidSignature") == 2, 10, "the unsigned one refused")
    assert statuses(csms) == ["Downloading", "Downloaded", "InvalidSignature"] * 2
    await wait_until(lambda: csms.security_events.count("InvalidFirmwareSignature") == 2, 5, "the second event")


async def test_TC_L_07_CS_a_failing_download_is_retried_then_reported(
        station201: App, csms: CsmsSimulator, maker: BenchCa, served: dict[str, str], tmp_path: Path) -> None:
    await install_root(station201, csms, maker, tmp_path)
    with http_server(Path(served["root"])) as url:
        request = update201(url, served, location=url + "/missing.tar")
        request.retries, request.retry_interval = 2, 0
        assert (await csms.call(CP, request)).status == "Accepted"
        await wait_until(lambda: "DownloadFailed" in statuses(csms), 10, "DownloadFailed")
    assert statuses(csms) == ["Downloading"] * 3 + ["DownloadFailed"]


async def test_TC_L_10_CS_a_new_request_cancels_a_scheduled_one(
        station201: App, csms: CsmsSimulator, maker: BenchCa, served: dict[str, str], tmp_path: Path) -> None:
    await install_root(station201, csms, maker, tmp_path)
    with http_server(Path(served["root"])) as url:
        assert (await csms.call(CP, update201(url, served, retrieve_date_time=soon(3600)))).status == "Accepted"
        await wait_until(lambda: "DownloadScheduled" in statuses(csms), 5, "DownloadScheduled")
        second = await csms.call(CP, update201(url, served, 2, location=url + "/missing.tar"))
        assert second.status == "AcceptedCanceled"
        await wait_until(lambda: "DownloadFailed" in statuses(csms), 10, "the second update's end")
    assert [(s, rid) for name, s, rid in csms.file_statuses] == [("DownloadScheduled", 1), ("Downloading", 2),
                                                                  ("DownloadFailed", 2)]


async def test_an_update_is_rejected_where_the_station_was_not_installed_as_releases(
        station201: App, csms: CsmsSimulator, served: dict[str, str]) -> None:
    assert station201.config.firmware.releases_dir == ""
    with http_server(Path(served["root"])) as url:
        assert (await csms.call(CP, update201(url, served))).status == "Rejected"
        assert (await csms.call(CP, update201(url, served, location="file:///etc/passwd"))).status == "Rejected"
    assert statuses(csms) == []


async def test_a_scheduled_update_survives_a_restart(tmp_path: Path, csms: CsmsSimulator, maker: BenchCa,
                                                     served: dict[str, str]) -> None:
    from tests.conftest import sim_config

    config = sim_config(version="2.0.1")
    config.firmware.releases_dir = str(tmp_path / "opt")
    app = App(config, state_dir=tmp_path / "state", csms_url=csms.url)
    await app.start()
    assert app.ocpp is not None
    await wait_until(app.ocpp.connected.is_set, 10, "connected")
    await install_root(app, csms, maker, tmp_path)
    with http_server(Path(served["root"])) as url:
        assert (await csms.call(CP, update201(url, served, retrieve_date_time=soon(2)))).status == "Accepted"
        await wait_until(lambda: "DownloadScheduled" in statuses(csms), 5, "DownloadScheduled")
        await app.stop()
        again = App(config, state_dir=tmp_path / "state", csms_url=csms.url)
        await again.start()
        try:
            await wait_until(lambda: "InstallationFailed" in statuses(csms), 15, "the resumed update's end")
        finally:
            await again.stop()
    assert statuses(csms)[-5:] == ["Downloading", "Downloaded", "SignatureVerified", "Installing",
                                   "InstallationFailed"]


# ----------------------------------------------------------------------- 1.6


async def test_TC_044_2_CS_update_firmware_download_failed(charger: App, csms: CsmsSimulator, maker: BenchCa,
                                                           served: dict[str, str], tmp_path: Path) -> None:
    await install_root(charger, csms, maker, tmp_path)
    with http_server(Path(served["root"])) as url:
        await csms.call(CP, call16.UpdateFirmware(location=url + "/missing.tar", retrieve_date=soon(), retries=1,
                                                  retry_interval=0))
        await wait_until(lambda: "DownloadFailed" in statuses(csms), 10, "DownloadFailed")
    assert statuses(csms) == ["Downloading", "Downloading", "DownloadFailed"]


async def test_TC_044_3_CS_update_firmware_installation_failed(charger: App, csms: CsmsSimulator, maker: BenchCa,
                                                               served: dict[str, str], tmp_path: Path) -> None:
    await install_root(charger, csms, maker, tmp_path)
    with http_server(Path(served["root"])) as url:
        await csms.call(CP, call16.UpdateFirmware(location=url + "/image.tar", retrieve_date=soon()))
        await wait_until(lambda: "InstallationFailed" in statuses(csms), 10, "InstallationFailed")
    # 1.6 has no word for SignatureVerified: the signature beside the image was checked between these.
    assert statuses(csms) == ["Downloading", "Downloaded", "Installing", "InstallationFailed"]


async def test_a_plain_1_6_update_without_a_signature_beside_it_is_refused(
        charger: App, csms: CsmsSimulator, maker: BenchCa, served: dict[str, str], tmp_path: Path) -> None:
    await install_root(charger, csms, maker, tmp_path)
    (Path(served["root"]) / "image.tar.sig").unlink()
    with http_server(Path(served["root"])) as url:
        await csms.call(CP, call16.UpdateFirmware(location=url + "/image.tar", retrieve_date=soon()))
        await wait_until(lambda: "InstallationFailed" in statuses(csms), 10, "InstallationFailed")
    assert statuses(csms) == ["Downloading", "Downloaded", "InstallationFailed"]
    await wait_until(lambda: "InvalidFirmwareSignature" in csms.security_events, 5, "the security event")


async def test_TC_081_CS_secure_firmware_update_invalid_signature(charger: App, csms: CsmsSimulator,
                                                                  maker: BenchCa, served: dict[str, str],
                                                                  tmp_path: Path) -> None:
    await install_root(charger, csms, maker, tmp_path)
    with http_server(Path(served["root"])) as url:
        answer = await csms.call(CP, call16.SignedUpdateFirmware(
            request_id=5, retries=0, retry_interval=0,
            firmware={"location": url + "/image.tar", "retrieve_date_time": soon(),
                      "signing_certificate": served["certificate"],
                      "signature": served["signature"][:-8] + "AAAAAAA="}))
        assert answer.status == "Accepted"
        await wait_until(lambda: "InvalidSignature" in statuses(csms, "SignedFirmwareStatusNotification"), 10,
                         "InvalidSignature")
        await csms.call(CP, call16.ExtendedTriggerMessage(requested_message="FirmwareStatusNotification"))
        await wait_until(lambda: statuses(csms, "SignedFirmwareStatusNotification")[-1] == "Idle", 5, "Idle")
    assert statuses(csms, "SignedFirmwareStatusNotification") == ["Downloading", "Downloaded", "InvalidSignature",
                                                                  "Idle"]
    assert {rid for name, _, rid in csms.file_statuses if name == "SignedFirmwareStatusNotification"} == {5, None}
    await wait_until(lambda: "InvalidFirmwareSignature" in csms.security_events, 5, "the security event")


async def test_an_unreadable_retrieve_time_is_refused_without_a_download(
        station201: App, csms: CsmsSimulator, maker: BenchCa, served: dict[str, str], tmp_path: Path) -> None:
    await install_root(station201, csms, maker, tmp_path)
    with http_server(Path(served["root"])) as url:
        answer = await csms.call(CP, update201(url, served, retrieve_date_time="next tuesday"))
    assert answer.status == "Rejected" and answer.status_info["reason_code"] == "InvalidTimestamp"
    assert statuses(csms) == []


async def test_the_release_rolled_back_to_reports_the_failure_and_takes_no_update_before_it_has(
        tmp_path: Path, csms: CsmsSimulator, maker: BenchCa, served: dict[str, str]) -> None:
    from controller.storage import Store
    from tests.conftest import sim_config

    state = tmp_path / "state"
    store = Store(state)  # what the release that switched left: the job, at its restart
    request = {"location": "http://127.0.0.1:1/fw.tar", "retrieve_at": soon(), "install_at": None, "retries": 0,
               "retry_interval": 30.0, "request_id": 31, "signature": "c2ln", "signing_certificate": "pem"}
    store.set_setting(JOB, json.dumps({"request": request, "phase": "rebooting", "release": "9.9.9-0123456789ab",
                                       "previous": "0.1.0-a"}))
    store.close()
    config = sim_config(version="2.0.1")
    config.firmware.releases_dir = str(tmp_path / "opt")
    config.firmware.manufacturer_root_file = str(maker.ca_file)
    csms.boot_answers = ["Pending"]
    app = App(config, state_dir=state, csms_url=csms.url)
    await app.start()
    try:
        await wait_until(lambda: csms.boots, 10, "the Pending boot")
        await wait_until(lambda: CP in csms.connections, 5, "the connection")
        with http_server(Path(served["root"])) as url:
            assert (await csms.call(CP, update201(url, served, 32))).status == "Rejected"
        await csms.call(CP, call201.TriggerMessage(requested_message="BootNotification"))
        await wait_until(lambda: ("FirmwareStatusNotification", "InstallationFailed", 31) in csms.file_statuses, 10,
                         "the failed update's report")
        assert app.ocpp is not None and app.ocpp.store.get_setting(JOB) is None
    finally:
        await app.stop()
    assert csms.boot_reasons[0] == "FirmwareUpdate" and statuses(csms) == ["InstallationFailed"]
