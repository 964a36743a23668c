"""mosquitto with what a production broker has: persistence, TLS with client certificates, passwords, ACLs.

Certificates are made with ``cryptography`` (a CA, a server certificate for 127.0.0.1/localhost, client
certificates); the password file with Debian's ``mosquitto_passwd``. Everything lives in the test's tmp dir.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.servers.mosquitto import mosquitto
from tests.servers.process import ServerProcess


def _as_root() -> str:
    # mosquitto started as root drops to the "mosquitto" user, which cannot enter pytest's 0700 tmp dirs.
    return "user root\n" if os.geteuid() == 0 else ""


def persistent_mosquitto(workdir: Path, extra_conf: str = "", port: int | None = None) -> ServerProcess:
    """A broker that saves sessions and queued QoS 1 messages on a clean stop and restores them on start, so a
    subscriber with a persistent session misses nothing across a broker restart."""
    data = workdir / "data"
    data.mkdir(parents=True, exist_ok=True)
    conf = f"{_as_root()}persistence true\npersistence_location {data}/\n" + extra_conf
    return mosquitto(workdir, conf, port=port)


@dataclass(frozen=True)
class Pki:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    other_ca: Path  # a CA nobody used: a client trusting only this one must refuse the broker


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> Path:
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return path


def _cert(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: x509.Name | None,
    issuer_key: ec.EllipticCurvePrivateKey,
    *,
    ca: bool = False,
    server: bool = False,
) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer or name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
    else:
        usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
    return builder.sign(issuer_key, hashes.SHA256())


def _write_cert(cert: x509.Certificate, path: Path) -> Path:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


def make_pki(folder: Path, client_cn: str = "gw1") -> Pki:
    folder.mkdir(parents=True, exist_ok=True)
    ca_key = _key()
    ca = _cert("test-ca", ca_key, None, ca_key, ca=True)
    server_key = _key()
    client_key = _key()
    other_key = _key()
    return Pki(
        ca=_write_cert(ca, folder / "ca.pem"),
        server_cert=_write_cert(_cert("broker", server_key, ca.subject, ca_key, server=True), folder / "server.pem"),
        server_key=_write_key(server_key, folder / "server.key"),
        client_cert=_write_cert(_cert(client_cn, client_key, ca.subject, ca_key), folder / "client.pem"),
        client_key=_write_key(client_key, folder / "client.key"),
        other_ca=_write_cert(_cert("other-ca", other_key, None, other_key, ca=True), folder / "other-ca.pem"),
    )


def tls_listener_conf(pki: Pki, port: int, require_certificate: bool = True) -> str:
    """A second listener with TLS; ``use_identity_as_username`` makes the client certificate's CN the user."""
    lines = [
        f"listener {port} 127.0.0.1",
        f"cafile {pki.ca}",
        f"certfile {pki.server_cert}",
        f"keyfile {pki.server_key}",
        f"require_certificate {'true' if require_certificate else 'false'}",
    ]
    if require_certificate:
        lines.append("use_identity_as_username true")
    return _as_root() + "\n".join(lines) + "\n"


def password_file(folder: Path, users: dict[str, str]) -> Path:
    """A mosquitto password file made by mosquitto_passwd (hashed, as in production)."""
    tool = shutil.which("mosquitto_passwd")
    if tool is None:
        pytest.skip("mosquitto_passwd is not installed: it comes with Debian's mosquitto package")
    path = folder / "passwd"
    path.touch()
    for user, password in users.items():
        subprocess.run([tool, "-b", str(path), user, password], check=True, capture_output=True)
    return path


def auth_conf(passwd: Path, acl: Path | None = None) -> str:
    """Broker config lines for a password file and an optional ACL file."""
    return _as_root() + f"password_file {passwd}\n" + (f"acl_file {acl}\n" if acl is not None else "")


def acl_file(folder: Path, rules: dict[str, list[str]]) -> Path:
    """``rules`` maps a user to lines such as ``topic write plant/s1/gw1/#``."""
    path = folder / "acl"
    path.write_text("".join(f"user {user}\n" + "".join(f"{line}\n" for line in lines) for user, lines in rules.items()))
    return path
