"""OCPP 2.0.1 certificate management without ISO 15118: M03-M05 and A02/A03.

:class:`SecurityHandlers201` is mixed into the 2.0.1 charge point; the rules are :mod:`controller.ocpp.security`'s.
V2G and MO roots (ISO 15118) are refused: this station has no ISO 15118 stack to use them.
"""

from __future__ import annotations

import logging
from typing import Any

from ocpp.routing import on
from ocpp.v201 import call_result
from ocpp.v201.enums import Action

from controller.domain.types import Answer
from controller.ocpp.certificates import Kind
from controller.ocpp.commands import Commands
from controller.ocpp.security import hash_data_from, hash_data_payload

log = logging.getLogger(__name__)

KINDS = {"CSMSRootCertificate": Kind.CSMS, "ManufacturerRootCertificate": Kind.MANUFACTURER}
_NAMES = {v: k for k, v in KINDS.items()}
_CHECKED = {"skip_schema_validation": True}  # framing.py checked it


def _info(reason: str, detail: str) -> dict[str, str]:
    return {"reason_code": reason, "additional_info": detail[:512]}


class SecurityHandlers201:
    """Certificate management of one 2.0.1 connection."""

    commands: Commands

    @on(Action.install_certificate, **_CHECKED)
    def on_install_certificate(self, certificate_type: str, certificate: str, **_: Any) -> Any:
        kind = KINDS.get(certificate_type)
        if kind is None:
            return call_result.InstallCertificate(status="Rejected", status_info=_info(
                "UnsupportedCertType", f"{certificate_type}: this station has no ISO 15118"))
        answer = self.commands.security.install(kind, certificate)
        status = {Answer.ACCEPTED: "Accepted", Answer.FAILED: "Failed"}.get(answer, "Rejected")
        return call_result.InstallCertificate(status=status)

    @on(Action.get_installed_certificate_ids, **_CHECKED)
    def on_get_installed_certificate_ids(self, certificate_type: list[str] | None = None, **_: Any) -> Any:
        kinds = [KINDS[t] for t in certificate_type or [] if t in KINDS]
        if certificate_type and not kinds:
            return call_result.GetInstalledCertificateIds(status="NotFound")
        found = self.commands.security.installed(kinds or None)
        if not found:
            return call_result.GetInstalledCertificateIds(status="NotFound")
        return call_result.GetInstalledCertificateIds(status="Accepted", certificate_hash_data_chain=[
            {"certificateType": _NAMES[kind], "certificateHashData": hash_data_payload(data)} for kind, data in found])

    @on(Action.delete_certificate, **_CHECKED)
    def on_delete_certificate(self, certificate_hash_data: dict[str, Any], **_: Any) -> Any:
        answer = self.commands.security.delete(hash_data_from(certificate_hash_data))
        status = {Answer.ACCEPTED: "Accepted", Answer.FAILED: "Failed"}.get(answer, "NotFound")
        return call_result.DeleteCertificate(status=status)

    @on(Action.certificate_signed, **_CHECKED)
    def on_certificate_signed(self, certificate_chain: str, certificate_type: str | None = None, **_: Any) -> Any:
        if certificate_type not in (None, "ChargingStationCertificate"):
            return call_result.CertificateSigned(status="Rejected", status_info=_info(
                "UnsupportedCertType", f"{certificate_type}: this station has no ISO 15118"))
        answer = self.commands.security.signed(certificate_chain)
        return call_result.CertificateSigned(status="Accepted" if answer == Answer.ACCEPTED else "Rejected")
