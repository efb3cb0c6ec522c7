"""The station's certificates and key: the roots it trusts, its own client certificate, the CSR that renews it.

Kept under ``<state_dir>/certs`` (mode 0700; keys 0600), so only the service user reads them:

- ``csms/*.pem``: CSMS root certificates (1.6 CentralSystemRootCertificate, 2.0.1 CSMSRootCertificate): what a
  ``wss://`` CSMS's certificate must chain to, beside ``ocpp.ca_file``.
- ``manufacturer/*.pem``: manufacturer roots: what a firmware signing certificate must chain to.
- ``station.pem`` / ``station.key``: the station's certificate chain and key (security profile 3), first from
  ``ocpp.client_cert_file`` / ``client_key_file``, later from CertificateSigned; ``pending.key`` is the key of
  the CSR the CSMS has not answered yet.

Certificates are named to the CSMS by OCSP CertID hash data (SHA-256 of the issuer's name and key, the serial).

``cryptography`` is imported by the functions that use it, not with this module: it adds about 8 MB to the daemon's
resident memory, and a station on plain ``ws://`` with no certificate work never needs it.
"""

from __future__ import annotations

import enum
import logging
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cryptography import x509

log = logging.getLogger(__name__)

#: The most certificates a store of roots keeps (1.6 CertificateStoreMaxLength, 2.0.1 CertificateEntries).
MAX_ROOTS = 20


class Kind(enum.Enum):
    """A kind of installed root."""

    CSMS = "csms"
    MANUFACTURER = "manufacturer"


class CertificateProblem(ValueError):
    """A certificate (or chain) the station will not take; the message says why."""


@dataclass(frozen=True)
class HashData:
    """A certificate as the CSMS names it (OCSP CertID fields, SHA-256)."""

    issuer_name_hash: str
    issuer_key_hash: str
    serial_number: str
    hash_algorithm: str = "SHA256"


def hash_data(cert: x509.Certificate, issuer: x509.Certificate | None = None) -> HashData:
    """``cert``'s hash data (``issuer`` None: it is its own, a root)."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509 import ocsp

    request = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer or cert, hashes.SHA256()).build()
    return HashData(request.issuer_name_hash.hex(), request.issuer_key_hash.hex(), f"{cert.serial_number:x}")


def load_chain(pem: str) -> list[x509.Certificate]:
    """Every certificate of a PEM text, in order; CertificateProblem when there is none or one does not parse."""
    from cryptography import x509

    try:
        chain = x509.load_pem_x509_certificates(pem.encode())
    except ValueError as exc:
        raise CertificateProblem(f"not PEM certificates ({exc})") from exc
    if not chain:
        raise CertificateProblem("no certificate in the PEM text")
    return chain


def signed_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    """Whether ``issuer``'s key signed ``cert`` (and names it as the issuer)."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

    if cert.issuer != issuer.subject:
        return False
    key = issuer.public_key()
    try:
        if isinstance(key, rsa.RSAPublicKey):
            assert cert.signature_hash_algorithm is not None
            key.verify(cert.signature, cert.tbs_certificate_bytes, padding.PKCS1v15(), cert.signature_hash_algorithm)
        elif isinstance(key, ec.EllipticCurvePublicKey):
            assert cert.signature_hash_algorithm is not None
            key.verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(cert.signature_hash_algorithm))
        else:
            return False
    except InvalidSignature:
        return False
    return True


def reaches(cert: x509.Certificate, intermediates: list[x509.Certificate], roots: list[x509.Certificate]) -> bool:
    """Whether ``cert`` leads, through ``intermediates``, to a certificate of ``roots`` that signed the last step."""
    current: x509.Certificate | None = cert
    for _ in range(len(intermediates) + 1):
        step = current
        if step is None:
            return False
        if any(signed_by(step, root) for root in roots):
            return True
        current = next((c for c in intermediates if c is not step and signed_by(step, c)), None)
    return False


def _pem(cert: x509.Certificate) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return cert.public_bytes(serialization.Encoding.PEM)


def valid_now(cert: x509.Certificate, now: datetime | None = None) -> bool:
    """Whether ``now`` (the station's UTC time) lies within the certificate's validity."""
    moment = now or datetime.now(UTC)
    return cert.not_valid_before_utc <= moment <= cert.not_valid_after_utc


