"""A bench PKI: a CA made on the spot, the certificates a TLS CSMS and its stations need, and a CSR signer.

For security profile 2 and 3 on the bench (and the tests): a CSMS certificate for 127.0.0.1, station client
certificates (valid, expired, revoked with a CRL that says so), and the CSMS's side of SignCertificate.
"""

from __future__ import annotations

import datetime
import ipaddress
import itertools
import ssl
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from controller.ocpp.signing import sign_image

_DAY = datetime.timedelta(days=1)


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


@dataclass
class BenchCa:
    """A CA whose files live in ``folder`` (ca.pem; everything it issues is written beside it)."""

    folder: Path
    name: str = "bench CA"
    key: ec.EllipticCurvePrivateKey = field(default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))
    revoked: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        now = datetime.datetime.now(datetime.UTC)
        self.subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, self.name)])
        self._serials = itertools.count(2)
        self.cert = (x509.CertificateBuilder().subject_name(self.subject).issuer_name(self.subject)
                     .public_key(self.key.public_key()).serial_number(1).not_valid_before(now - _DAY)
                     .not_valid_after(now + 30 * _DAY)
                     .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                     .sign(self.key, hashes.SHA256()))
        self.ca_file = self.folder / "ca.pem"
        self.ca_file.write_bytes(_pem(self.cert))

    @property
    def pem(self) -> str:
        """The CA certificate (what InstallCertificate carries)."""
        return _pem(self.cert).decode()

    def issue(self, common_name: str, public_key: ec.EllipticCurvePublicKey, *, days: float = 30,
              server: bool = False, expired: bool = False) -> x509.Certificate:
        """A certificate for ``public_key`` (``server``: with 127.0.0.1 as its address)."""
        now = datetime.datetime.now(datetime.UTC)
        start, end = (now - 3 * _DAY, now - _DAY) if expired else (now - _DAY, now + days * _DAY)
        builder = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME,
                                                                                         common_name)]))
                   .issuer_name(self.subject).public_key(public_key).serial_number(next(self._serials))
                   .not_valid_before(start).not_valid_after(end))
        if server:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        return builder.sign(self.key, hashes.SHA256())

    def pair(self, stem: str, common_name: str, **kinds: bool) -> tuple[Path, Path]:
        """A new key and a certificate for it, as ``<stem>.pem`` and ``<stem>.key`` files."""
        key = ec.generate_private_key(ec.SECP256R1())
        cert = self.issue(common_name, key.public_key(), **kinds)
        paths = self.folder / f"{stem}.pem", self.folder / f"{stem}.key"
        paths[0].write_bytes(_pem(cert))
        paths[1].write_bytes(_key_pem(key))
        return paths

    def sign_csr(self, csr_pem: str) -> str:
        """The CSMS's side of SignCertificate: a certificate for the CSR's key and subject, with this CA."""
        csr = x509.load_pem_x509_csr(csr_pem.encode())
        if not csr.is_signature_valid:
            raise ValueError("the CSR's signature does not verify")
        key = csr.public_key()
        assert isinstance(key, ec.EllipticCurvePublicKey)
        common_name = csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
        return _pem(self.issue(str(common_name), key)).decode()

    def sign_image(self, image: bytes, key_file: Path) -> str:
        """A firmware signature as SignedUpdateFirmware carries it: base64 of ECDSA/SHA-256 over ``image``."""
        return sign_image(image, key_file.read_bytes())

    def revoke(self, cert_file: Path) -> None:
        """Put a certificate this CA issued on its CRL."""
        self.revoked.append(x509.load_pem_x509_certificate(cert_file.read_bytes()).serial_number)

    def server_context(self, client_certificates: ssl.VerifyMode = ssl.CERT_NONE) -> ssl.SSLContext:
        """A TLS server context for a CSMS on 127.0.0.1. ``client_certificates`` CERT_REQUIRED: security profile 3
        only; CERT_OPTIONAL: profile 2 too, but a certificate shown must pass (this CA and its CRL)."""
        cert, key = self.pair("csms", "127.0.0.1", server=True)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)
        if client_certificates != ssl.CERT_NONE:
            context.verify_mode = client_certificates
            context.load_verify_locations(cadata=self.pem)
            now = datetime.datetime.now(datetime.UTC)
            crl = x509.CertificateRevocationListBuilder().issuer_name(self.subject).last_update(now - _DAY) \
                .next_update(now + _DAY)
            for serial in self.revoked:
                crl = crl.add_revoked_certificate(x509.RevokedCertificateBuilder().serial_number(serial)
                                                  .revocation_date(now - _DAY).build())
            # A CRL loads from a file (OpenSSL reads certificates and CRLs there; cadata takes certificates only).
            crl_file = self.folder / "crl.pem"
            crl_file.write_bytes(crl.sign(self.key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM))
            context.load_verify_locations(cafile=crl_file)
            context.verify_flags |= ssl.VERIFY_CRL_CHECK_LEAF
        return context
