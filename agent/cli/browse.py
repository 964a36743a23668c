"""``energy-agent browse opc.tcp://host:port [security options]``: print an OPC UA server's address space.

Prints the namespace table, then every node below Objects (the standard Server object is skipped unless
``--all``) with its browse path, node id in ``nsu=`` form, node class, and for variables data type, current value
and status, so a technician can write the ``points`` of a device. ``--trust-new-server`` pins the certificate the
server presents when it is not trusted yet (commissioning only; the running agent never does this).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from agent.cli.opcua import add_security_args, fetch_and_pin, plan_from_args
from agent.errors import SourceError
from agent.sources.opcua.browse import walk
from agent.sources.opcua.plan import DevicePlan
from agent.sources.opcua.session import OpcuaSession

NAME = "browse"
HELP = "print an OPC UA server's address space (node ids, browse paths, types, values)"


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("endpoint", help="opc.tcp://host:port")
    add_security_args(parser)
    parser.add_argument("--depth", type=int, default=6, help="levels below Objects (default 6)")
    parser.add_argument("--max-nodes", type=int, default=5000)
    parser.add_argument("--all", action="store_true", help="include the standard objects (Server, Aliases)")
    parser.add_argument("--trust-new-server", action="store_true", help="pin an untrusted server certificate")


def run(args: argparse.Namespace) -> int:
    logging.getLogger("asyncua").setLevel(logging.CRITICAL)  # our one-line errors say it; its tracebacks do not help
    try:
        plan = plan_from_args(args)
    except ValueError as exc:
        print(f"browse: {exc}", file=sys.stderr)
        return 2
    return asyncio.run(_browse(args, plan))


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
        return 1
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
