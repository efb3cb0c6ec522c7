"""The 1.6 security whitepaper's requests: certificates (M03-M05, A02/A03) and ExtendedTriggerMessage.

:class:`SecurityHandlers16` is mixed into the 1.6 charge point; the rules are :mod:`controller.ocpp.security`'s.
"""

from __future__ import annotations

import logging
from typing import Any

from ocpp.routing import after, on
from ocpp.v16 import call_result
from ocpp.v16.enums import Action

from controller.domain.types import Answer
from controller.ocpp.certificates import Kind
from controller.ocpp.commands import Commands, Trigger
from controller.ocpp.security import hash_data_from, hash_data_payload

log = logging.getLogger(__name__)

KINDS = {"CentralSystemRootCertificate": Kind.CSMS, "ManufacturerRootCertificate": Kind.MANUFACTURER}
_NAMES = {v: k for k, v in KINDS.items()}
_CHECKED = {"skip_schema_validation": True}  # framing.py checked it
#: ExtendedTriggerMessage's messages.
_EXTENDED = {"BootNotification": Trigger.BOOT, "Heartbeat": Trigger.HEARTBEAT, "StatusNotification": Trigger.STATUS,
             "MeterValues": Trigger.METER_VALUES, "FirmwareStatusNotification": Trigger.SIGNED_FIRMWARE_STATUS,
             "LogStatusNotification": Trigger.LOG_STATUS, "SignChargePointCertificate": Trigger.SIGN_CERTIFICATE}


class SecurityHandlers16:
    """Certificate management and ExtendedTriggerMessage of one 1.6 connection."""

    commands: Commands

    @on(Action.install_certificate, **_CHECKED)
    def on_install_certificate(self, certificate_type: str, certificate: str, **_: Any) -> Any:
        answer = self.commands.security.install(KINDS[certificate_type], certificate)
        status = {Answer.ACCEPTED: "Accepted", Answer.FAILED: "Failed"}.get(answer, "Rejected")
        return call_result.InstallCertificate(status=status)

    @on(Action.get_installed_certificate_ids, **_CHECKED)
    def on_get_installed_certificate_ids(self, certificate_type: str, **_: Any) -> Any:
        found = self.commands.security.installed([KINDS[certificate_type]])
        if not found:
            return call_result.GetInstalledCertificateIds(status="NotFound")
        return call_result.GetInstalledCertificateIds(
            status="Accepted", certificate_hash_data=[hash_data_payload(data) for _, data in found])

    @on(Action.delete_certificate, **_CHECKED)
    def on_delete_certificate(self, certificate_hash_data: dict[str, Any], **_: Any) -> Any:
        answer = self.commands.security.delete(hash_data_from(certificate_hash_data))
        status = {Answer.ACCEPTED: "Accepted", Answer.FAILED: "Failed"}.get(answer, "NotFound")
        return call_result.DeleteCertificate(status=status)

    @on(Action.certificate_signed, **_CHECKED)
    def on_certificate_signed(self, certificate_chain: str, **_: Any) -> Any:
        answer = self.commands.security.signed(certificate_chain)
        return call_result.CertificateSigned(status="Accepted" if answer == Answer.ACCEPTED else "Rejected")

    @on(Action.extended_trigger_message, **_CHECKED)
    def on_extended_trigger_message(self, requested_message: str, connector_id: int | None = None,
                                    **_: Any) -> Any:
        what = _EXTENDED.get(requested_message)
        if what is None:
            return call_result.ExtendedTriggerMessage(status="NotImplemented")
        ok = self.commands.trigger(what, connector_id) == Answer.ACCEPTED
        return call_result.ExtendedTriggerMessage(status="Accepted" if ok else "Rejected")

    @after(Action.extended_trigger_message)
    def after_extended_trigger_message(self, requested_message: str, connector_id: int | None = None,
                                       **_: Any) -> None:
        what = _EXTENDED.get(requested_message)
        if what is not None and self.commands.trigger(what, connector_id) == Answer.ACCEPTED:
            self.commands.after_trigger(what, connector_id)
