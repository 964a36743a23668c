"""``center.yaml``: the energy-centre ingestor's config, validated by pydantic, errors positioned ``file:line:col``.

Example::

    mqtt:
      host: broker.plant.example
      port: 8883
      tls: {ca_file: /etc/energy-center/ca.crt}
      username: center
      password_file: /etc/energy-center/mqtt.pass
      client_id: center-1          # stable per ingestor: its persistent session holds un-acked messages
      group: center                # the shared-subscription group ($share/center/...)
      topic_prefix: plant
    influx:
      kind: v1                     # v1: POST /write (InfluxDB 1.x); v2: influxdb-client (2.x, 3.x, Cloud);
      url: http://127.0.0.1:8086   # victoriametrics: /influx/write, or /insert/<tenant>/influx/write (cluster)
      database: energy
    dead_letter:
      file: /var/lib/energy-center/dead-letter.jsonl
    limits:                        # what one gateway may send; the excess is quarantined and counted
      max_message_bytes: 524288
      max_past_s: 7776000

Several brokers at once (plants sharded across independent brokers, or several listeners of a clustered broker):
``brokers:``, a list of ``mqtt`` sections each with a ``name``, instead of ``mqtt``. Each entry has its own
credentials, TLS, client id and shared-subscription group; the centre runs one pipeline per broker (see fleet.py).

The file is read with agent.config's YAML loader (positions, duplicate keys, YAML limits) and errors are worded by
agent.config.diagnostics, so ``energy-center validate`` reads like ``energy-agent validate``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from agent.center.accounts.config import AccountsConfig
from agent.config.diagnostics import issues_from_validation
from agent.config.yaml_source import load_yaml
from agent.errors import ConfigError

_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"


class StrictModel(BaseModel):
    """Same contract as agent.config.base.StrictModel (unknown keys are errors, frozen)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=False)


class TlsConfig(StrictModel):
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    insecure_skip_verify: bool = False


class CenterMqttConfig(StrictModel):
    host: str = "127.0.0.1"
    port: int = Field(1883, ge=1, le=65535)
    tls: TlsConfig | None = None
    username: str | None = None
    password_file: str | None = None
    password_env: str | None = None
    client_id: str = Field("energy-center-1", pattern=_NAME)
    group: str = Field("energy-center", pattern=_NAME)
    topic_prefix: str = "plant"
    keepalive_s: int = Field(30, ge=5, le=3600)
    session_expiry_s: int = Field(
        7 * 24 * 3600, ge=60, description="How long the broker keeps this ingestor's queue while it is down"
    )
    receive_maximum: int = Field(
        2000, ge=1, le=65535, description="Un-acked messages the broker may send us: the back-pressure window"
    )
    reconnect_max_s: float = Field(30.0, gt=0)

    def password(self) -> str | None:
        if self.password_file:
            return Path(self.password_file).read_text().strip()
        if self.password_env:
            return os.environ.get(self.password_env)
        return None


class BrokerConfig(CenterMqttConfig):
    """One of several brokers (``brokers:``): an ``mqtt`` section with a name for log lines."""

    name: str = Field(pattern=_NAME, description="Names this broker in log lines, e.g. north or shard-1")


_TENANT = r"^[0-9]{1,10}(:[0-9]{1,10})?$"


class InfluxConfig(StrictModel):
    kind: Literal["v1", "v2", "victoriametrics"] = "v1"
    url: str = Field(
        "http://127.0.0.1:8086", description="http(s)://host:port, with any path prefix (reverse proxy, vmauth)"
    )
    # v1
    database: str | None = None
    retention_policy: str | None = None
    username: str | None = None
    password_file: str | None = None
    # v2
    org: str | None = None
    bucket: str | None = None
    token_file: str | None = None
    token_env: str | None = None
    # victoriametrics (also: database as the db label, username + password_file or token_file/token_env)
    tenant: str | None = Field(
        None,
        pattern=_TENANT,
        description="VictoriaMetrics cluster tenant accountID[:projectID]: writes go to vminsert's "
        "/insert/<tenant>/influx/write; unset: a single node's /influx/write",
    )
    # all
    precision: Literal["ns", "us", "ms", "s"] = "ns"
    batch_points: int = Field(5000, ge=1, le=1_000_000)
    flush_interval_ms: int = Field(500, ge=1)
    timeout_ms: int = Field(10_000, ge=100)
    retry_initial_ms: int = Field(500, ge=1)
    retry_max_ms: int = Field(30_000, ge=1)
    extra_tags: list[str] = Field(default_factory=list, description="Device tags written as InfluxDB tags")

    @model_validator(mode="after")
    def _target(self) -> InfluxConfig:
        if self.kind == "v1" and not self.database:
            raise ValueError("kind v1 needs 'database'")
        if self.kind == "v2" and not (self.org and self.bucket):
            raise ValueError("kind v2 needs 'org' and 'bucket' (InfluxDB 3: bucket = the database, org is ignored)")
        if self.tenant is not None and self.kind != "victoriametrics":
            raise ValueError("'tenant' is for kind victoriametrics (a cluster's vminsert); remove it or change kind")
        return self

    def uses_token(self) -> bool:
        """v2 always; victoriametrics when a token is given (Bearer, e.g. behind vmauth), else Basic."""
        return self.kind == "v2" or (self.kind == "victoriametrics" and bool(self.token_file or self.token_env))

    def secret(self) -> str | None:
        """The password (v1, Basic) or the token (v2, Bearer), read when needed and never logged."""
        token = self.uses_token()
        path = self.token_file if token else self.password_file
        if path:
            return Path(path).read_text().strip()
        if token and self.token_env:
            return os.environ.get(self.token_env)
        return None


