"""Firmware updates that install for real: wheels of this tree built with pip, served over HTTP and FTP on
127.0.0.1, installed into new virtual environments beside the running one, started through the release guard
the way the systemd unit starts the station, and rolled back when the new release cannot start.

2.0.1 TC_L_01 (with TC_L_13/15's wait for the running transaction), 1.6 TC_044_1 (plain UpdateFirmware over FTP)
and TC_080 (SignedUpdateFirmware) into a release that crashes at start.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from ocpp.v16 import call as call16
from ocpp.v201 import call as call201

from controller import firmware_guard
from controller.clock import iso_utc
from controller.releases import pack
from hil.control import send_script
from hil.csms import CsmsSimulator
from hil.pki import BenchCa
from tests.conftest import wait_until
from tests.fileservers import ftp_server, http_server
from tests.firmware_bench import Service, build_wheels, first_release

CP = "FW-CP"
pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="session")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """This tree as 0.1.0 and 0.1.1, and as 0.1.2 that crashes at start; each with every dependency."""
    return build_wheels(tmp_path_factory.mktemp("wheels"), {"0.1.0": False, "0.1.1": False, "0.1.2": True})


@pytest.fixture
def short() -> Iterator[Path]:
    # The bench control socket lives in the state directory: a unix socket path has at most 107 bytes.
    with tempfile.TemporaryDirectory(prefix="fw-") as folder:
        yield Path(folder)
        log = Path(folder) / "station.log"
        if log.exists():
            print(log.read_text()[-6000:])  # shown with a failure: what the station said


def write_config(folder: Path, csms: CsmsSimulator, version: str) -> Path:
    config = folder / "config.toml"
    config.write_text(f"""
[station]
hardware = "sim"
id = "{CP}"
[ocpp]
csms_url = "{csms.url}"
version = "{version}"
reconnect_min = 0.2
reconnect_max = 0.5
[firmware]
releases_dir = "{folder / 'opt'}"
trial_seconds = 120
[[connector]]
id = 1
pilot = {{ adc_low_channel = 1 }}
contactor = {{ mirror_pin = 27, feedback_delay = 0.05 }}
""")
    return config


def statuses(csms: CsmsSimulator, action: str) -> list[str]:
    return [status for name, status, _ in csms.file_statuses if name == action]


def boot_versions(csms: CsmsSimulator) -> list[str]:
    """The firmwareVersion of every BootNotification, in order."""
    found = []
    for frame in csms.frames:
        message = json.loads(frame.raw)
        if frame.direction == "in" and message[0] == 2 and message[2] == "BootNotification":
            payload = message[3]
            found.append(payload.get("chargingStation", payload).get("firmwareVersion"))
    return found


def releases(folder: Path) -> set[str]:
    return {p.name.split("-")[0] for p in (folder / "opt" / "releases").iterdir()}


def signed(image: bytes, maker: BenchCa) -> tuple[str, str]:
    """The image's signature by the manufacturer's signer, and the signer's certificate."""
    cert, key = maker.folder / "signer.pem", maker.folder / "signer.key"
    if not cert.exists():
        maker.pair("signer", "firmware signer")
    return maker.sign_image(image, key), cert.read_text()


async def test_TC_L_01_13_CS_an_update_installs_waits_for_the_transaction_and_restarts_into_the_release(
        short: Path, csms: CsmsSimulator, wheels: dict[str, Path]) -> None:
    first_release(short / "opt", wheels["0.1.0"])
    served = short / "http"
    served.mkdir()
    image = pack(served / "fw-0.1.1.tar", wheels=wheels["0.1.1"])
    maker = BenchCa(short / "maker", name="manufacturer CA")
    signature, certificate = signed(image, maker)
    service = Service(short / "opt", write_config(short, csms, "2.0.1"), short / "state", short / "station.log")
    with http_server(served) as url:
        async with service.running():
            await wait_until(lambda: CP in csms.connections, 60, "the first release's boot")
            answer = await csms.call(CP, call201.InstallCertificate(certificate_type="ManufacturerRootCertificate",
                                                                    certificate=maker.pem))
            assert answer.status == "Accepted"
            await wait_until((short / "state" / "bench.sock").exists, 30, "the station ready")
            assert (await send_script(short / "state", "plug; tap 04A1B2C3"))["ok"]
            await wait_until(lambda: any(e["event_type"] == "Started" for events in csms.events.values()
                                         for e in events), 20, "a transaction")
            answer = await csms.call(CP, call201.UpdateFirmware(request_id=21, retries=1, retry_interval=1, firmware={
                "location": url + "/fw-0.1.1.tar", "retrieve_date_time": iso_utc(datetime.now(UTC)),
                "signing_certificate": certificate, "signature": signature}))
            assert answer.status == "Accepted"
            log = short / "station.log"
            await wait_until(lambda: "waits for the running transactions" in log.read_text(), 120,
                             "the installed release waiting for the transaction")
            assert statuses(csms, "FirmwareStatusNotification")[-1] == "Installing"
            waiting = len(csms.statuses)
            assert (await send_script(short / "state", "unplug"))["ok"]
            await wait_until(lambda: "Installed" in statuses(csms, "FirmwareStatusNotification"), 120,
                             "Installed from the new release")
            await wait_until(lambda: "FirmwareUpdated" in csms.security_events, 10, "the security event")
    # L01.FR.07: once its transaction ended the EVSE went Unavailable (after the instant's Available of the unplug
    # that a scheduled Inoperative passes through) and stayed so until the restart; the new release reports it
    # Available.
    after = [status for _, cp, _, status, _ in csms.statuses[waiting:] if cp == CP]
    assert after[-2:] == ["Unavailable", "Available"], after
    assert statuses(csms, "FirmwareStatusNotification") == ["Downloading", "Downloaded", "SignatureVerified",
                                                            "Installing", "InstallRebooting", "Installed"]
    assert {rid for name, _, rid in csms.file_statuses if name == "FirmwareStatusNotification"} == {21}
    assert boot_versions(csms) == ["0.1.0", "0.1.1"] and csms.boot_reasons == ["PowerUp", "FirmwareUpdate"]
    ended = [e for events in csms.events.values() for e in events if e["event_type"] == "Ended"]
    assert len(ended) == 1  # the transaction ended by the unplug, before the restart, and only once
    assert service.starts == 1  # one process: the restart was an exec through the guard
    assert releases(short) == {"0.1.0", "0.1.1"} and service.current() is not None
    assert service.current().startswith("0.1.1-")  # type: ignore[union-attr]
    assert not (short / "opt" / firmware_guard.TRIAL).exists()


