"""Security for every OCPP version: certificate management and the security profile, in the station's words.

The 1.6 security whitepaper's messages and 2.0.1's A and M blocks (those a station without ISO 15118 uses) come
here through the adapters: InstallCertificate, GetInstalledCertificateIds, DeleteCertificate (M03-M05),
SignCertificate / CertificateSigned (A02/A03: a CSR made here, the signed chain checked and used from the next
connection), and raising the security profile (1.6 SecurityProfile key; 2.0.1 A05 goes through network profiles).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from controller.domain.types import Answer
from controller.ocpp import device_model as dm
from controller.ocpp.certificates import CertificateProblem, HashData, Kind, load_chain
from controller.ocpp.network import NetworkProfile, profile_problem

if TYPE_CHECKING:
    from controller.ocpp.client import OcppClient

log = logging.getLogger(__name__)

#: CertificateSignedMaxChainSize (characters of the PEM chain).
MAX_CHAIN = 10_000
#: The slot a 1.6 SecurityProfile raise keeps its new profile in (2.0.1's SetNetworkProfile uses 2-8 too, but a
#: station speaks one version).
RAISED_SLOT = 8


class Security:
    """Certificates and the security profile of one station."""

    def __init__(self, client: OcppClient) -> None:
        self.client = client
        self.store = client.certificates

    # ------------------------------------------------------------ certificates

    def install(self, kind: Kind, pem: str) -> Answer:
        """InstallCertificate: ACCEPTED, REJECTED (not a usable root) or FAILED (it could not be kept)."""
        try:
            self.store.install(kind, pem, self.client.clock.utcnow())
        except CertificateProblem as exc:
            log.info("InstallCertificate (%s) refused: %s", kind.value, exc)
            return Answer.REJECTED
        except OSError as exc:
            log.error("InstallCertificate (%s) could not be kept: %s", kind.value, exc)
            return Answer.FAILED
        return Answer.ACCEPTED

    def installed(self, kinds: list[Kind] | None = None) -> list[tuple[Kind, HashData]]:
        """GetInstalledCertificateIds: the installed roots (of ``kinds``)."""
        return self.store.installed(kinds)

    def delete(self, data: HashData) -> Answer:
        """DeleteCertificate: ACCEPTED, REJECTED (none matches: NotFound) or FAILED (the last CSMS root while the
        connection depends on it: deleting it would lock the station out)."""
        found = [(kind, h) for kind, h in self.store.installed() if h == data]
        if not found:
            return Answer.REJECTED
        tls = self.client.network.active.security_profile >= 2 and not self.client.config.ocpp.ca_file
        if found[0][0] == Kind.CSMS and tls and len(self.store.roots(Kind.CSMS)) == 1:
            log.info("DeleteCertificate refused: the last CSMS root, which the TLS connection relies on")
            return Answer.FAILED
        self.store.delete(data)
        return Answer.ACCEPTED

    def sign_request(self) -> None:
        """A CSR for a new station certificate, sent in SignCertificate (after the trigger's answer)."""
        csr = self.store.csr(self.client.model.get(dm.IDENTITY), self.client.model.get(dm.ORGANIZATION_NAME))
        self.client.spawn(self._send_csr(csr))

    async def _send_csr(self, csr: str) -> None:
        answer = await self.client.send(self.client.adapter.sign_certificate(csr))
        status = (answer or {}).get("status")
        log.info("SignCertificate answered %s", status)

    def signed(self, pem: str) -> Answer:
        """CertificateSigned: ACCEPTED (used from the next connection, which follows at once with profile 3) or
        REJECTED (a security event says so)."""
        try:
            ca_file = self.client.config.ocpp.ca_file
            trusted = load_chain(Path(ca_file).read_text()) if ca_file else []
            self.store.accept_signed(pem, self.client.clock.utcnow(), max_chain=MAX_CHAIN, trusted=trusted)
        except (CertificateProblem, ValueError, OSError) as exc:
            log.warning("CertificateSigned refused: %s", exc)
            self.client.security_event(self.client.adapter.invalid_station_certificate)
            return Answer.REJECTED
        if self.client.network.active.security_profile >= 3:
            self.client.link.reconnect()
        return Answer.ACCEPTED

    # --------------------------------------------------------- the security profile

    def raise_profile(self, value: str) -> Answer:
        """1.6 ChangeConfiguration SecurityProfile: ACCEPTED (the station reconnects with it, and falls back to
        the one before when it cannot connect), REJECTED (lower, or its prerequisites missing)."""
        client = self.client
        current = client.network.active
        if not value.strip().isdigit():
            return Answer.REJECTED
        wanted = int(value)
        if wanted == current.security_profile:
            return Answer.ACCEPTED
        url = _with_scheme(current.url, "wss" if wanted >= 2 else "ws")
        problem = profile_problem(url, wanted, current=current.security_profile,
                                  has_password=bool(client.model.get(dm.BASIC_AUTH_PASSWORD)),
                                  has_client_certificate=self.store.has_client_certificate())
        if problem is None and wanted >= 2 and not (client.config.ocpp.ca_file or self.store.roots(Kind.CSMS)):
            problem = "no CentralSystemRootCertificate is installed to check the CSMS's certificate with"
        if problem is not None:
            log.info("SecurityProfile %d refused: %s", wanted, problem)
            return Answer.REJECTED
        client.network.put(NetworkProfile(RAISED_SLOT, url, wanted, current.message_timeout))
        client.network.prefer(RAISED_SLOT, fallback=current.slot)
        log.warning("security profile %d accepted: reconnecting to %s with it", wanted, url)
        client.link.reconnect()
        return Answer.ACCEPTED


def _with_scheme(url: str, scheme: str) -> str:
    return scheme + "://" + url.split("://", 1)[-1]


def hash_data_from(data: dict[str, Any]) -> HashData:
    """Hash data as the ``ocpp`` package hands it over (snake_case)."""
    return HashData(str(data["issuer_name_hash"]).lower(), str(data["issuer_key_hash"]).lower(),
                    str(data["serial_number"]).lower().lstrip("0") or "0", str(data["hash_algorithm"]))


def hash_data_payload(data: HashData) -> dict[str, str]:
    """Hash data as the wire spells it."""
    return {"hashAlgorithm": data.hash_algorithm, "issuerNameHash": data.issuer_name_hash,
            "issuerKeyHash": data.issuer_key_hash, "serialNumber": data.serial_number}
