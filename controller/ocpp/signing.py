"""Firmware signatures (1.6 SignedUpdateFirmware, 2.0.1 L01): is this image the manufacturer's, unchanged?

The signing certificate must be valid now and lead to an installed manufacturer root (InvalidCertificate
otherwise); the signature, base64 of a DER ECDSA or an RSA PKCS#1 v1.5 signature over the image's SHA-256 (what
``openssl dgst -sha256 -sign`` makes), must verify with its key (InvalidSignature otherwise).

Imported when a signed update arrives (see :mod:`controller.ocpp.certificates` on ``cryptography``'s memory).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from datetime import datetime

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID

from controller.ocpp.certificates import CertificateProblem, load_chain, reaches, valid_now


class ImageRefused(Exception):
    """An image that must not be installed; ``status`` is the notification's word for why."""

    def __init__(self, status: str, reason: str) -> None:
        super().__init__(reason)
        self.status = status


INVALID_CERTIFICATE, INVALID_SIGNATURE = "InvalidCertificate", "InvalidSignature"


def check_signer(signing_certificate: str, roots: list[x509.Certificate], now: datetime) -> x509.Certificate:
    """The signing certificate, when it is valid now and leads to an installed manufacturer root; raises
    :class:`ImageRefused` (InvalidCertificate) otherwise."""
    try:
        chain = load_chain(signing_certificate)
    except CertificateProblem as exc:
        raise ImageRefused(INVALID_CERTIFICATE, f"signing certificate: {exc}") from exc
    signer = chain[0]
    if not valid_now(signer, now):
        raise ImageRefused(INVALID_CERTIFICATE, "the signing certificate is not valid now")
    for intermediate in chain[1:]:
        if not valid_now(intermediate, now) or not _is_ca(intermediate):
            raise ImageRefused(INVALID_CERTIFICATE, f"{intermediate.subject.rfc4514_string()} in the signing chain "
                                                    "is not a CA certificate valid now")
    if not _may_sign_code(signer):
        raise ImageRefused(INVALID_CERTIFICATE, "the signing certificate's key usage does not allow signing code")
    if not reaches(signer, chain[1:], roots):
        raise ImageRefused(INVALID_CERTIFICATE, "the signing certificate does not lead to an installed "
                                                "ManufacturerRootCertificate")
    return signer


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def _may_sign_code(cert: x509.Certificate) -> bool:
    """No key usage or extended key usage that rules signing firmware out (a TLS server certificate does)."""
    try:
        if not cert.extensions.get_extension_for_class(x509.KeyUsage).value.digital_signature:
            return False
    except x509.ExtensionNotFound:
        pass
    try:
        usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return True
    return ExtendedKeyUsageOID.CODE_SIGNING in usages or ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE in usages


def verify_image(image: bytes, signature: str, signing_certificate: str, roots: list[x509.Certificate],
                 now: datetime) -> str:
    """Check a signed image; returns its SHA-256 (hex) or raises :class:`ImageRefused`."""
    signer = check_signer(signing_certificate, roots, now)
    try:
        raw = base64.b64decode(signature, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ImageRefused(INVALID_SIGNATURE, "the signature is not base64") from exc
    key = signer.public_key()
    try:
        if isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(raw, image, ec.ECDSA(hashes.SHA256()))
        elif isinstance(key, rsa.RSAPublicKey):
            key.verify(raw, image, padding.PKCS1v15(), hashes.SHA256())
        else:
            raise ImageRefused(INVALID_CERTIFICATE, "the signing key is neither EC nor RSA")
    except InvalidSignature as exc:
        raise ImageRefused(INVALID_SIGNATURE, "the signature does not match the image") from exc
    return hashlib.sha256(image).hexdigest()


def sign_image(image: bytes, key_pem: bytes) -> str:
    """The signature a CSMS sends with ``image``: base64 of ECDSA or RSA PKCS#1 v1.5 over its SHA-256, made with
    the manufacturer's signing key (PEM, unencrypted)."""
    key = serialization.load_pem_private_key(key_pem, None)
    if isinstance(key, ec.EllipticCurvePrivateKey):
        raw = key.sign(image, ec.ECDSA(hashes.SHA256()))
    elif isinstance(key, rsa.RSAPrivateKey):
        raw = key.sign(image, padding.PKCS1v15(), hashes.SHA256())
    else:
        raise ValueError("the signing key is neither EC nor RSA")
    return base64.b64encode(raw).decode()
