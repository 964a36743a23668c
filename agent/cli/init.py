"""``energy-agent init [SITE.yaml] [--site NAME] [--gateway NAME] [--broker HOST[:PORT]] [--force]``: a starter
site file that validates cleanly.

On a terminal it asks for what the flags did not give (Enter keeps the default in brackets); without one (a
script, a pipe, CI) it asks nothing and uses the flags and defaults: site ``plant1``, gateway the host name,
no broker. The file names the gateway, its time zone, a commented RS-485 bus, a commented Modbus meter and a
pointer to the OPC UA example, and the MQTT broker over TLS (port 8883 unless another is given; 1883 means no
TLS), with the next commands to run in its header. It refuses to replace an existing file without ``--force``.

Exit 0 written; 2 a name that cannot be a topic level; 73 (EX_CANTCREAT) the file exists or cannot be written.
"""

from __future__ import annotations

import argparse
import re
import socket
import sys
from pathlib import Path

from agent.cli.schema import FILES, installed_dir
from agent.config.site import NAME_PATTERN, timezone_problem

NAME = "init"
HELP = "write a starter site file (asks on a terminal; refuses to overwrite without --force)"
EX_CANTCREAT = 73
DEFAULT_SITE = "plant1"
DEFAULT_TIMEZONE = "Asia/Shanghai"
_BROKER = re.compile(r"^(?P<host>\[[0-9A-Fa-f:]+\]|[^\s:/\[\]]+)(?::(?P<port>\d{1,5}))?$")


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", type=Path, nargs="?", default=Path("site.yaml"), help="file to write (site.yaml)")
    parser.add_argument("--site", default=None, help=f"plant or site name (default {DEFAULT_SITE})")
    parser.add_argument("--gateway", default=None, help="this gateway's name (default: the host name)")
    parser.add_argument("--broker", default=None, metavar="HOST[:PORT]", help="MQTT broker (TLS on 8883 by default)")
    parser.add_argument("--timezone", default=None, help=f"IANA zone for shifts and days (default {DEFAULT_TIMEZONE})")
    parser.add_argument("--force", action="store_true", help="replace an existing file")


def default_gateway() -> str:
    """The host name as a valid gateway name (``gw1`` when nothing of it is usable)."""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", socket.gethostname().split(".")[0]).strip("-_.")[:64]
    return name if re.match(NAME_PATTERN, name) else "gw1"


def run(args: argparse.Namespace) -> int:
    path: Path = args.path
    if path.exists() and not args.force:
        print(f"energy-agent init: {path} exists; give --force to replace it", file=sys.stderr)
        return EX_CANTCREAT
    ask = sys.stdin.isatty() and sys.stdout.isatty()
    site = args.site or (_ask("Site (plant) name", DEFAULT_SITE, _name_problem) if ask else DEFAULT_SITE)
    gateway = args.gateway or (_ask("Gateway name", default_gateway(), _name_problem) if ask else default_gateway())
    timezone = args.timezone or (_ask("Time zone", DEFAULT_TIMEZONE, timezone_problem) if ask else DEFAULT_TIMEZONE)
    broker = args.broker
    if broker is None and ask:
        broker = _ask("MQTT broker host[:port] (Enter: none yet)", "", _broker_problem)
    checks = (
        ("--site", site, _name_problem),
        ("--gateway", gateway, _name_problem),
        ("--timezone", timezone, timezone_problem),
    )
    for label, value, problem in checks:
        if (why := problem(value)) is not None:
            print(f"energy-agent init: {label} {value!r}: {why}", file=sys.stderr)
            return 2
    if broker and (why := _broker_problem(broker)) is not None:
        print(f"energy-agent init: --broker {broker!r}: {why}", file=sys.stderr)
        return 2
    text = starter(path, site, gateway, timezone, broker or None)
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        print(f"energy-agent init: cannot write {path}: {exc.strerror}", file=sys.stderr)
        return EX_CANTCREAT
    print(f"wrote {path}; next: add devices (energy-agent list profiles), then energy-agent validate {path}")
    return 0


