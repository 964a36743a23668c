"""MQTT section of the site file. Owned by the MQTT publishing work (issue 5).

The password is never written in the site file in production: give ``password_file`` (a file readable only by
the service user, e.g. systemd's ``LoadCredential``) or ``password_env``. A literal ``password`` is accepted for
a bench test and reported as a warning by :meth:`MqttConfig.warnings`; it is never logged.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Literal

from pydantic import ConfigDict, Field, SecretStr, field_validator, model_validator

from agent.config.base import NOT_BOOL, StrictModel, given


class MqttTlsConfig(StrictModel):
    """TLS towards the broker. Without ``ca_file`` the system's trusted CAs are used."""

    model_config = ConfigDict(  # _cert_and_key, for editors
        json_schema_extra={
            "if": given("cert_file"),
            "then": given("key_file"),
            "else": {"properties": {"key_file": {"type": "null"}}},
        }
    )

    ca_file: str | None = Field(default=None, description="PEM file of the CA(s) that signed the broker's certificate")
    cert_file: str | None = Field(default=None, description="This gateway's client certificate (PEM)")
    key_file: str | None = Field(default=None, description="Private key of the client certificate (PEM)")
    check_hostname: bool = Field(default=True, description="Check the broker's certificate names the host connected to")

    @model_validator(mode="after")
    def _cert_and_key(self) -> MqttTlsConfig:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("give both cert_file and key_file for a client certificate, or neither")
        return self


_PASSWORDS = ("password_file", "password_env", "password")
_PASSWORD_PAIRS = [(a, b) for i, a in enumerate(_PASSWORDS) for b in _PASSWORDS[i + 1 :]]


