"""Walk a server's address space below Objects for commissioning: what a technician needs to write points.

Each entry has the browse path (names in the entry's own namespace written plainly, ``0:Name`` for the standard
namespace, ``<index>:Name`` for a third namespace), the node id in ``nsu=<uri>;...`` form (stable across server
restarts), the node class, and for variables the data type, current value and status. Reading only.
"""

from __future__ import annotations

from dataclasses import dataclass

from asyncua import ua
from asyncua.client.client import Client
from asyncua.common.node import Node
from asyncua.ua.attribute_ids import AttributeIds
from asyncua.ua.object_ids import ObjectIdNames, ObjectIds

from agent.sources.opcua.status import convert_value, status_name


@dataclass(frozen=True, slots=True)
class BrowseEntry:
    depth: int
    browse_path: str
    namespace_uri: str
    node_id: str  # nsu=<uri>;s=... (or ns=0;i=... for the standard namespace)
    node_class: str
    data_type: str = ""
    value: str = ""
    status: str = ""


def node_id_text(node_id: ua.NodeId, namespaces: list[str]) -> str:
    """``nsu=<uri>;s=Name`` for a node outside namespace 0, ``i=2253`` inside it."""
    plain = node_id.to_string()  # "ns=2;s=X" or "i=85"
    identifier = plain.split(";", 1)[1] if plain.startswith("ns=") else plain
    index = node_id.NamespaceIndex
    if index == 0:
        return identifier
    uri = namespaces[index] if index < len(namespaces) else str(index)
    return f"nsu={uri};{identifier}"


def _step(name: ua.QualifiedName, leaf_ns: int) -> str:
    if name.NamespaceIndex == leaf_ns and leaf_ns != 0:
        return str(name.Name)
    return f"{name.NamespaceIndex}:{name.Name}"


def _data_type_name(node_id: ua.NodeId) -> str:
    if node_id.NamespaceIndex == 0 and isinstance(node_id.Identifier, int):
        return str(ObjectIdNames.get(node_id.Identifier, node_id.to_string()))
    return str(node_id.to_string())


async def walk(
    client: Client, max_depth: int = 6, max_nodes: int = 5000, include_server: bool = False
) -> list[BrowseEntry]:
    """Entries below Objects, depth-first, at most ``max_nodes`` (a server may be huge)."""
    namespaces: list[str] = await client.get_namespace_array()
    objects = client.get_node(ua.NodeId.from_string(f"i={ObjectIds.ObjectsFolder}"))
    entries: list[BrowseEntry] = []
    pending: list[tuple[Node, list[ua.QualifiedName], int]] = [(objects, [], 0)]
    variables: list[tuple[int, Node]] = []
    seen: set[str] = set()
    while pending and len(entries) < max_nodes:
        node, path, depth = pending.pop()
        children = await node.get_children_descriptions()
        for ref in reversed(children):
            child_id = ua.NodeId(ref.NodeId.Identifier, ref.NodeId.NamespaceIndex, ref.NodeId.NodeIdType)
            key = child_id.to_string()
            if key in seen or (not include_server and depth == 0 and child_id.NamespaceIndex == 0):
                continue  # Server, Aliases, ...: the standard objects, not the plant
            seen.add(key)
            steps = [*path, ref.BrowseName]
            leaf_ns = ref.BrowseName.NamespaceIndex
            entries.append(
                BrowseEntry(
                    depth=depth,
                    browse_path="/".join(_step(s, leaf_ns) for s in steps),
                    namespace_uri=namespaces[leaf_ns] if leaf_ns < len(namespaces) else "",
                    node_id=node_id_text(child_id, namespaces),
                    node_class=ref.NodeClass.name,
                )
            )
            child = client.get_node(child_id)
            if ref.NodeClass == ua.NodeClass.Variable:
                variables.append((len(entries) - 1, child))
            if depth + 1 < max_depth and ref.NodeClass == ua.NodeClass.Object:
                pending.append((child, steps, depth + 1))
            if len(entries) >= max_nodes:
                break
    await _fill_values(client, entries, variables)
    entries.sort(key=lambda e: e.browse_path)
    return entries


async def _fill_values(client: Client, entries: list[BrowseEntry], variables: list[tuple[int, Node]]) -> None:
    for start in range(0, len(variables), 500):
        chunk = variables[start : start + 500]
        nodes = [n for _, n in chunk]
        values = await client.read_attributes(nodes, AttributeIds.Value)
        types = await client.read_attributes(nodes, AttributeIds.DataType)
        for (index, _), dv, dt in zip(chunk, values, types, strict=True):
            code = dv.StatusCode.value if dv.StatusCode is not None else 0
            raw = dv.Value.Value if dv.Value is not None else None
            value, why = convert_value(raw)
            text = "" if value is None else repr(value) if isinstance(value, str) else str(value)
            type_name = _data_type_name(dt.Value.Value) if dt.Value is not None and dt.Value.Value else ""
            e = entries[index]
            entries[index] = BrowseEntry(
                e.depth,
                e.browse_path,
                e.namespace_uri,
                e.node_id,
                e.node_class,
                type_name,
                text or why,
                status_name(code),
            )