def _name_problem(value: str) -> str | None:
    if re.match(NAME_PATTERN, value):
        return None
    return "use 1 to 64 of A-Z a-z 0-9 _ . - (starting with a letter or digit): it becomes an MQTT topic level"


def _broker_problem(value: str) -> str | None:
    match = _BROKER.match(value)
    if not value or (match and (match["port"] is None or 1 <= int(match["port"]) <= 65535)):
        return None
    return "write host or host:port, e.g. mqtt.energy-centre.example:8883"


def _ask(prompt: str, default: str, problem: object) -> str:
    """Ask until the answer is acceptable; Enter takes ``default``."""
    while True:
        answer = input(f"{prompt} [{default}]: ").strip() or default
        why = problem(answer) if callable(problem) else None
        if why is None:
            return answer
        print(f"  {why}")


def starter(path: Path, site: str, gateway: str, timezone: str, broker: str | None) -> str:
    """The starter site file's text."""
    steps = [
        ("energy-agent list profiles", "a profile for each device (or write one: device_profiles/README.md)"),
        (f"energy-agent validate {path}", "every problem at once; exit 0, or 78"),
        (f"energy-agent plan {path}", "the Modbus requests of each poll"),
        (f"energy-agent probe {path} --watch", "live values (Ctrl-C ends)"),
    ]
    width = max(len(command) for command, _ in steps)
    schema = installed_dir() / FILES["site"]
    lines = [
        f"# yaml-language-server: $schema={schema}",
        f"# Site file of gateway {gateway} at {site}, written by `energy-agent init`.",
        "# Next steps (every key: energy-agent reference site, energy-agent reference kpi):",
        *(f"#   {command.ljust(width)}  {what}" for command, what in steps),
        f"site: {site}",
        f"gateway: {gateway}",
        f"timezone: {timezone}",
        "state_dir: /var/lib/energy-agent",
        "",
        "buses: []",
        "  # RS-485 on this gateway; devices on it are polled one request at a time. Replace [] above with:",
        "  # - {name: rs485-1, transport: rtu, port: /dev/ttyUSB0, baudrate: 9600, parity: N}",
        "",
        "devices: []",
        "  # A Modbus energy meter: replace [] above with (host for Modbus TCP, or bus: rs485-1 with its unit_id):",
        "  # - name: main-meter",
        "  #   profile: generic-3ph-meter",
        "  #   host: 192.0.2.10",
        "  #   unit_id: 1",
        "  #   interval_s: 1",
        "  # A DL/T 645 meter (its nameplate address in quotes; DL/T 645 meters usually run 8E1: parity E, or leave",
        "  # parity out on a DL/T 645-only bus; energy-agent probe SITE.yaml --read-address rs485-1 reads a lone",
        "  # meter's address):",
        "  # - {name: feeder-1, protocol: dlt645, profile: dlt645-generic-2007-3ph-meter, bus: rs485-1,",
        "  #    address: '000012345678', ct_ratio: 200, pt_ratio: 100, interval_s: 15}",
        "  # An OPC UA server (security, user, certificates, trust_dir): see the kiln1-plc device of",
        "  # deploy/site.example.yaml; energy-agent browse SITE.yaml --device NAME --yaml prints its points.",
        "",
    ]
    if broker is None:
        lines += [
            "# mqtt:  where samples and KPIs go (until it is set, they stay in the spool):",
            "#   host: mqtt.energy-centre.example",
            "#   tls: {ca_file: /etc/energy-agent/ca.crt}",
        ]
    else:
        match = _BROKER.match(broker)
        assert match is not None
        port = int(match["port"] or 8883)
        lines += ["mqtt:", f"  host: {match['host'].strip('[]')}", f"  port: {port}"]
        if port != 1883:
            lines += ["  tls: {ca_file: /etc/energy-agent/ca.crt}   # the CA that signed the broker's certificate"]
        lines += [
            f"  # username: {gateway}",
            "  # password_file: /run/credentials/energy-agent.service/mqtt-password",
        ]
    return "\n".join(lines) + "\n"