class MqttConfig(StrictModel):
    """How this gateway publishes: one MQTT connection, QoS 1, every message through the spool first."""

    model_config = ConfigDict(  # _consistent, for editors
        json_schema_extra={
            "allOf": [
                {"not": {"anyOf": [{"allOf": [given(a), given(b)]} for a, b in _PASSWORD_PAIRS]}},
                {"if": {"anyOf": [given(k) for k in _PASSWORDS]}, "then": given("username")},
            ]
        }
    )

    host: str = Field(description="Broker host name or address")
    port: int | None = Field(default=None, ge=1, le=65535, description="Broker TCP port; unset: 1883, or 8883 with tls")
    transport: Literal["tcp"] = Field("tcp", description="tcp: plain TCP, or TLS with tls:")
    protocol: Literal["5", "3.1.1"] = Field(
        default="5",
        description="MQTT 5, or 3.1.1 for older brokers",
        json_schema_extra=lambda s: s.update(enum=["5", "3.1.1", 5], type=["string", "integer"]),  # `protocol: 5`
    )
    client_id: str | None = Field(
        default=None, max_length=128, description="MQTT client id, unique at the broker; unset: <site>-<gateway>"
    )
    keepalive_s: int = Field(
        default=30,
        ge=5,
        le=3600,
        description="Keep-alive ping interval in seconds; the broker drops the connection after 1.5 of them without "
        "traffic",
    )
    connect_timeout_s: float = Field(
        default=10.0, gt=0, le=120, description="How long a connection attempt may take, in seconds"
    )
    tls: MqttTlsConfig | None = Field(None, description="TLS to the broker (recommended); unset: plain TCP")
    username: str | None = Field(None, description="User name at the broker; the centre's ACL expects <site>/<gateway>")
    password_file: str | None = Field(default=None, description="File holding the password (trailing newline ignored)")
    password_env: str | None = Field(default=None, description="Environment variable holding the password")
    password: SecretStr | None = Field(default=None, description="Discouraged: use password_file or password_env")
    topic_prefix: str = Field(
        default="plant",
        description="First topic level(s), e.g. plant or acme/energy",
        json_schema_extra={"pattern": "^(?!\\$)[^/+#\\u0000]+(/[^/+#\\u0000]+)*$"},  # _prefix, for editors
    )
    qos: Annotated[Literal[1], NOT_BOOL] = Field(
        default=1, description="QoS 1 only: the spool deletes a message on its PUBACK"
    )
    max_inflight: int = Field(default=100, ge=1, le=65535, description="Messages published and not yet acknowledged")
    max_message_bytes: int = Field(
        default=262144,  # agent.sinks.limits.MAX_MESSAGE_BYTES
        ge=4096,
        le=268435455,
        description="Largest MQTT message this gateway sends, in bytes (payload, topic and header): a poll that "
        "would be larger goes out as several samples messages, each accepted by the centre on its own; a spooled "
        "message over this (or over the broker's maximum packet size) is set aside, not sent. Keep it below the "
        "centre's max_message_bytes (512 KiB) and the broker's message_size_limit",
    )
    reconnect_min_s: float = Field(
        default=1.0,
        gt=0,
        le=3600,
        description="First wait before reconnecting after a lost connection, in seconds; it doubles (with jitter) up "
        "to reconnect_max_s",
    )
    reconnect_max_s: float = Field(
        default=30.0, gt=0, le=3600, description="Longest wait between reconnection attempts, in seconds"
    )
    replay_rate_msgs_s: float = Field(default=500.0, gt=0, description="Rate at which the backlog is replayed")
    replay_order: Literal["live_first", "backlog_first"] = Field(
        default="live_first",
        description="live_first: fresh messages go out at once and the backlog fills the rest at the replay "
        "rate; backlog_first: strict spool order, fresh messages wait behind the backlog",
    )

    @field_validator("protocol", mode="before")
    @classmethod
    def _protocol_as_text(cls, v: object) -> object:
        # YAML reads `protocol: 5` as an int and `protocol: 3.1.1` as a string.
        return str(v) if isinstance(v, int) and not isinstance(v, bool) else v

    @field_validator("topic_prefix")
    @classmethod
    def _prefix(cls, v: str) -> str:
        levels = v.split("/")
        if any(not level or any(c in level for c in "+#\x00") for level in levels) or v.startswith("$"):
            raise ValueError("topic_prefix: levels must be non-empty, without '+', '#', and must not start with '$'")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> MqttConfig:
        sources = [n for n in ("password_file", "password_env", "password") if getattr(self, n) is not None]
        if len(sources) > 1:
            raise ValueError(f"give one of password_file, password_env, password; got {', '.join(sources)}")
        if sources and self.username is None:
            raise ValueError(f"{sources[0]} needs a username")
        if self.reconnect_max_s < self.reconnect_min_s:
            raise ValueError("reconnect_max_s must be at least reconnect_min_s")
        return self

    @property
    def effective_port(self) -> int:
        return self.port if self.port is not None else (8883 if self.tls is not None else 1883)

    def warnings(self) -> list[str]:
        """Things that load but should not go to production, one sentence each."""
        found = []
        if self.password is not None:
            found.append("mqtt.password is written in the site file; use password_file or password_env")
        if self.tls is None and (self.username is not None):
            found.append("mqtt: a username and password are sent without TLS")
        if self.tls is not None and not self.tls.check_hostname:
            found.append("mqtt.tls.check_hostname is off: any certificate signed by the CA is accepted")
        return found

    def read_password(self) -> str | None:
        """The password from its file or environment variable. Raises ValueError naming the source (never the
        secret) when it cannot be read."""
        if self.password is not None:
            return self.password.get_secret_value()
        if self.password_env is not None:
            value = os.environ.get(self.password_env)
            if value is None:
                raise ValueError(f"mqtt.password_env: environment variable {self.password_env} is not set")
            return value
        if self.password_file is not None:
            try:
                return Path(self.password_file).read_text(encoding="utf-8").rstrip("\r\n")
            except OSError as exc:
                raise ValueError(f"mqtt.password_file: cannot read {self.password_file}: {exc.strerror}") from exc
        return None
