"""Host names of a site that do not resolve on this machine: a ``validate`` warning at the key naming them.

A warning, not an error: ``validate`` may run on a laptop that does not see the plant's DNS. Lookups run in
parallel threads under one deadline (3 s), so an unreachable DNS server slows ``validate`` by at most that; names
still unanswered then are not reported. IP literals are never looked up.
"""

from __future__ import annotations

import concurrent.futures
import ipaddress
import socket
from urllib.parse import urlsplit

from agent.config.load import LoadedSite
from agent.config.opcua import OpcuaDeviceConfig
from agent.config.site import ModbusDeviceConfig, TcpGatewayConfig
from agent.errors import ConfigIssue

DEADLINE_S = 3.0


def unresolved_hosts(loaded: LoadedSite) -> list[ConfigIssue]:
    """One warning per host name (at each key that names it) that getaddrinfo says does not exist."""
    named: list[tuple[tuple[str | int, ...], str]] = []
    for i, bus in enumerate(loaded.site.buses):
        if isinstance(bus, TcpGatewayConfig):
            named.append((("buses", i, "host"), bus.host))
    for i, dev in enumerate(loaded.site.devices):
        if isinstance(dev, ModbusDeviceConfig) and dev.host:
            named.append((("devices", i, "host"), dev.host))
        elif isinstance(dev, OpcuaDeviceConfig):
            host = urlsplit(dev.endpoint).hostname
            if host:
                named.append((("devices", i, "endpoint"), host))
    names = sorted({host for _, host in named if not _is_ip(host)})
    if not names:
        return []
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=min(8, len(names)))
    futures = {name: pool.submit(_problem, name) for name in names}
    done, _ = concurrent.futures.wait(futures.values(), timeout=DEADLINE_S)
    pool.shutdown(wait=False, cancel_futures=True)
    problems = {name: why for name, f in futures.items() if f in done and (why := f.result()) is not None}
    return [loaded.issue(path, problems[host], "warning") for path, host in named if host in problems]


def resolve_problem(host: str) -> str | None:
    """Why ``host`` does not resolve here (one sentence with a hint), or None when it does or DNS cannot say."""
    return None if _is_ip(host) else _problem(host)


def _problem(host: str) -> str | None:
    try:
        socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        if exc.errno in (socket.EAI_NONAME, getattr(socket, "EAI_NODATA", socket.EAI_NONAME)):
            return (
                f"the host name {host!r} does not resolve on this machine: check its spelling, /etc/hosts and the "
                "DNS server of the gateway's network (an IP address needs no DNS)"
            )
        return None  # EAI_AGAIN and friends: DNS did not answer, which says nothing about the name
    return None


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True
