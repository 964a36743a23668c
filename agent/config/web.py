"""The ``web:`` section: the agent's local, read-only web page for technicians (``agent.web``).

Off unless ``enabled: true``. It listens on 127.0.0.1 unless ``host`` names another address; bound to anything
but loopback it needs a password (``password_hash``, or ``password_file`` holding the hash; make one with
``energy-agent web-password``) or TLS client certificates (``tls.client_ca``), and a site file without either is
refused at validate, positioned at ``web.host``. The password itself is never in the site file, only its scrypt
hash (``scrypt$<n>$<r>$<p>$<salt>$<hash>``, base64).
"""

from __future__ import annotations

import ipaddress
import re

from pydantic import Field, ValidationInfo, field_validator

from agent.config.base import StrictModel

_HASH = re.compile(r"^scrypt\$(\d+)\$(\d+)\$(\d+)\$[A-Za-z0-9+/=]{16,}\$[A-Za-z0-9+/=]{40,}$")


def is_loopback(host: str) -> bool:
    """True for addresses only this machine can reach (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class WebTlsConfig(StrictModel):
    """HTTPS for the page: the server's certificate, and optionally the CA whose client certificates get in."""

    cert_file: str = Field(description="PEM certificate (chain) of this gateway's web page")
    key_file: str = Field(description="PEM private key of cert_file; readable by the service only")
    client_ca: str | None = Field(
        None, description="PEM CA file: when set, only browsers showing a client certificate it signed connect"
    )


class WebConfig(StrictModel):
    """The local read-only web page: device health, live values, KPIs, spool and MQTT state, commissioning views."""

    enabled: bool = Field(False, description="Serve the page; off by default")
    port: int = Field(8480, ge=0, le=65535, description="TCP port of the page (0: any free port, logged)")
    password_hash: str | None = Field(
        None, description="scrypt hash of the page's password (energy-agent web-password prints one)"
    )
    password_file: str | None = Field(
        None, description="File holding the password hash instead (relative to the site file); e.g. LoadCredential"
    )
    tls: WebTlsConfig | None = Field(None, description="Serve HTTPS; with client_ca, require client certificates")
    max_clients: int = Field(64, ge=1, le=1000, description="Connections served at once; more are refused")
    session_ttl_s: float = Field(43200.0, ge=60, le=30 * 86400, description="How long a login lasts")
    host: str = Field(
        "127.0.0.1",
        description="Listen address; anything but loopback needs password_hash, password_file or tls.client_ca",
    )

    @field_validator("port")
    @classmethod
    def _unprivileged(cls, value: int) -> int:
        if 0 < value < 1024:
            raise ValueError(
                f"port {value} needs a capability the service does not have (ports below 1024); use e.g. 8480"
            )
        return value

    @field_validator("password_hash")
    @classmethod
    def _hash_format(cls, value: str | None) -> str | None:
        if value is not None and not _HASH.match(value):
            raise ValueError(
                "not a password hash; run energy-agent web-password and paste the scrypt$... line it prints"
            )
        return value

    @field_validator("host")
    @classmethod
    def _guarded_when_exposed(cls, value: str, info: ValidationInfo) -> str:
        data = info.data
        if not data.get("enabled") or is_loopback(value):
            return value
        tls = data.get("tls")
        guarded = (
            data.get("password_hash") is not None
            or data.get("password_file") is not None
            or (tls is not None and tls.client_ca is not None)
        )
        if not guarded:
            raise ValueError(
                f"the page would listen on {value}, reachable from the network, without a password; set "
                "web.password_hash (energy-agent web-password prints one), web.password_file or web.tls.client_ca, "
                "or listen on 127.0.0.1"
            )
        return value

    @property
    def exposed(self) -> bool:
        return not is_loopback(self.host)
