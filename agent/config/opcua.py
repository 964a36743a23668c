"""OPC UA devices in the site file. Owned by the OPC UA work (issue 3).

One entry under ``devices`` with ``protocol: opcua`` is one session to one server endpoint. Its points are written
inline in the site file (there is no OPC UA profile type yet: node ids are specific to one server's address space,
so a reusable profile buys little). Example::

    - name: kiln1
      protocol: opcua
      endpoint: opc.tcp://10.0.0.5:4840
      security: {policy: Aes256_Sha256_RsaPss, mode: SignAndEncrypt}
      auth: {type: username, username: energy, password_file: secrets/kiln1.pw}
      client_cert: pki/agent-cert.der
      client_key: pki/agent-key.pem
      trust_dir: pki/trusted
      interval_s: 1
      points:
        - {name: coal_feed, browse_path: Kiln1/CoalFeed, namespace_uri: "urn:plant:kiln", unit: t/h,
           role: coal_feed_tph, deadband: {type: absolute, value: 0.05}}
        - {name: energy, node_id: "nsu=urn:plant:kiln;s=Kiln1.Energy", unit: kWh, role: energy_import_kwh}

Relative file paths (certificates, keys, trust folder, password file) are relative to the site file's folder.
Security policy None is refused unless ``security.allow_none: true`` is written in the site file.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, model_validator

from agent.config.base import StrictModel, exactly_one, given
from agent.model import Role

_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
_NS_INDEX = re.compile(r"^ns=(\d+);")
_NODE_ID = re.compile(r"^(nsu=[^;]+;|ns=\d+;)?(i=\d+|s=.+|g=[0-9A-Fa-f-]{36}|b=.+)$", re.DOTALL)


class SecurityPolicy(StrEnum):
    """Security policies we accept. Basic128Rsa15 and Basic256 (SHA-1) are deprecated and refused."""

    NONE = "None"
    BASIC256SHA256 = "Basic256Sha256"
    AES128_SHA256_RSAOAEP = "Aes128_Sha256_RsaOaep"
    AES256_SHA256_RSAPSS = "Aes256_Sha256_RsaPss"


class SecurityMode(StrEnum):
    NONE = "None"
    SIGN = "Sign"
    SIGN_AND_ENCRYPT = "SignAndEncrypt"


class OpcuaSecurityConfig(StrictModel):
    """Message security of the secure channel."""

    model_config = ConfigDict(  # _check_none, for editors
        json_schema_extra={
            "if": {"required": ["policy"], "properties": {"policy": {"const": "None"}}},
            "then": {
                "required": ["mode", "allow_none"],
                "properties": {"mode": {"const": "None"}, "allow_none": {"const": True}},
            },
            "else": {"properties": {"mode": {"not": {"const": "None"}}}},
        }
    )

    policy: SecurityPolicy = Field(
        SecurityPolicy.BASIC256SHA256,
        description="Security policy of the secure channel, as offered by the server; None only with allow_none",
    )
    mode: SecurityMode = Field(
        SecurityMode.SIGN_AND_ENCRYPT, description="Sign or SignAndEncrypt (recommended); None only with policy None"
    )
    allow_none: bool = Field(
        default=False, description="Must be true to use policy None (testing and isolated networks)"
    )

    @model_validator(mode="after")
    def _check_none(self) -> OpcuaSecurityConfig:
        none_policy = self.policy is SecurityPolicy.NONE
        none_mode = self.mode is SecurityMode.NONE
        if none_policy != none_mode:
            raise ValueError("policy None goes with mode None, and a real policy with mode Sign or SignAndEncrypt")
        if none_policy and not self.allow_none:
            raise ValueError(
                "security policy None sends everything in clear text; write allow_none: true to accept that"
            )
        return self


class AnonymousAuthConfig(StrictModel):
    type: Literal["anonymous"] = Field("anonymous", description="anonymous: no user identity")


class UsernameAuthConfig(StrictModel):
    """User name and password; the password comes from a file or an environment variable, never the site file."""

    model_config = ConfigDict(json_schema_extra=exactly_one("password_file", "password_env"))  # _one_source

    type: Literal["username"] = Field("username", description="username: user name and password")
    username: str = Field(min_length=1, description="User name on the OPC UA server")
    password_file: str | None = Field(default=None, description="File holding the password (first line), mode 0600")
    password_env: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
        description="Environment variable holding the password (give password_file or password_env)",
    )

    @model_validator(mode="after")
    def _one_source(self) -> UsernameAuthConfig:
        if (self.password_file is None) == (self.password_env is None):
            raise ValueError("give either password_file or password_env for the password, not both")
        return self


class CertificateAuthConfig(StrictModel):
    """User identity by an X.509 certificate (may be the application certificate)."""

    type: Literal["certificate"] = Field(
        "certificate", description="certificate: user identity by an X.509 certificate"
    )
    cert_file: str = Field(description="User certificate file (DER or PEM)")
    key_file: str = Field(description="Its private key (PEM), mode 0600")


AuthConfig = Annotated[
    AnonymousAuthConfig | UsernameAuthConfig | CertificateAuthConfig,
    Field(discriminator="type", json_schema_extra={"required": ["type"]}),  # the tag picks the variant: say it
]


class DeadbandConfig(StrictModel):
    """Data-change filter: absolute (in the point's unit) or percent of the node's EURange."""

    type: Literal["absolute", "percent"] = Field(
        description="absolute: in the point's unit; percent: of the node's EURange on the server"
    )
    value: float = Field(ge=0, description="Smallest change that is reported (in the unit, or 0..100 for percent)")

    @model_validator(mode="after")
    def _percent_range(self) -> DeadbandConfig:
        if self.type == "percent" and self.value > 100:
            raise ValueError(f"a percent deadband is 0..100, got {self.value}")
        return self


class OpcuaPointConfig(StrictModel):
    """One variable node. Address it by ``node_id`` or by ``browse_path`` from the Objects folder.

    ``node_id`` is an OPC UA NodeId string: ``nsu=<uri>;s=Name`` (namespace by URI: preferred), ``s=Name`` or
    ``i=123`` together with ``namespace_uri``, or ``ns=<index>;...`` (fragile: indexes can change when the server
    restarts). ``browse_path`` is ``Kiln1/CoalFeed``: browse names below Objects, each in ``namespace_uri`` unless
    written ``0:Name`` (the OPC UA standard namespace). Namespace URIs are resolved to indexes at every connect.
    """

    model_config = ConfigDict(  # _one_address, for editors
        json_schema_extra={
            "allOf": [
                exactly_one("node_id", "browse_path"),
                {"if": given("browse_path"), "then": given("namespace_uri")},
                {
                    "not": {
                        "allOf": [
                            {
                                "required": ["node_id"],
                                "properties": {"node_id": {"type": "string", "pattern": "^nsu?="}},
                            },
                            given("namespace_uri"),
                        ]
                    }
                },
            ]
        }
    )

    name: str = Field(
        pattern=r"^[A-Za-z0-9_.-]{1,64}$",
        description="Point name, unique in the device; it becomes part of the MQTT topic. Letters, digits, _ . -",
    )
    node_id: str | None = Field(
        None,
        description="NodeId on the server, e.g. nsu=urn:plant:kiln1;s=Kiln1.CoalFeed (give node_id or browse_path)",
    )
    browse_path: str | None = Field(
        None, description="Browse names below Objects separated by /, e.g. Kiln1/CoalFeed (needs namespace_uri)"
    )
    namespace_uri: str | None = Field(
        None, description="URI of the namespace of browse_path's names, or of an s=/i= node_id"
    )
    unit: str = Field("", description="Engineering unit of the value, e.g. t/h, kW, degC")
    role: Role | None = Field(None, description="What the KPI engine uses this point for (see energy-agent list roles)")
    range: tuple[float, float] | None = Field(default=None, description="Plausible [min, max]; outside is uncertain")
    sampling_interval_ms: float | None = Field(
        default=None, ge=0, le=3_600_000, description="Server sampling; defaults to the device interval"
    )
    queue_size: int | None = Field(
        default=None,
        ge=1,
        le=10_000,
        description="Server-side queue of the monitored item; default: room for the changes of two publishing "
        "intervals, so no data change is dropped between two publish responses",
    )
    deadband: DeadbandConfig | None = Field(
        None, description="Subscriptions: report only changes larger than this; unset: every change"
    )
    description: str = Field("", description="Free text for people: what the point is")

    @model_validator(mode="after")
    def _one_address(self) -> OpcuaPointConfig:
        if (self.node_id is None) == (self.browse_path is None):
            raise ValueError("give either node_id or browse_path, not both")
        if self.browse_path is not None and self.namespace_uri is None:
            raise ValueError("a browse_path needs namespace_uri: the URI of the namespace its names are in")
        if self.node_id is not None and self.namespace_uri is not None and self.node_id.startswith(("ns=", "nsu=")):
            raise ValueError("node_id already names its namespace; drop namespace_uri or the ns=/nsu= prefix")
        if self.range is not None and self.range[0] > self.range[1]:
            raise ValueError(f"range must be [min, max], got [{self.range[0]}, {self.range[1]}]")
        return self


class OpcuaDeviceConfig(StrictModel):
    """One OPC UA server endpoint read as one device (one session)."""

    model_config = ConfigDict(  # _check_files, for editors
        json_schema_extra={
            "if": {
                "required": ["security"],
                "properties": {"security": {"required": ["policy"], "properties": {"policy": {"const": "None"}}}},
            },
            "then": {
                "properties": {
                    "auth": {"not": {"required": ["type"], "properties": {"type": {"const": "certificate"}}}}
                }
            },
            "else": {"allOf": [given("client_cert"), given("client_key"), given("trust_dir")]},
            "allOf": [{"required": ["protocol"]}],  # a device without protocol is a Modbus device
        }
    )

    name: str = Field(
        pattern=_NAME,
        description="Device name, unique in the site; it becomes an MQTT topic level. Letters, digits, _ . -",
    )
    protocol: Literal["opcua"] = Field(
        "opcua", description="opcua: an OPC UA server (required for OPC UA devices; without it a device is Modbus)"
    )
    endpoint: str = Field(
        pattern=r"^opc\.tcp://[^/\s]+(:\d+)?(/\S*)?$",
        description="Server endpoint URL, opc.tcp://host:port[/path], e.g. opc.tcp://192.0.2.30:4840",
    )
    security: OpcuaSecurityConfig = Field(
        default_factory=lambda: OpcuaSecurityConfig(),
        description="Message security; default Basic256Sha256 with SignAndEncrypt",
    )
    auth: AuthConfig = Field(
        default_factory=lambda: AnonymousAuthConfig(),
        description="User identity: anonymous (default), username or certificate",
    )
    client_cert: str | None = Field(default=None, description="Application instance certificate (DER or PEM)")
    client_key: str | None = Field(default=None, description="Its private key (PEM), mode 0600")
    trust_dir: str | None = Field(default=None, description="Folder of trusted server (or CA) certificates")
    interval_s: float = Field(
        default=1.0, gt=0, le=86400, description="Publishing (subscribe) or polling (poll) interval, in seconds"
    )
    timeout_ms: float = Field(
        default=4000.0, gt=0, le=60000, description="Timeout of one request to the server, in milliseconds"
    )
    session_timeout_s: float = Field(
        default=30.0, ge=5, le=3600, description="Server drops an orphaned session (and its subscriptions) after this"
    )
    mode: Literal["subscribe", "poll"] = Field(
        default="subscribe",
        description="subscribe: the server reports changes; poll: read every interval_s (for servers with weak "
        "subscriptions)",
    )
    points: list[OpcuaPointConfig] = Field(
        min_length=1, description="The server's variables to read, one entry per point"
    )
    enabled: bool = Field(True, description="false: keep the device in the file but do not connect")
    renewable: bool = Field(default=False, description="This meter measures renewable supply (PV, wind, green power)")
    tags: dict[str, str] = Field(
        default_factory=dict, description="Labels sent with the data, e.g. line: kiln1, area: raw-mill"
    )

    @model_validator(mode="after")
    def _check_files(self) -> OpcuaDeviceConfig:
        secure = self.security.policy is not SecurityPolicy.NONE
        if secure and (self.client_cert is None or self.client_key is None):
            raise ValueError(
                f"security policy {self.security.policy.value} needs client_cert and client_key "
                "(make them with: energy-agent opcua cert)"
            )
        if secure and self.trust_dir is None:
            raise ValueError("a secure endpoint needs trust_dir: the folder of trusted server certificates")
        if isinstance(self.auth, CertificateAuthConfig) and not secure:
            raise ValueError("certificate authentication needs a signing security policy, not None")
        return self


def check(site: Any, profiles: Any) -> list[tuple[tuple[str | int, ...], str]]:
    """Rules across the points of OPC UA devices, as (path, message) for the config loader to position.

    ``site`` is the validated ``SiteConfig``; ``profiles`` is unused (OPC UA points are inline). No I/O.
    """
    issues: list[tuple[tuple[str | int, ...], str]] = []
    for d, device in enumerate(getattr(site, "devices", [])):
        if not isinstance(device, OpcuaDeviceConfig):
            continue
        seen: dict[str, int] = {}
        addresses: dict[str, int] = {}
        for p, point in enumerate(device.points):
            path: tuple[str | int, ...] = ("devices", d, "points", p)
            if point.name in seen:
                issues.append(
                    ((*path, "name"), f"point name {point.name!r} is already used by points[{seen[point.name]}]")
                )
            seen.setdefault(point.name, p)
            address = f"{point.namespace_uri}|{point.node_id or point.browse_path}"
            if address in addresses:
                issues.append((path, f"this point reads the same node as points[{addresses[address]}]; remove one"))
            addresses.setdefault(address, p)
            if point.node_id is None:
                continue
            if not _NODE_ID.match(point.node_id):
                issues.append(
                    (
                        (*path, "node_id"),
                        f"{point.node_id!r} is not a node id; write nsu=<namespace URI>;s=<name> (or i=, g=, b=)",
                    )
                )
                continue
            match = _NS_INDEX.match(point.node_id)
            if match and match.group(1) != "0":
                issues.append(
                    (
                        (*path, "node_id"),
                        f"namespace index {match.group(1)} can change when the server restarts; "
                        "write nsu=<namespace URI>;... or give namespace_uri",
                    )
                )
    return issues