class DeadLetterConfig(StrictModel):
    """Where refused payloads go (at least one of the two): a JSON-lines file and/or an MQTT topic."""

    file: str | None = None
    topic: str | None = None
    max_file_bytes: int = Field(
        16 * 1024 * 1024,
        ge=4096,
        description="The file is rotated (renamed <file>.<unix time>) before it grows past this size",
    )
    max_total_bytes: int = Field(
        256 * 1024 * 1024,
        ge=4096,
        description="Rotated files beyond this total are deleted, oldest first (counted in the ingestor's stats)",
    )
    max_age_days: float = Field(
        30.0, gt=0, description="Rotated files older than this are deleted (counted in the ingestor's stats)"
    )

    @model_validator(mode="after")
    def _somewhere(self) -> DeadLetterConfig:
        if not (self.file or self.topic):
            raise ValueError("set 'file' or 'topic' (or both): refused payloads are kept, never dropped")
        return self


class GapConfig(StrictModel):
    reorder_timeout_s: float = Field(5.0, gt=0)
    share_interval_s: float = Field(1.0, gt=0, description="How often group members tell each other what they saw")


class LimitsConfig(StrictModel):
    """What one message and one gateway may hold. The excess is quarantined (dead letter) and counted; everything
    else of that message and that gateway is written."""

    max_message_bytes: int = Field(
        524_288, ge=1024, description="Larger payloads are quarantined unread (keep the broker's limit above it)"
    )
    max_items_per_message: int = Field(
        10_000, ge=1, description="Samples in a samples message, KPIs in a kpi message, devices in a status"
    )
    max_series_per_gateway: int = Field(
        20_000, ge=1, description="Distinct series (device+point+unit+role, KPI scope+name+window+unit) per gateway"
    )
    series_file: str | None = Field(
        None,
        description="Where the series quota is kept across restarts (default: series-quota.txt beside "
        "dead_letter.file; without either it is kept in memory only)",
    )
    max_past_s: float = Field(
        90 * 86400.0, gt=0, description="Older timestamps are quarantined (keep it above the agents' spool max_age_s)"
    )
    max_future_s: float = Field(
        600.0, gt=0, description="Timestamps further ahead of the centre's clock are quarantined"
    )


class CenterConfig(StrictModel):
    mqtt: CenterMqttConfig = Field(default_factory=CenterMqttConfig)
    brokers: list[BrokerConfig] = Field(
        default_factory=list,
        description="Several brokers, each an mqtt section with a name (instead of 'mqtt'): plants sharded across "
        "brokers, or listeners of a clustered broker",
    )
    influx: InfluxConfig = Field(
        description="Where points go: kind v1 with database, v2 with org and bucket, or victoriametrics"
    )
    dead_letter: DeadLetterConfig = Field(description="Where refused payloads are kept: file and/or topic")
    gaps: GapConfig = Field(default_factory=GapConfig)
    limits: LimitsConfig = Field(default_factory=LimitsConfig)
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    accounts: AccountsConfig | None = Field(
        None, description="Energy accounts, monthly report and upload of declared units (optional)"
    )

    @field_validator("brokers")
    @classmethod
    def _distinct(cls, brokers: list[BrokerConfig]) -> list[BrokerConfig]:
        seen: dict[tuple[str, int, str], str] = {}
        names: set[str] = set()
        for b in brokers:
            if b.name in names:
                raise ValueError(f"two brokers are named {b.name!r}; give each its own name")
            names.add(b.name)
            key = (b.host, b.port, b.client_id)
            if key in seen:
                raise ValueError(
                    f"brokers {seen[key]!r} and {b.name!r} have the same host, port and client_id: they would take "
                    "each other's session; give each its own client_id"
                )
            seen[key] = b.name
        return brokers

    @model_validator(mode="after")
    def _mqtt_or_brokers(self) -> CenterConfig:
        if self.brokers and "mqtt" in self.model_fields_set:
            raise ValueError("give either 'mqtt' (one broker) or 'brokers' (several, each with a name), not both")
        return self

    def endpoints(self) -> list[tuple[str, CenterMqttConfig]]:
        """(name, mqtt section) of every broker the centre subscribes to; one broker is named after its host."""
        if self.brokers:
            return [(b.name, b) for b in self.brokers]
        return [(self.mqtt.host, self.mqtt)]

    def series_file(self) -> Path | None:
        """Where the per-gateway series quota persists (None: memory only)."""
        if self.limits.series_file:
            return Path(self.limits.series_file)
        if self.dead_letter.file:
            return Path(self.dead_letter.file).parent / "series-quota.txt"
        return None


def load(path: str | Path) -> CenterConfig:
    """Read and validate; raise ConfigError with every problem, each as ``file:line:col: path: message``."""
    doc = load_yaml(Path(path), str(path))
    if not isinstance(doc.data, dict):
        raise ConfigError([doc.issue((), "expected a mapping with 'influx' and 'dead_letter' (and 'mqtt')")])
    try:
        return CenterConfig.model_validate(doc.data)
    except ValidationError as exc:
        raise ConfigError(issues_from_validation(exc, doc, CenterConfig)) from None
