"""Application certificate creation and the explicit trust list (pinned certificates or a trusted CA)."""

from __future__ import annotations

import datetime as dt
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from agent.sources.opcua import pki


def test_cert_has_the_application_uri_and_a_private_key_file(tmp_path: Path) -> None:
    cert = pki.make_application_certificate(tmp_path / "c.der", tmp_path / "k.pem", "urn:gw1:energy-agent", "gw1")
    assert pki.application_uri_of(cert) == "urn:gw1:energy-agent"
    assert pki.load_certificate(tmp_path / "c.der") == cert
    assert stat.S_IMODE((tmp_path / "k.pem").stat().st_mode) == 0o600
    assert b"PRIVATE KEY" in (tmp_path / "k.pem").read_bytes()


def test_key_mode_is_0600_even_when_the_file_existed(tmp_path: Path) -> None:
    key = tmp_path / "k.pem"
    key.write_text("old")
    key.chmod(0o644)
    pki.make_application_certificate(tmp_path / "c.der", key, "urn:x")
    assert stat.S_IMODE(key.stat().st_mode) == 0o600


def test_only_pinned_certificates_are_trusted(tmp_path: Path) -> None:
    server = pki.make_application_certificate(tmp_path / "s.der", tmp_path / "s.pem", "urn:srv", server=True)
    other = pki.make_application_certificate(tmp_path / "o.der", tmp_path / "o.pem", "urn:srv", server=True)
    trust = tmp_path / "trusted"
    assert not pki.check_trusted(server, trust).trusted  # missing folder: nothing trusted
    path = pki.pin(server, trust, "plc:4840")
    assert path.parent == trust and path.name.startswith("plc_4840-")
    assert pki.check_trusted(server, trust).trusted
    decision = pki.check_trusted(other, trust)  # same URI and subject, different key: not trusted
    assert not decision.trusted and "not in the trust list" in decision.why


def test_expired_pinned_certificate_is_refused(tmp_path: Path) -> None:
    server = pki.make_application_certificate(tmp_path / "s.der", tmp_path / "s.pem", "urn:srv", server=True)
    pki.pin(server, tmp_path / "t", "s")
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=3000)
    decision = pki.check_trusted(server, tmp_path / "t", now=later)
    assert not decision.trusted and "validity" in decision.why


def _ca_and_leaf() -> tuple[x509.Certificate, x509.Certificate]:
    now = dt.datetime.now(dt.UTC)
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "plant CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(1)
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    leaf_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "plc")]))
        .issuer_name(ca_name)
        .public_key(leaf_key.public_key())
        .serial_number(2)
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .sign(ca_key, hashes.SHA256())
    )
    return ca, leaf


def test_certificate_issued_by_a_trusted_ca_is_trusted(tmp_path: Path) -> None:
    ca, leaf = _ca_and_leaf()
    other_ca, _ = _ca_and_leaf()  # same subject name, different key: the signature decides
    trust = tmp_path / "t"
    pki.pin(other_ca, trust, "other")
    assert not pki.check_trusted(leaf, trust).trusted
    pki.pin(ca, trust, "ca")
    decision = pki.check_trusted(leaf, trust)
    assert decision.trusted and "CN=plant CA" in decision.why


def test_describe_shows_what_a_technician_compares(tmp_path: Path) -> None:
    cert = pki.make_application_certificate(tmp_path / "c.der", tmp_path / "k.pem", "urn:x")
    text = pki.describe(cert)
    assert "application URI urn:x" in text and pki.thumbprint(cert) in text
    assert len(pki.thumbprint(cert).split(":")) == 32


def test_cli_cert_writes_once_and_refuses_to_overwrite(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from agent.cli import main

    argv = ["opcua", "cert", "--cert", str(tmp_path / "c.der"), "--key", str(tmp_path / "k.pem")]
    assert main([*argv, "--application-uri", "urn:gw7:energy-agent"]) == 0
    out = capsys.readouterr().out
    cert = pki.load_certificate(tmp_path / "c.der")
    assert pki.application_uri_of(cert) == "urn:gw7:energy-agent" and pki.thumbprint(cert) in out
    before = (tmp_path / "k.pem").read_bytes()
    assert main(argv) == 1 and "--force" in capsys.readouterr().out
    assert (tmp_path / "k.pem").read_bytes() == before
    assert main([*argv, "--force"]) == 0 and (tmp_path / "k.pem").read_bytes() != before