class CertificateStore:
    """The installed roots, the station's certificate and key, on disk with modes only the owner reads."""

    def __init__(self, state_dir: Path, *, client_cert_file: str = "", client_key_file: str = "") -> None:
        self.root = Path(state_dir) / "certs"
        for folder in (self.root, *(self.root / k.value for k in Kind)):
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            os.chmod(folder, 0o700)
        self.station_cert = self.root / "station.pem"
        self.station_key = self.root / "station.key"
        self._pending_key = self.root / "pending.key"
        if client_cert_file and not self.station_cert.exists():
            # The provisioned certificate is the first; one the CSMS signs later replaces it here.
            self._write(self.station_cert, Path(client_cert_file).read_bytes(), 0o644)
            self._write(self.station_key, Path(client_key_file).read_bytes(), 0o600)

    # ----------------------------------------------------------------- roots

    def roots(self, kind: Kind) -> list[x509.Certificate]:
        """The installed roots of ``kind``, oldest first."""
        found = []
        for path in sorted((self.root / kind.value).glob("*.pem"), key=lambda p: (p.stat().st_mtime, p.name)):
            try:
                found.extend(load_chain(path.read_text()))
            except (OSError, CertificateProblem) as exc:
                log.error("installed certificate %s cannot be read (%s); it is ignored", path, exc)
        return found

    def roots_pem(self, kind: Kind) -> str:
        """The installed roots of ``kind`` as one PEM text ("" when none)."""
        return "".join(_pem(c).decode() for c in self.roots(kind))

    def install(self, kind: Kind, pem: str, now: datetime) -> None:
        """Install a root; CertificateProblem when it is not one the station will trust."""
        chain = load_chain(pem)
        if len(chain) != 1:
            raise CertificateProblem(f"{len(chain)} certificates: a root is installed alone")
        cert = chain[0]
        if not valid_now(cert, now):
            raise CertificateProblem(f"not valid now (valid {cert.not_valid_before_utc:%Y-%m-%d} to "
                                     f"{cert.not_valid_after_utc:%Y-%m-%d})")
        if not signed_by(cert, cert):
            raise CertificateProblem("not self-signed: only root certificates are installed")
        data = hash_data(cert)
        if any(hash_data(c) == data for c in self.roots(kind)):
            return  # already there: installing it again changes nothing
        if sum(len(self.roots(k)) for k in Kind) >= MAX_ROOTS:
            raise CertificateProblem(f"{MAX_ROOTS} roots are installed, the most this station keeps")
        self._write(self.root / kind.value / f"{data.serial_number}-{data.issuer_key_hash[:16]}.pem",
                    _pem(cert), 0o644)
        log.info("%s root installed: %s", kind.value, cert.subject.rfc4514_string())

    def installed(self, kinds: list[Kind] | None = None) -> list[tuple[Kind, HashData]]:
        """The hash data of every installed root (of ``kinds``)."""
        return [(kind, hash_data(cert)) for kind in (kinds or list(Kind)) for cert in self.roots(kind)]

    def delete(self, data: HashData) -> Kind | None:
        """Delete the root with this hash data; the kind it was, or None when none matches."""
        for kind in Kind:
            for path in (self.root / kind.value).glob("*.pem"):
                try:
                    chain = load_chain(path.read_text())
                except (OSError, CertificateProblem):
                    continue
                if hash_data(chain[0]) == data:
                    path.unlink()
                    log.info("%s root deleted: %s", kind.value, chain[0].subject.rfc4514_string())
                    return kind
        return None

    # ------------------------------------------------------------ the station

    def has_client_certificate(self) -> bool:
        """Whether the station has a certificate and key for security profile 3."""
        return self.station_cert.exists() and self.station_key.exists()

    def client_certificate(self) -> x509.Certificate | None:
        """The station's own certificate (the first of its chain), or None."""
        if not self.station_cert.exists():
            return None
        return load_chain(self.station_cert.read_text())[0]

    def csr(self, common_name: str, organization: str) -> str:
        """A new key (EC P-256, kept as pending) and a PEM CSR for it, CN the station's identity."""
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        key = ec.generate_private_key(ec.SECP256R1())
        names = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
        if organization:
            names.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
        request = x509.CertificateSigningRequestBuilder().subject_name(x509.Name(names)).sign(key, hashes.SHA256())
        self._write(self._pending_key, key.private_bytes(serialization.Encoding.PEM,
                                                         serialization.PrivateFormat.PKCS8,
                                                         serialization.NoEncryption()), 0o600)
        return request.public_bytes(serialization.Encoding.PEM).decode()

    def accept_signed(self, pem: str, now: datetime, *, max_chain: int = 10_000,
                      trusted: list[x509.Certificate] | None = None) -> None:
        """CertificateSigned: take the chain for the pending key; CertificateProblem when it is not usable (no CSR
        pending, not for that key, not valid now, or not leading through the chain it came with to a CSMS root or
        one of ``trusted``, the configured CA file's)."""
        from cryptography.hazmat.primitives import serialization

        if len(pem) > max_chain:
            raise CertificateProblem(f"a chain of {len(pem)} characters, more than CertificateSignedMaxChainSize")
        if not self._pending_key.exists():
            raise CertificateProblem("no certificate signing request is pending")
        chain = load_chain(pem)
        key = serialization.load_pem_private_key(self._pending_key.read_bytes(), None)
        leaf = chain[0]
        if leaf.public_key().public_bytes(serialization.Encoding.DER,
                                          serialization.PublicFormat.SubjectPublicKeyInfo) != key.public_key(
        ).public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo):
            raise CertificateProblem("the certificate is not for the key of the pending request")
        if not valid_now(leaf, now):
            raise CertificateProblem("the certificate is not valid now")
        if not reaches(leaf, chain[1:], self.roots(Kind.CSMS) + (trusted or [])):
            raise CertificateProblem("its chain does not lead to an installed CSMS root or the configured CA")
        self._write(self.station_cert, pem.encode(), 0o644)
        self._pending_key.replace(self.station_key)
        log.info("new station certificate: %s, valid to %s", leaf.subject.rfc4514_string(),
                 f"{leaf.not_valid_after_utc:%Y-%m-%d}")

    @staticmethod
    def _write(path: Path, data: bytes, mode: int) -> None:
        # Written beside, then renamed: a power cut leaves the old file or the new one, never half of one.
        temporary = path.with_suffix(path.suffix + ".new")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.chmod(temporary, mode)
        temporary.replace(path)
