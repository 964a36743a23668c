"""``energy-agent opcua cert|trust``: the client's application certificate, and pinning a server certificate.

    energy-agent opcua cert --cert pki/agent-cert.der --key pki/agent-key.pem [--application-uri URI]
    energy-agent opcua trust opc.tcp://10.0.0.5:4840 --trust-dir pki/trusted [--policy ...] [--mode ...] [--yes]

``cert`` writes a self-signed application instance certificate (DER) whose SubjectAltName carries the application
URI the server checks against the client's ApplicationUri (the agent reads it back from the certificate), and its
key with file mode 0600. ``trust`` shows the certificate a server presents (subject, URI, validity, SHA-256) and
pins it in the trust folder only when the technician confirms (or gives ``--yes``): this is the one place where
trust on first use happens, on purpose, during commissioning.

The security options shared with ``browse`` are defined here too.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path

from cryptography import x509

from agent.config.opcua import SecurityMode, SecurityPolicy
from agent.errors import SourceError
from agent.sources.opcua import pki
from agent.sources.opcua.errors import map_error
from agent.sources.opcua.plan import AuthPlan, DevicePlan
from agent.sources.opcua.security import server_certificate

NAME = "opcua"
HELP = "OPC UA commissioning: make the client certificate, pin a server certificate"


def add_security_args(p: argparse.ArgumentParser) -> None:
    """Options to reach a server: security policy and mode, certificates, trust folder, user."""
    p.add_argument("--policy", choices=[x.value for x in SecurityPolicy], default=SecurityPolicy.BASIC256SHA256.value)
    p.add_argument("--mode", choices=[x.value for x in SecurityMode], default=None, help="default: SignAndEncrypt")
    p.add_argument("--cert", type=Path, default=None, help="client application certificate")
    p.add_argument("--key", type=Path, default=None, help="its private key")
    p.add_argument("--trust-dir", type=Path, default=None, help="folder of trusted server certificates")
    p.add_argument("--user", default=None, help="user name (the password comes from --password-file or -env)")
    p.add_argument("--password-file", type=Path, default=None)
    p.add_argument("--password-env", default=None)
    p.add_argument("--timeout-s", type=float, default=4.0)


def security_of(args: argparse.Namespace) -> tuple[SecurityPolicy, SecurityMode]:
    policy = SecurityPolicy(args.policy)
    if args.mode is not None:
        return policy, SecurityMode(args.mode)
    return policy, SecurityMode.NONE if policy is SecurityPolicy.NONE else SecurityMode.SIGN_AND_ENCRYPT


def plan_from_args(args: argparse.Namespace, device: str = "browse") -> DevicePlan:
    """A DevicePlan without points for commissioning commands. ValueError with a sentence when options clash."""
    policy, mode = security_of(args)
    if (policy is SecurityPolicy.NONE) != (mode is SecurityMode.NONE):
        raise ValueError("policy None goes with mode None, and a real policy with Sign or SignAndEncrypt")
    if policy is not SecurityPolicy.NONE and (args.cert is None or args.key is None or args.trust_dir is None):
        raise ValueError(
            f"policy {policy.value} needs --cert, --key (make them with: energy-agent opcua cert) and --trust-dir; "
            "or use --policy None on a test network"
        )
    if args.user is not None:
        if (args.password_file is None) == (args.password_env is None):
            raise ValueError("--user needs exactly one of --password-file or --password-env")
        auth = AuthPlan("username", args.user, args.password_file, args.password_env)
    else:
        auth = AuthPlan("anonymous")
    return DevicePlan(
        device=device,
        endpoint=args.endpoint,
        policy=policy,
        mode=mode,
        auth=auth,
        client_cert=args.cert,
        client_key=args.key,
        trust_dir=args.trust_dir,
        interval_s=1.0,
        timeout_s=args.timeout_s,
        session_timeout_s=30.0,
        subscribe=False,
        points=(),
    )


def register(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="opcua_command", required=True, metavar="ACTION")
    cert = sub.add_parser("cert", help="create the client's application instance certificate and key")
    cert.add_argument("--cert", type=Path, required=True, help="certificate file to write (DER)")
    cert.add_argument("--key", type=Path, required=True, help="key file to write (PEM, mode 0600)")
    cert.add_argument("--application-uri", default=None, help="default: urn:<hostname>:energy-agent")
    cert.add_argument("--hostname", default=None, help="DNS name in the certificate; default: this host")
    cert.add_argument("--days", type=int, default=730)
    cert.add_argument("--force", action="store_true", help="overwrite existing files")
    trust = sub.add_parser("trust", help="show a server's certificate and pin it in the trust folder")
    trust.add_argument("endpoint", help="opc.tcp://host:port")
    trust.add_argument("--trust-dir", type=Path, required=True)
    trust.add_argument("--policy", choices=[x.value for x in SecurityPolicy if x is not SecurityPolicy.NONE])
    trust.add_argument("--mode", choices=[SecurityMode.SIGN.value, SecurityMode.SIGN_AND_ENCRYPT.value])
    trust.add_argument("--name", default=None, help="file name stem in the trust folder; default: host_port")
    trust.add_argument("--yes", action="store_true", help="pin without asking (you checked the thumbprint)")
    trust.add_argument("--timeout-s", type=float, default=4.0)


def run(args: argparse.Namespace) -> int:
    logging.getLogger("asyncua").setLevel(logging.CRITICAL)  # our one-line errors say it; its tracebacks do not help
    if args.opcua_command == "cert":
        return _cert(args)
    return asyncio.run(_trust(args))


def _cert(args: argparse.Namespace) -> int:
    for path in (args.cert, args.key):
        if path.exists() and not args.force:
            print(f"{path} exists; give --force to replace it (servers that trusted it will refuse the new one)")
            return 1
    uri = args.application_uri or pki.default_application_uri(args.hostname)
    cert = pki.make_application_certificate(args.cert, args.key, uri, args.hostname, args.days)
    print(f"wrote {args.cert} and {args.key} (mode 0600)")
    print(f"application URI {uri}")
    print(pki.describe(cert))
    print("give the certificate to the server's administrator to trust it")
    return 0


async def fetch_and_pin(
    endpoint: str,
    trust_dir: Path,
    policy: SecurityPolicy,
    mode: SecurityMode,
    timeout_s: float,
    name: str,
    confirm: bool,
) -> int:
    """Show the server certificate; pin it when ``confirm`` is False or the technician answers yes."""
    try:
        der = await server_certificate(endpoint, policy, mode, timeout_s)
    except Exception as exc:
        error = exc if isinstance(exc, SourceError) else map_error("opcua", endpoint, exc)
        print(f"{endpoint}: {error}", file=sys.stderr)
        return 1
    cert = x509.load_der_x509_certificate(der)
    decision = pki.check_trusted(cert, trust_dir)
    print(f"{endpoint} presents: {pki.describe(cert)}")
    if decision.trusted:
        print(f"already trusted: {decision.why}")
        return 0
    if confirm:
        if not sys.stdin.isatty():
            print(
                "not trusted, nothing written: no terminal to ask on; compare the SHA-256 above with the server's "
                "own display, then re-run with --yes",
                file=sys.stderr,
            )
            return 1
        prompt = "Compare the SHA-256 with the server's own display. Trust it? [y/N] "
        try:
            answer = (await asyncio.to_thread(input, prompt)).strip().lower()
        except EOFError:  # Ctrl-D
            answer = ""
        if answer not in ("y", "yes"):
            print("not trusted; nothing written")
            return 1
    path = pki.pin(cert, trust_dir, name)
    print(f"pinned in {path}")
    return 0


async def _trust(args: argparse.Namespace) -> int:
    policy = SecurityPolicy(args.policy) if args.policy else SecurityPolicy.BASIC256SHA256
    mode = SecurityMode(args.mode) if args.mode else SecurityMode.SIGN_AND_ENCRYPT
    hostport = args.endpoint.removeprefix("opc.tcp://").split("/", 1)[0].replace(":", "_")
    return await fetch_and_pin(
        args.endpoint, args.trust_dir, policy, mode, args.timeout_s, args.name or hostport, not args.yes
    )
