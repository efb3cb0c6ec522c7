"""What the version-neutral core asks of an OCPP version's adapter, and where each version's adapter lives.

The core decides what to send and when; an adapter spells it (wire JSON) and reads the answers. Adapters are
found by the configured ``ocpp.version`` and imported only when used, like HAL drivers.
"""

from __future__ import annotations

import enum
import importlib
from datetime import datetime
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any, Protocol

from controller.clock import parse_time
from controller.domain.events import (
    AuthorizationWithdrawn,
    Authorized,
    StatusChanged,
    Transaction,
    VehicleConnected,
    VehicleDeparted,
)
from controller.domain.types import AuthDecision, IdToken
from controller.evse.machine import Evse
from controller.ocpp.diagnostics import LogRequest, Upload
from controller.ocpp.firmware_request import FirmwareRequest, FwStatus
from controller.ocpp.queue import TxMessage
from controller.ocpp.sampling import MeterValue
from controller.storage import StoredMessage, StoredTransaction

if TYPE_CHECKING:
    from controller.ocpp.client import OcppClient

Message = tuple[str, dict[str, Any]]
#: What happens around a charging session that a version may make part of its transaction (2.0.1 TxStartPoint).
SessionEdge = VehicleConnected | VehicleDeparted | Authorized | AuthorizationWithdrawn

#: ocpp.version -> "module:Class" of its adapter.
ADAPTERS = {"1.6": "controller.ocpp.v16.adapter:Ocpp16Adapter",
            "2.0.1": "controller.ocpp.v201.adapter:Ocpp201Adapter"}


class Registration(enum.Enum):
    """What the CSMS said to a BootNotification."""

    ACCEPTED = "accepted"
    PENDING = "pending"
    REJECTED = "rejected"


class Connection(Protocol):
    """One websocket connection as the core uses it: its receive loop, and the station's own CALLs."""

    async def start(self) -> None:
        """Receive and route frames until the connection closes."""

    async def request(self, action: str, payload: dict[str, Any], *, unique_id: str | None = None) -> dict[str, Any]:
        """Send a CALL and return its answer (raises CallFailed)."""
        ...


class VersionAdapter(Protocol):
    """One OCPP version, spelt for the core."""

    version: str
    subprotocol: str

    def connection(self, ws: Any) -> Connection:
        """The version's handlers on one websocket."""
        ...

    def boot(self) -> Message:
        """The BootNotification."""
        ...

    def boot_answer(self, result: dict[str, Any]) -> tuple[Registration, int, str]:
        """(registration, interval, the CSMS's time)."""
        ...

    def heartbeat(self) -> Message:
        """A Heartbeat."""
        ...

    def heartbeat_answer(self, result: dict[str, Any]) -> str:
        """The CSMS's time."""
        ...

    def status(self, event: StatusChanged) -> Message | None:
        """A status report (None: this version has none for it, as 2.0.1 for the station as a whole)."""
        ...

    def authorize(self, token: IdToken) -> Message:
        """A question about an identifier."""
        ...

    def authorize_answer(self, result: dict[str, Any]) -> AuthDecision:
        """The CSMS's decision."""
        ...

    def start(self, tx: Transaction) -> TxMessage:
        """The message that a charging session began (the transaction's first, with its record, or one within
        a transaction the version opened earlier)."""
        ...

    def sample(self, evse_id: int, value: MeterValue) -> Message:
        """A meter sample within a transaction."""
        ...

    def idle_sample(self, evse_id: int, value: MeterValue) -> Message:
        """A meter sample outside any transaction."""
        ...

    def stop(self, tx: Transaction, aligned: list[MeterValue]) -> TxMessage:
        """The message that a charging session ended (the transaction's last, or one within it when the version
        keeps it open longer)."""
        ...

    def around(self, event: SessionEdge) -> list[TxMessage]:
        """Transaction messages for a plug, a departure or an authorisation outside a charging session."""
        ...

    def power_loss(self, tx: StoredTransaction) -> Message:
        """The last message of a transaction a dead process left open."""
        ...

    #: The security event of a CertificateSigned the station refuses.
    invalid_station_certificate: str

    def sign_certificate(self, csr: str) -> Message:
        """SignCertificate of a CSR for the station's own certificate."""
        ...

    def queued(self, message: StoredMessage) -> dict[str, Any]:
        """A queued message as it goes out."""
        ...

    def queued_answer(self, message: StoredMessage, result: dict[str, Any]) -> tuple[
            int | None, IdToken | None, AuthDecision | None]:
        """(the transaction id a start got, the identifier and the decision the answer carries)."""
        ...

    def triggered_sample(self, evse: Evse) -> Message:
        """A meter sample for TriggerMessage."""
        ...

    def data_transfer(self, vendor_id: str, message_id: str | None, data: str | None) -> Message:
        """A DataTransfer."""
        ...

    def firmware_status(self, *, signed: bool = False) -> Message:
        """The firmware status, for TriggerMessage (``signed``: 1.6 ExtendedTriggerMessage's)."""
        ...

    def firmware_status_of(self, status: FwStatus, request: FirmwareRequest) -> Message | None:
        """The notification of a firmware update's progress (None: the version tells none of this state)."""
        ...

    def diagnostics_status(self) -> Message:
        """The diagnostics status, for TriggerMessage."""
        ...

    def log_status(self) -> Message:
        """LogStatusNotification, for (Extended)TriggerMessage."""
        ...

    def log_status_of(self, state: Upload, request: LogRequest) -> Message | None:
        """The notification of a log upload's progress (None: the version tells none of this state)."""
        ...


