"""Diagnostics and log uploads to local FTP and HTTP servers: 1.6 GetDiagnostics (TC_045_1/2) and GetLog
(TC_079), 2.0.1 GetLog (TC_N_25, N_26, N_35)."""

from __future__ import annotations

import io
import json
import socket
import tarfile
from pathlib import Path

from ocpp.v16 import call as call16
from ocpp.v201 import call as call201

from controller.app import App
from controller.ocpp.rpc import RECENT_FRAMES
from hil.csms import CsmsSimulator
from tests.conftest import wait_until
from tests.fileservers import ftp_server, http_server

CP = "TEST-CP"
PASSWORD = "bench-password-0001"


def members(archive: Path) -> dict[str, str]:
    with tarfile.open(fileobj=io.BytesIO(archive.read_bytes()), mode="r:gz") as tar:
        return {m.name: tar.extractfile(m).read().decode() for m in tar.getmembers()}  # type: ignore[union-attr]


def statuses(csms: CsmsSimulator, action: str) -> list[str]:
    return [status for name, status, _ in csms.file_statuses if name == action]


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_TC_045_1_CS_get_diagnostics_uploads_one_archive_over_ftp(charger: App, csms: CsmsSimulator,
                                                                        tmp_path: Path) -> None:
    charger.config.ocpp.basic_auth_password = PASSWORD  # a secret the archive's config must leave out
    with ftp_server(tmp_path / "ftp") as url:
        result = await csms.call(CP, call16.GetDiagnostics(location=url + "/", retries=1, retry_interval=1))
        assert result.file_name and result.file_name.endswith(".tar.gz")
        await wait_until(lambda: "Uploaded" in statuses(csms, "DiagnosticsStatusNotification"), 10, "Uploaded")
    assert statuses(csms, "DiagnosticsStatusNotification") == ["Uploading", "Uploaded"]
    parts = members(tmp_path / "ftp" / result.file_name)
    assert set(parts) == {"journal.txt", "frames.txt", "config.json", "faults.json"}
    assert "GetDiagnostics" in parts["frames.txt"] and "BootNotification" in parts["frames.txt"]
    assert all(PASSWORD not in text for text in parts.values())
    config = json.loads(parts["config.json"])
    assert config["config"]["ocpp"]["basic_auth_password"] == "(removed)"
    assert config["config"]["station"]["id"] == CP and "OCPPCommCtrlr.HeartbeatInterval" in config["variables"]
    assert json.loads(parts["faults.json"]) == {"history": [], "active": {}}


async def test_TC_045_2_CS_a_failed_upload_is_retried_then_reported(charger: App, csms: CsmsSimulator) -> None:
    location = f"ftp://bench:x@127.0.0.1:{closed_port()}/"
    result = await csms.call(CP, call16.GetDiagnostics(location=location, retries=1, retry_interval=0))
    assert result.file_name
    await wait_until(lambda: "UploadFailed" in statuses(csms, "DiagnosticsStatusNotification"), 10, "UploadFailed")
    assert statuses(csms, "DiagnosticsStatusNotification") == ["Uploading", "UploadFailed"]
    refused = await csms.call(CP, call16.GetDiagnostics(location="file:///etc/passwd"))
    assert refused.file_name is None  # nothing will be uploaded there


async def test_TC_079_CS_get_security_log_over_http(charger: App, csms: CsmsSimulator, tmp_path: Path) -> None:
    with http_server(tmp_path / "http") as url:
        result = await csms.call(CP, call16.GetLog(log={"remoteLocation": url}, log_type="SecurityLog",
                                                   request_id=7))
        assert result.status == "Accepted"
        await wait_until(lambda: ("LogStatusNotification", "Uploaded", 7) in csms.file_statuses, 10, "Uploaded")
    events = json.loads(members(tmp_path / "http" / result.filename)["security.json"])
    assert [e["type"] for e in events] == ["StartupOfTheDevice"]


async def test_TC_N_25_35_CS_get_log_diagnostics_and_security_logs(station201: App, csms: CsmsSimulator,
                                                                   tmp_path: Path) -> None:
    RECENT_FRAMES.clear()  # the frame log is the process's: an earlier test's transactions are not this one's
    with http_server(tmp_path / "http") as url:
        result = await csms.call(CP, call201.GetLog(log={"remoteLocation": url}, log_type="DiagnosticsLog",
                                                    request_id=11))
        assert result.status == "Accepted"
        await wait_until(lambda: ("LogStatusNotification", "Uploaded", 11) in csms.file_statuses, 10, "Uploaded")
        diagnostics = members(tmp_path / "http" / result.filename)
        security = await csms.call(CP, call201.GetLog(log={"remoteLocation": url}, log_type="SecurityLog",
                                                      request_id=12))
        await wait_until(lambda: ("LogStatusNotification", "Uploaded", 12) in csms.file_statuses, 10, "Uploaded")
    assert [s for s in csms.file_statuses if s[2] == 11] == [("LogStatusNotification", "Uploading", 11),
                                                              ("LogStatusNotification", "Uploaded", 11)]
    assert "TransactionEvent" not in diagnostics["frames.txt"] and "GetLog" in diagnostics["frames.txt"]
    assert "StartupOfTheDevice" in members(tmp_path / "http" / security.filename)["security.json"]


async def test_TC_N_26_CS_get_log_upload_failed(station201: App, csms: CsmsSimulator) -> None:
    location = f"http://127.0.0.1:{closed_port()}/logs"
    result = await csms.call(CP, call201.GetLog(log={"remoteLocation": location}, log_type="DiagnosticsLog",
                                                request_id=13, retries=2, retry_interval=0))
    assert result.status == "Accepted"
    await wait_until(lambda: ("LogStatusNotification", "UploadFailure", 13) in csms.file_statuses, 10,
                     "UploadFailure")
    bad = await csms.call(CP, call201.GetLog(log={"remoteLocation": "gopher://x"}, log_type="DiagnosticsLog",
                                             request_id=14))
    assert bad.status == "Rejected" and bad.status_info["reason_code"] == "InvalidURL"
