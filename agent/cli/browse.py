"""``energy-agent browse opc.tcp://host:port [security options]`` or ``energy-agent browse SITE.yaml [--device NAME]``:
print an OPC UA server's address space.

Prints the namespace table, then every node below Objects (the standard Server object is skipped unless
``--all``) with its browse path, node id in ``nsu=`` form, node class, and for variables data type, current value
and status, so a technician can write the ``points`` of a device. Given a site file, the endpoint, security,
certificates and user come from the site's OPC UA device (``--device`` picks one when there are several).
``--yaml`` prints the variables instead as a ``points:`` block to paste into the site file under that device (each
with a name made from its browse path and its node id; data type and value as a comment). ``--trust-new-server``
pins the certificate the server presents when it is not trusted yet (commissioning only; the running agent never
does this).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import logging
import re
import sys
from pathlib import Path

from agent.cli._hints import hints
from agent.cli.opcua import add_security_args, fetch_and_pin, plan_from_args
from agent.config.load import load_site
from agent.config.opcua import OpcuaDeviceConfig
from agent.config.refuse import refuse
from agent.errors import ConfigError, SourceError
from agent.sources.opcua.browse import BrowseEntry, walk
from agent.sources.opcua.plan import DevicePlan, compile_device
from agent.sources.opcua.session import OpcuaSession

NAME = "browse"
HELP = "print an OPC UA server's address space (node ids, browse paths, types, values), or points: to paste"
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("endpoint", help="opc.tcp://host:port, or a site file with an OPC UA device")
    parser.add_argument("--device", default=None, metavar="NAME", help="the site's OPC UA device to browse")
    parser.add_argument("--yaml", action="store_true", help="print the variables as points: for the site file")
    add_security_args(parser)
    parser.add_argument("--depth", type=int, default=6, help="levels below Objects (default 6)")
    parser.add_argument("--max-nodes", type=int, default=5000)
    parser.add_argument("--all", action="store_true", help="include the standard objects (Server, Aliases)")
    parser.add_argument("--trust-new-server", action="store_true", help="pin an untrusted server certificate")


def run(args: argparse.Namespace) -> int:
    logging.getLogger("asyncua").setLevel(logging.CRITICAL)  # our one-line errors say it; its tracebacks do not help
    if not args.endpoint.startswith("opc.tcp://"):
        return _browse_site(args, Path(args.endpoint))
    try:
        plan = plan_from_args(args)
    except ValueError as exc:
        print(f"browse: {exc}", file=sys.stderr)
        return 2
    return asyncio.run(_browse(args, plan))


def _browse_site(args: argparse.Namespace, site: Path) -> int:
    """Browse with the endpoint, security and user of the site's OPC UA device."""
    try:
        loaded = load_site(site)
    except ConfigError as exc:
        return refuse(exc)
    devices = [d for d in loaded.site.devices if isinstance(d, OpcuaDeviceConfig)]
    chosen = [d for d in devices if args.device in (None, d.name)]
    if len(chosen) != 1:
        names = ", ".join(d.name for d in devices) or "none"
        why = f"no OPC UA device named {args.device}" if args.device else "give --device NAME"
        print(f"browse: {why} in {site} (OPC UA devices: {names})", file=sys.stderr)
        return 2
    plan = compile_device(chosen[0], site.parent)
    return asyncio.run(_browse(args, dataclasses.replace(plan, points=(), subscribe=False)))


async def _browse(args: argparse.Namespace, plan: DevicePlan) -> int:
    if plan.secure and args.trust_new_server:
        assert plan.trust_dir is not None
        hostport = plan.endpoint.removeprefix("opc.tcp://").split("/", 1)[0].replace(":", "_")
        code = await fetch_and_pin(
            plan.endpoint, plan.trust_dir, plan.policy, plan.mode, plan.timeout_s, hostport, False
        )
        if code:
            return code
    try:
        async with OpcuaSession(plan) as session:
            assert session.client is not None
            namespaces: list[str] = await session.client.get_namespace_array()
            entries = await walk(session.client, args.depth, args.max_nodes, args.all)
    except SourceError as exc:
        print(str(exc), file=sys.stderr)
        for text in hints([str(exc)]):
            print(f"hint: {text}", file=sys.stderr)
        return 1
    if args.yaml:
        print("\n".join(points_yaml(plan, entries)))
        return 0
    print(f"{plan.endpoint} ({plan.policy.value}/{plan.mode.value})")
    print("namespaces:")
    for i, uri in enumerate(namespaces):
        print(f"  [{i}] {uri}")
    print("nodes below Objects (browse path | node id | class | data type | value | status):")
    for e in entries:
        indent = "  " * (e.depth + 1)
        fields = [f"{indent}{e.browse_path}", e.node_id, e.node_class]
        if e.node_class == "Variable":
            fields += [e.data_type, e.value, e.status]
        print(" | ".join(fields))
    if len(entries) >= args.max_nodes:
        print(f"(stopped at {args.max_nodes} nodes; use --max-nodes or --depth)")
    return 0


def points_yaml(plan: DevicePlan, entries: list[BrowseEntry]) -> list[str]:
    """A ``points:`` block, indented for a device entry of the site file, one flow mapping per variable."""
    variables = [e for e in entries if e.node_class == "Variable"]
    lines = [
        f"    # {len(variables)} variables of {plan.endpoint}: paste under the device, keep the points you need,",
        "    # and add unit, role and range to each (energy-agent list roles)",
        "    points:",
    ]
    used: set[str] = set()
    for e in variables:
        name = _point_name(e.browse_path, used)
        node_id = json.dumps(e.node_id)
        lines.append(f"      - {{name: {json.dumps(name)}, node_id: {node_id}}}  # {e.data_type} = {e.value}".rstrip())
    return lines


def _point_name(browse_path: str, used: set[str]) -> str:
    """``Kiln1/2:Temp`` -> ``Kiln1.Temp``: the browse names joined by dots, unique, at most 64 allowed chars."""
    steps = [step.split(":", 1)[1] if re.match(r"^\d+:", step) else step for step in browse_path.split("/")]
    base = _UNSAFE.sub("_", ".".join(steps)).strip("._-")[:60] or "point"
    name, n = base, 1
    while name in used:
        n += 1
        name = f"{base}_{n}"
    used.add(name)
    return name