REGISTRATIONS = {"Accepted": Registration.ACCEPTED, "Pending": Registration.PENDING, "Rejected": Registration.REJECTED}


def firmware_version() -> str:
    """This package's version: what the station runs."""
    try:
        return version("evse-controller")
    except PackageNotFoundError:
        return "unknown"


class SharedSpelling:
    """What 1.6 and 2.0.1 spell alike: SecurityEventNotification, DataTransfer, the boot and heartbeat answers,
    an expiry's reading."""

    client: OcppClient

    def log_status(self) -> Message:
        """LogStatusNotification (2.0.1, and the 1.6 whitepaper's) of the moment, for a trigger: Uploading with
        its requestId while a GetLog upload runs, else Idle."""
        diagnostics = self.client.diagnostics
        request = diagnostics.current
        if diagnostics.state == Upload.UPLOADING and request is not None and request.request_id is not None:
            return "LogStatusNotification", {"status": "Uploading", "requestId": request.request_id}
        return "LogStatusNotification", {"status": "Idle"}

    def log_status_of(self, state: Upload, request: LogRequest) -> Message | None:
        """LogStatusNotification of a GetLog upload (1.6 GetDiagnostics: DiagnosticsStatusNotification)."""
        if request.request_id is None:
            status = {Upload.UPLOADING: "Uploading", Upload.UPLOADED: "Uploaded", Upload.FAILED: "UploadFailed"}
            return "DiagnosticsStatusNotification", {"status": status.get(state, "Idle")}
        status = {Upload.UPLOADING: "Uploading", Upload.UPLOADED: "Uploaded", Upload.FAILED: "UploadFailure",
                  Upload.BAD_LOCATION: "BadMessage"}
        return "LogStatusNotification", {"status": status.get(state, "Idle"), "requestId": request.request_id}

    @staticmethod
    def security_event(event: dict[str, str]) -> Message:
        """SecurityEventNotification of a kept event (its type and when it happened): 2.0.1's, and the 1.6
        security whitepaper's."""
        return "SecurityEventNotification", {"type": event["type"], "timestamp": event["timestamp"]}

    @staticmethod
    def data_transfer(vendor_id: str, message_id: str | None, data: str | None) -> Message:
        """DataTransfer."""
        payload: dict[str, Any] = {"vendorId": vendor_id}
        if message_id is not None:
            payload["messageId"] = message_id
        if data is not None:
            payload["data"] = data
        return "DataTransfer", payload

    @staticmethod
    def boot_answer(result: dict[str, Any]) -> tuple[Registration, int, str]:
        """(registration, interval, currentTime)."""
        return REGISTRATIONS[str(result["status"])], int(result["interval"]), str(result["currentTime"])

    @staticmethod
    def heartbeat() -> Message:
        """Heartbeat."""
        return "Heartbeat", {}

    @staticmethod
    def heartbeat_answer(result: dict[str, Any]) -> str:
        """The CSMS's currentTime."""
        return str(result["currentTime"])

    def around(self, event: SessionEdge) -> list[TxMessage]:
        """No transaction message outside a charging session (1.6: a transaction is the session)."""
        return []

    def _expiry(self, text: str | None) -> datetime | None:
        if text is None:
            return None
        try:
            return parse_time(text)
        except ValueError:
            return self.client.clock.utcnow()  # an expiry nobody can read is no proof of validity: expired now


def adapter_for(ocpp_version: str, client: OcppClient) -> VersionAdapter:
    """The adapter of ``ocpp_version`` for ``client``."""
    module, _, name = ADAPTERS[ocpp_version].partition(":")
    adapter: VersionAdapter = getattr(importlib.import_module(module), name)(client)
    return adapter