async def test_TC_044_1_and_TC_080_CS_plain_update_over_ftp_then_a_signed_one_that_crashes_is_rolled_back(
        short: Path, csms: CsmsSimulator, wheels: dict[str, Path]) -> None:
    first_release(short / "opt", wheels["0.1.0"])
    maker = BenchCa(short / "maker", name="manufacturer CA")
    ftp, served = short / "ftp", short / "http"
    ftp.mkdir()
    served.mkdir()
    good = pack(ftp / "fw-0.1.1.tar", wheels=wheels["0.1.1"])
    signature, certificate = signed(good, maker)
    (ftp / "fw-0.1.1.tar.sig").write_text(json.dumps({"signature": signature, "signingCertificate": certificate}))
    broken = pack(served / "fw-0.1.2.tar", wheels=wheels["0.1.2"])
    broken_signature, same = signed(broken, maker)
    assert same == certificate
    service = Service(short / "opt", write_config(short, csms, "1.6"), short / "state", short / "station.log")
    with ftp_server(ftp) as ftp_url, http_server(served) as http_url:
        async with service.running():
            await wait_until(lambda: CP in csms.connections, 60, "the first release's boot")
            answer = await csms.call(CP, call16.InstallCertificate(certificate_type="ManufacturerRootCertificate",
                                                                   certificate=maker.pem))
            assert answer.status == "Accepted"
            await csms.call(CP, call16.UpdateFirmware(location=ftp_url + "/fw-0.1.1.tar",
                                                      retrieve_date=iso_utc(datetime.now(UTC))))
            await wait_until(lambda: "Installed" in statuses(csms, "FirmwareStatusNotification"), 180, "0.1.1")
            answer = await csms.call(CP, call16.SignedUpdateFirmware(request_id=8, retries=0, retry_interval=0,
                                                                     firmware={
                "location": http_url + "/fw-0.1.2.tar", "retrieve_date_time": iso_utc(datetime.now(UTC)),
                "signing_certificate": certificate, "signature": broken_signature}))
            assert answer.status == "Accepted"
            await wait_until(lambda: "InstallationFailed" in statuses(csms, "SignedFirmwareStatusNotification"),
                             180, "the failed update's report from the release rolled back to")
    assert statuses(csms, "FirmwareStatusNotification") == ["Downloading", "Downloaded", "Installing", "Installed"]
    assert statuses(csms, "SignedFirmwareStatusNotification") == [
        "Downloading", "Downloaded", "SignatureVerified", "Installing", "InstallRebooting", "InstallationFailed"]
    # 0.1.2 started through the guard (the exec) and twice more by the service; the guard's next start ran 0.1.1.
    assert service.starts == 1 + firmware_guard.MAX_TRIAL_STARTS - 1 + 1
    assert boot_versions(csms) == ["0.1.0", "0.1.1", "0.1.1"]
    assert "this release cannot start" in (short / "station.log").read_text()
    assert service.current() is not None and service.current().startswith("0.1.1-")  # type: ignore[union-attr]
    assert releases(short) == {"0.1.1"}  # the failed release and 0.1.0 (0.1.1 is confirmed) are gone
    assert not (short / "opt" / firmware_guard.TRIAL).exists()
    assert not (short / "opt" / firmware_guard.OUTCOME).exists()
