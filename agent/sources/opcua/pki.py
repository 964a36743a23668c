"""Certificates for OPC UA: the client's application instance certificate, and the trust list of servers.

Trust is explicit: a server certificate is accepted only when its DER bytes are in ``trust_dir`` (a pinned
self-signed certificate) or it was issued by a CA certificate found there, and it is within its validity period.
Nothing is trusted because a server presented it (no trust on first use); ``energy-agent opcua trust`` pins what a
server showed only when a technician asks for it during commissioning.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import socket
from dataclasses import dataclass
from pathlib import Path

from asyncua.crypto import cert_gen
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID

_CERT_SUFFIXES = (".der", ".pem", ".crt", ".cer")


def load_certificate(path: Path) -> x509.Certificate:
    data = path.read_bytes()
    if b"-----BEGIN" in data:
        return x509.load_pem_x509_certificate(data)
    return x509.load_der_x509_certificate(data)


def der_of(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(Encoding.DER)


def thumbprint(cert: x509.Certificate) -> str:
    """SHA-256 of the DER bytes, as colon-separated hex (what a technician compares with the server's screen)."""
    digest = hashlib.sha256(der_of(cert)).hexdigest().upper()
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


def application_uri_of(cert: x509.Certificate) -> str | None:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return None
    uris = san.get_values_for_type(x509.UniformResourceIdentifier)
    return uris[0] if uris else None


def describe(cert: x509.Certificate) -> str:
    """One line a technician can check: subject, application URI, validity, SHA-256 thumbprint."""
    return (
        f"subject {cert.subject.rfc4514_string()}, application URI {application_uri_of(cert)}, "
        f"valid {cert.not_valid_before_utc:%Y-%m-%d} to {cert.not_valid_after_utc:%Y-%m-%d}, "
        f"SHA-256 {thumbprint(cert)}"
    )


@dataclass(frozen=True, slots=True)
class TrustDecision:
    trusted: bool
    why: str


def trust_list(trust_dir: Path) -> list[x509.Certificate]:
    """Every certificate in the folder (DER or PEM); unreadable files are skipped."""
    certs: list[x509.Certificate] = []
    if not trust_dir.is_dir():
        return certs
    for path in sorted(trust_dir.iterdir()):
        if path.suffix.lower() not in _CERT_SUFFIXES or not path.is_file():
            continue
        try:
            certs.append(load_certificate(path))
        except (OSError, ValueError):
            continue
    return certs


def check_trusted(cert: x509.Certificate, trust_dir: Path, now: dt.datetime | None = None) -> TrustDecision:
    """Is this server certificate in the trust list (pinned, or issued by a trusted CA) and valid now?"""
    now = now or dt.datetime.now(dt.UTC)
    if cert.not_valid_after_utc < now or cert.not_valid_before_utc > now:
        return TrustDecision(
            False,
            f"certificate is outside its validity ({cert.not_valid_before_utc:%Y-%m-%d} to "
            f"{cert.not_valid_after_utc:%Y-%m-%d})",
        )
    der = der_of(cert)
    trusted = trust_list(trust_dir)
    for candidate in trusted:
        if der_of(candidate) == der:
            return TrustDecision(True, "pinned in the trust list")
    for ca in trusted:
        try:
            basic = ca.extensions.get_extension_for_class(x509.BasicConstraints).value
        except x509.ExtensionNotFound:
            continue
        if not basic.ca or ca.subject != cert.issuer:
            continue
        try:
            cert.verify_directly_issued_by(ca)
        except Exception:  # any verification failure (signature, key type) means "not issued by this CA"
            continue
        return TrustDecision(True, f"issued by trusted CA {ca.subject.rfc4514_string()}")
    return TrustDecision(False, f"not in the trust list {trust_dir} ({len(trusted)} certificates there)")


def pin(cert: x509.Certificate, trust_dir: Path, name: str) -> Path:
    """Write the certificate into the trust list (DER), named after ``name`` and its thumbprint."""
    trust_dir.mkdir(parents=True, exist_ok=True)
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)[:60]
    path = trust_dir / f"{safe}-{thumbprint(cert).replace(':', '')[:16].lower()}.der"
    path.write_bytes(der_of(cert))
    return path


def default_application_uri(hostname: str | None = None) -> str:
    return f"urn:{hostname or socket.gethostname()}:energy-agent"


def make_application_certificate(
    cert_path: Path,
    key_path: Path,
    application_uri: str,
    hostname: str | None = None,
    days: int = 730,
    server: bool = False,
    common_name: str = "energy-agent",
) -> x509.Certificate:
    """Create a self-signed application instance certificate (DER) and its key (PEM, file mode 0600).

    The URI goes into the SubjectAltName, where servers check it against the client's ApplicationUri.
    """
    host = hostname or socket.gethostname()
    key = cert_gen.generate_private_key()
    usage = (
        [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
        if server
        else [ExtendedKeyUsageOID.CLIENT_AUTH]
    )
    cert = cert_gen.generate_self_signed_app_certificate(
        key,
        common_name,
        {},
        [x509.UniformResourceIdentifier(application_uri), x509.DNSName(host)],
        extended=usage,
        days=days,
    )
    key_path.parent.mkdir(parents=True, exist_ok=True)
    cert_path.parent.mkdir(parents=True, exist_ok=True)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    os.chmod(key_path, 0o600)  # O_CREAT's mode does not apply to an existing file
    cert_path.write_bytes(der_of(cert))
    return cert
