"""Compile an ``OpcuaDeviceConfig`` into a read plan before any I/O, and resolve it against a server's namespace
table at each connect (namespace indexes may change when a server restarts; URIs do not).

Node id text forms (see ``agent.config.opcua``): ``nsu=<uri>;s=X``, ``s=X`` + ``namespace_uri``, ``ns=<n>;s=X``,
``i=123`` (namespace 0). Browse paths are ``A/B/C`` below the Objects folder, each name in the point's namespace
unless written ``0:Name``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

from asyncua import ua
from asyncua.ua.object_ids import ObjectIds

from agent.config.opcua import (
    AnonymousAuthConfig,
    CertificateAuthConfig,
    OpcuaDeviceConfig,
    OpcuaPointConfig,
    SecurityMode,
    SecurityPolicy,
    UsernameAuthConfig,
)
from agent.model import Role

_IDENTIFIER = re.compile(r"^(i|s|g|b)=.+$", re.DOTALL)


@dataclass(frozen=True, slots=True)
class NodeRef:
    """A node id whose namespace is either a URI (resolved at connect) or a fixed index."""

    identifier: str  # "s=Kiln1.CoalFeed", "i=2258"
    namespace_uri: str | None
    namespace_index: int | None  # used when namespace_uri is None

    def text(self) -> str:
        if self.namespace_uri is not None:
            return f"nsu={self.namespace_uri};{self.identifier}"
        return f"ns={self.namespace_index or 0};{self.identifier}"


@dataclass(frozen=True, slots=True)
class BrowseRef:
    """A browse path below the Objects folder: (namespace URI or None for ns 0, browse name) per step."""

    steps: tuple[tuple[str | None, str], ...]

    def text(self) -> str:
        return "/".join(name if uri else f"0:{name}" for uri, name in self.steps)


Address = NodeRef | BrowseRef


@dataclass(frozen=True, slots=True)
class PointPlan:
    name: str
    address: Address
    unit: str
    role: Role | None
    value_range: tuple[float, float] | None
    sampling_interval_ms: float
    queue_size: int
    deadband: tuple[str, float] | None  # ("absolute" | "percent", value)


@dataclass(frozen=True, slots=True)
class AuthPlan:
    kind: str  # "anonymous", "username", "certificate"
    username: str | None = None
    password_file: Path | None = None
    password_env: str | None = None
    cert_file: Path | None = None
    key_file: Path | None = None


@dataclass(frozen=True, slots=True)
class DevicePlan:
    device: str
    endpoint: str
    policy: SecurityPolicy
    mode: SecurityMode
    auth: AuthPlan
    client_cert: Path | None
    client_key: Path | None
    trust_dir: Path | None
    interval_s: float
    timeout_s: float
    session_timeout_s: float
    subscribe: bool
    points: tuple[PointPlan, ...]

    @property
    def secure(self) -> bool:
        return self.policy is not SecurityPolicy.NONE


def parse_node_id(text: str, namespace_uri: str | None) -> NodeRef:
    """``nsu=<uri>;s=X`` / ``ns=2;s=X`` / ``s=X`` (+ namespace_uri) -> NodeRef. Raises ValueError."""
    rest = text  # no strip: a string identifier may end in a space
    uri = namespace_uri
    index: int | None = None
    if rest.startswith("nsu="):
        uri, sep, rest = rest[4:].partition(";")
        if not sep or not uri:
            raise ValueError(f"node id {text!r}: expected nsu=<namespace URI>;<i|s|g|b>=<identifier>")
    elif rest.startswith("ns="):
        number, sep, rest = rest[3:].partition(";")
        if not sep or not number.isdigit():
            raise ValueError(f"node id {text!r}: expected ns=<index>;<i|s|g|b>=<identifier>")
        index = int(number)
    if not _IDENTIFIER.match(rest):
        raise ValueError(f"node id {text!r}: the identifier must start with i=, s=, g= or b=")
    if rest.startswith("i=") and not rest[2:].isdigit():
        raise ValueError(f"node id {text!r}: i= needs a number")
    return NodeRef(rest, uri, index if uri is None else None)


def parse_browse_path(text: str, namespace_uri: str) -> BrowseRef:
    steps: list[tuple[str | None, str]] = []
    for part in text.strip("/").split("/"):
        if not part:
            raise ValueError(f"browse path {text!r} has an empty step")
        if part.startswith("0:"):
            steps.append((None, part[2:]))
        else:
            steps.append((namespace_uri, part))
    return BrowseRef(tuple(steps))


def _path(base: Path, value: str | None) -> Path | None:
    if value is None:
        return None
    p = Path(value).expanduser()
    return p if p.is_absolute() else base / p


def compile_device(config: OpcuaDeviceConfig, base_dir: Path) -> DevicePlan:
    """The plan of one device; file paths relative to ``base_dir`` (the site file's folder)."""
    points: list[PointPlan] = []
    for p in config.points:
        address: Address
        if p.node_id is not None:
            address = parse_node_id(p.node_id, p.namespace_uri)
        else:
            assert p.browse_path is not None and p.namespace_uri is not None  # the config model checked it
            address = parse_browse_path(p.browse_path, p.namespace_uri)
        points.append(
            PointPlan(
                name=p.name,
                address=address,
                unit=p.unit,
                role=p.role,
                value_range=p.range,
                sampling_interval_ms=p.sampling_interval_ms
                if p.sampling_interval_ms is not None
                else config.interval_s * 1000.0,
                queue_size=p.queue_size if p.queue_size is not None else default_queue_size(config, p),
                deadband=(p.deadband.type, p.deadband.value) if p.deadband is not None else None,
            )
        )
    auth = config.auth
    if isinstance(auth, UsernameAuthConfig):
        auth_plan = AuthPlan("username", auth.username, _path(base_dir, auth.password_file), auth.password_env)
    elif isinstance(auth, CertificateAuthConfig):
        auth_plan = AuthPlan(
            "certificate", cert_file=_path(base_dir, auth.cert_file), key_file=_path(base_dir, auth.key_file)
        )
    else:
        assert isinstance(auth, AnonymousAuthConfig)
        auth_plan = AuthPlan("anonymous")
    return DevicePlan(
        device=config.name,
        endpoint=config.endpoint,
        policy=config.security.policy,
        mode=config.security.mode,
        auth=auth_plan,
        client_cert=_path(base_dir, config.client_cert),
        client_key=_path(base_dir, config.client_key),
        trust_dir=_path(base_dir, config.trust_dir),
        interval_s=config.interval_s,
        timeout_s=config.timeout_ms / 1000.0,
        session_timeout_s=config.session_timeout_s,
        subscribe=config.mode == "subscribe",
        points=tuple(points),
    )


def default_queue_size(config: OpcuaDeviceConfig, point: OpcuaPointConfig) -> int:
    """Room on the server for the data changes of two publishing intervals (at least 4, at most 1000): with a
    queue of 1 a change that comes just before the next is discarded when both fall between two publishes."""
    sampling_ms = point.sampling_interval_ms if point.sampling_interval_ms is not None else config.interval_s * 1000.0
    per_publish = config.interval_s * 1000.0 / sampling_ms if sampling_ms > 0 else 100.0
    return max(4, min(1000, math.ceil(2 * per_publish) + 2))


def namespace_uris(plan: DevicePlan) -> set[str]:
    uris: set[str] = set()
    for p in plan.points:
        if isinstance(p.address, NodeRef) and p.address.namespace_uri is not None:
            uris.add(p.address.namespace_uri)
        elif isinstance(p.address, BrowseRef):
            uris.update(uri for uri, _ in p.address.steps if uri is not None)
    return uris


def node_id_for(ref: NodeRef, namespaces: dict[str, int]) -> ua.NodeId:
    """The NodeId with the namespace index the server uses now. KeyError if the URI is unknown there."""
    index = namespaces[ref.namespace_uri] if ref.namespace_uri is not None else (ref.namespace_index or 0)
    return ua.NodeId.from_string(f"ns={index};{ref.identifier}")


def relative_path_for(ref: BrowseRef, namespaces: dict[str, int]) -> ua.RelativePath:
    """The RelativePath (hierarchical references) from Objects. KeyError if a URI is unknown there."""
    path = ua.RelativePath()
    for uri, name in ref.steps:
        element = ua.RelativePathElement()
        element.ReferenceTypeId = ua.NodeId.from_string(f"i={ObjectIds.HierarchicalReferences}")
        element.IsInverse = False  # type: ignore[assignment]  # asyncua's Boolean is not a bool subclass
        element.IncludeSubtypes = True  # type: ignore[assignment]  # same
        element.TargetName = ua.QualifiedName(ua.String(name), ua.UInt16(namespaces[uri] if uri is not None else 0))
        path.Elements.append(element)
    return path
