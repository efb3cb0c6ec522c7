"""What a firmware update is, for every OCPP version: the request and the states it goes through (the adapters
spell them; :mod:`controller.ocpp.firmware` runs the update)."""

from __future__ import annotations

import dataclasses
import enum
from datetime import datetime
from typing import Any

from controller.clock import iso_utc, parse_time


class FwStatus(enum.Enum):
    """Where an update stands, in 2.0.1's words (the adapters spell them for 1.6)."""

    IDLE = "Idle"
    DOWNLOAD_SCHEDULED = "DownloadScheduled"
    DOWNLOADING = "Downloading"
    DOWNLOADED = "Downloaded"
    DOWNLOAD_FAILED = "DownloadFailed"
    INVALID_SIGNATURE = "InvalidSignature"
    SIGNATURE_VERIFIED = "SignatureVerified"
    INSTALL_SCHEDULED = "InstallScheduled"
    INSTALLING = "Installing"
    INSTALL_REBOOTING = "InstallRebooting"
    INSTALLED = "Installed"
    INSTALLATION_FAILED = "InstallationFailed"
    INSTALL_VERIFICATION_FAILED = "InstallVerificationFailed"


@dataclasses.dataclass(frozen=True)
class FirmwareRequest:
    """One update as the CSMS asked for it. ``request_id`` None: 1.6's plain UpdateFirmware."""

    location: str
    retrieve_at: datetime
    install_at: datetime | None = None
    retries: int = 0
    retry_interval: float = 30.0
    request_id: int | None = None
    signature: str | None = None
    signing_certificate: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The request as the job setting keeps it."""
        return {**dataclasses.asdict(self), "retrieve_at": iso_utc(self.retrieve_at),
                "install_at": iso_utc(self.install_at) if self.install_at else None}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FirmwareRequest:
        """The request :meth:`to_json` kept."""
        install = data.get("install_at")
        return cls(**{**data, "retrieve_at": parse_time(data["retrieve_at"]),
                       "install_at": parse_time(install) if install else None})


def signed_request(firmware: dict[str, Any], request_id: int, retries: int | None,
                   retry_interval: int | None) -> FirmwareRequest:
    """A 2.0.1 UpdateFirmware or 1.6 SignedUpdateFirmware request (one shape, snake_case from the ``ocpp``
    package); ValueError for an unreadable time."""
    install = firmware.get("install_date_time")
    return FirmwareRequest(firmware["location"], parse_time(firmware["retrieve_date_time"]),
                           parse_time(install) if install else None, retries or 0,
                           30.0 if retry_interval is None else float(retry_interval), request_id,
                           firmware.get("signature"), firmware.get("signing_certificate"))
