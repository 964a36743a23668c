"""Plan compiled from config before any I/O, and resolved against a namespace table at connect time."""

from __future__ import annotations

from pathlib import Path

import pytest
from asyncua import ua
from hypothesis import given
from hypothesis import strategies as st

from agent.config.opcua import OpcuaDeviceConfig
from agent.sources.opcua.plan import (
    BrowseRef,
    NodeRef,
    compile_device,
    namespace_uris,
    node_id_for,
    parse_browse_path,
    parse_node_id,
    relative_path_for,
)

NS = "urn:plant"


@pytest.mark.parametrize(
    ("text", "uri", "expected"),
    [
        ("nsu=urn:plant;s=Kiln1.Coal", None, NodeRef("s=Kiln1.Coal", "urn:plant", None)),
        ("s=Kiln1.Coal", "urn:plant", NodeRef("s=Kiln1.Coal", "urn:plant", None)),
        ("ns=4;i=17", None, NodeRef("i=17", None, 4)),
        ("i=2258", None, NodeRef("i=2258", None, None)),
    ],
)
def test_parse_node_id_forms(text: str, uri: str | None, expected: NodeRef) -> None:
    assert parse_node_id(text, uri) == expected


@pytest.mark.parametrize("text", ["Kiln1.Coal", "nsu=;s=x", "ns=x;s=y", "i=abc", "nsu=urn:a"])
def test_parse_node_id_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="node id"):
        parse_node_id(text, None)


def test_node_id_uses_todays_namespace_index() -> None:
    ref = parse_node_id("s=Kiln1.Coal", NS)
    assert node_id_for(ref, {NS: 2}) == ua.NodeId.from_string("ns=2;s=Kiln1.Coal")
    assert node_id_for(ref, {"urn:other": 2, NS: 5}) == ua.NodeId.from_string("ns=5;s=Kiln1.Coal")
    with pytest.raises(KeyError):
        node_id_for(ref, {"urn:other": 2})
    assert node_id_for(parse_node_id("i=2258", None), {}) == ua.NodeId.from_string("i=2258")


def test_browse_path_steps_and_relative_path() -> None:
    ref = parse_browse_path("/0:Server/Kiln1/Coal", NS)
    assert ref == BrowseRef(((None, "Server"), (NS, "Kiln1"), (NS, "Coal")))
    assert ref.text() == "0:Server/Kiln1/Coal"
    path = relative_path_for(ref, {NS: 3})
    assert [(e.TargetName.NamespaceIndex, e.TargetName.Name) for e in path.Elements] == [
        (0, "Server"),
        (3, "Kiln1"),
        (3, "Coal"),
    ]
    with pytest.raises(ValueError, match="empty step"):
        parse_browse_path("Kiln1//Coal", NS)


def test_compile_device_resolves_paths_and_defaults(tmp_path: Path) -> None:
    cfg = OpcuaDeviceConfig.model_validate(
        {
            "name": "kiln1",
            "endpoint": "opc.tcp://127.0.0.1:4840",
            "client_cert": "pki/c.der",
            "client_key": "/abs/k.pem",
            "trust_dir": "pki/trusted",
            "auth": {"type": "username", "username": "op", "password_file": "secrets/pw"},
            "interval_s": 2,
            "mode": "poll",
            "points": [
                {"name": "coal", "browse_path": "Kiln1/Coal", "namespace_uri": NS, "range": [0, 40]},
                {
                    "name": "energy",
                    "node_id": "nsu=urn:meter;s=E",
                    "sampling_interval_ms": 250,
                    "queue_size": 4,
                    "deadband": {"type": "absolute", "value": 0.5},
                },
            ],
        }
    )
    plan = compile_device(cfg, tmp_path)
    assert plan.client_cert == tmp_path / "pki/c.der" and plan.client_key == Path("/abs/k.pem")
    assert plan.auth.password_file == tmp_path / "secrets/pw" and plan.auth.username == "op"
    assert not plan.subscribe and plan.secure and plan.timeout_s == 4.0
    coal, energy = plan.points
    assert coal.sampling_interval_ms == 2000.0 and coal.value_range == (0.0, 40.0) and coal.deadband is None
    assert (energy.sampling_interval_ms, energy.queue_size, energy.deadband) == (250.0, 4, ("absolute", 0.5))
    assert namespace_uris(plan) == {NS, "urn:meter"}


_uri = st.from_regex(r"urn:[a-z][a-z0-9:.-]{0,30}", fullmatch=True)
_identifier = st.one_of(
    st.integers(min_value=0, max_value=2**32 - 1).map(lambda i: f"i={i}"),
    st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=40).map(lambda s: f"s={s}"),
)


@given(uri=st.one_of(st.none(), _uri), index=st.integers(min_value=0, max_value=65535), identifier=_identifier)
def test_node_id_text_round_trips(uri: str | None, index: int, identifier: str) -> None:
    ref = NodeRef(identifier, uri, None if uri else index)
    again = parse_node_id(ref.text(), None)
    assert again.identifier == ref.identifier and again.namespace_uri == ref.namespace_uri
    namespaces = {uri: 7} if uri else {}
    assert node_id_for(again, namespaces).NamespaceIndex == (7 if uri else index)
