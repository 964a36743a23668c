"""OPC UA simulator: an asyncua server serving ``simulators.plant.PlantModel``.

Address space: ``Objects/<device>/<value>`` for every device of the plant (kiln1, boiler1, raw-mill-vfd,
compressor1, ...), one Double variable per value the model gives (named by ``agent.model.Role`` values, e.g.
``coal_feed_tph``), node ids ``nsu=urn:energy-agent:simulator:plant;s=<device>.<value>``. Every ``step_s`` the
model advances to the wall clock and each variable is written with SourceTimestamp = the model time of the step,
so a client can recompute the ground truth from (seed, start, step_s, source timestamp).

Security: ``--policies`` (None, Basic256Sha256_Sign, Basic256Sha256_SignAndEncrypt, Aes128_Sha256_RsaOaep_Sign, ...),
server certificate and key (made in ``--pki-dir`` if missing), ``--client-trust-dir`` (only client certificates
found there are accepted; read at every session, so trusting a client takes effect at once; ``--client-trust-at
channel`` refuses an untrusted client already at OpenSecureChannel with a ServiceFault BadSecurityChecksFailed, as
many servers do, instead of at CreateSession with BadCertificateUntrusted), ``--users-file`` with ``name:password`` lines
(username authentication; anonymous then refused unless ``--allow-anonymous``).

Faults: SIGUSR1 (or ``--fault-every-s``) stops the server, keeps it down ``--fault-down-s`` and starts it again on
the same port, with one more namespace registered before the plant's so the plant's namespace index changes.
``--bad <device>.<value>=<StatusName>`` serves that variable with a bad/uncertain status. ``--extra-items N``
adds N changing variables under ``Objects/bench`` for load tests. ``--status-file`` receives JSON every 0.5 s:
sessions, subscriptions, monitored items, starts, listening.

Run: ``python -m simulators.opcua_server --port 4840 --seed 1``. SIGTERM stops it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import logging
import math
import os
import signal
import socket
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from asyncua import ua
from asyncua.common.utils import ServiceError
from asyncua.crypto import cert_gen
from asyncua.crypto.permission_rules import User, UserRole
from asyncua.server.server import Server
from asyncua.server.uaprocessor import UaProcessor
from asyncua.server.user_managers import UserManager
from asyncua.ua.status_codes import StatusCodes
from asyncua.ua.ua_binary import struct_from_binary
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID

from simulators.plant import PlantModel

NAMESPACE = "urn:energy-agent:simulator:plant"
APPLICATION_URI = "urn:energy-agent:simulator"
log = logging.getLogger("simulators.opcua")

_POLICIES: dict[str, ua.SecurityPolicyType] = {
    "None": ua.SecurityPolicyType.NoSecurity,
    "Basic256Sha256_Sign": ua.SecurityPolicyType.Basic256Sha256_Sign,
    "Basic256Sha256_SignAndEncrypt": ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt,
    "Aes128_Sha256_RsaOaep_Sign": ua.SecurityPolicyType.Aes128Sha256RsaOaep_Sign,
    "Aes128_Sha256_RsaOaep_SignAndEncrypt": ua.SecurityPolicyType.Aes128Sha256RsaOaep_SignAndEncrypt,
    "Aes256_Sha256_RsaPss_Sign": ua.SecurityPolicyType.Aes256Sha256RsaPss_Sign,
    "Aes256_Sha256_RsaPss_SignAndEncrypt": ua.SecurityPolicyType.Aes256Sha256RsaPss_SignAndEncrypt,
}


def _trust_folder_validator(folder: Path) -> Any:
    """Accept a client certificate only when its DER bytes are in ``folder`` (read at every session)."""

    def trusted(der: bytes) -> bool:
        return any(path.read_bytes() == der for path in folder.glob("*.der"))

    async def validate(cert: x509.Certificate, _app: ua.ApplicationDescription) -> None:
        if not await asyncio.to_thread(trusted, cert.public_bytes(serialization.Encoding.DER)):
            raise ServiceError(StatusCodes.BadCertificateUntrusted)

    return validate


_open_secure_channel = UaProcessor.open_secure_channel


def _refusing_open_secure_channel(self: UaProcessor, algohdr: Any, seqhdr: Any, body: Any) -> None:
    """UaProcessor.open_secure_channel, refusing a client certificate not in the server's channel trust folder
    (``--client-trust-at channel``) with a ServiceFault BadSecurityChecksFailed on the SecureOpen channel."""
    folder: Path | None = getattr(self.iserver, "sim_channel_trust_dir", None)
    cert: bytes | None = algohdr.SenderCertificate
    if folder is None or not cert or any(path.read_bytes() == cert for path in folder.glob("*.der")):
        _open_secure_channel(self, algohdr, seqhdr, body)  # type: ignore[no-untyped-call]  # unannotated in asyncua
        return
    request = struct_from_binary(ua.OpenSecureChannelRequest, body)
    self._connection.select_policy(algohdr.SecurityPolicyURI, cert, request.Parameters.SecurityMode)
    fault = ua.ServiceFault()
    fault.ResponseHeader.ServiceResult = ua.StatusCode(ua.UInt32(StatusCodes.BadSecurityChecksFailed))
    self.send_response(request.RequestHeader.RequestHandle, seqhdr, fault, ua.MessageType.SecureOpen)  # type: ignore[no-untyped-call]  # unannotated in asyncua
    self._transport.close()


UaProcessor.open_secure_channel = _refusing_open_secure_channel  # type: ignore[method-assign]


class PasswordUsers(UserManager):
    """Username/password check for the simulator (anonymous optional)."""

    def __init__(self, users: dict[str, str], allow_anonymous: bool) -> None:
        self.users = users
        self.allow_anonymous = allow_anonymous

    def get_user(
        self, iserver: Any, username: str | None = None, password: str | None = None, certificate: Any = None
    ) -> User | None:
        if username is None:
            if certificate is not None or self.allow_anonymous:
                return User(role=UserRole.User)
            return None
        if self.users.get(username) == password:
            return User(role=UserRole.User, name=username)
        return None


def make_server_certificate(cert_path: Path, key_path: Path, hostname: str) -> None:
    key = cert_gen.generate_private_key()
    cert = cert_gen.generate_self_signed_app_certificate(
        key,
        "energy-agent simulator",
        {},
        [x509.UniformResourceIdentifier(APPLICATION_URI), x509.DNSName(hostname)],
        extended=[ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH],
        days=365,
    )
    cert_path.parent.mkdir(parents=True, exist_ok=True)
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    os.chmod(key_path, 0o600)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.DER))


def read_users(path: Path | None) -> dict[str, str]:
    if path is None:
        return {}
    users: dict[str, str] = {}
    for line in path.read_text().splitlines():
        name, sep, password = line.partition(":")
        if sep and name:
            users[name] = password
    return users


def parse_bad(items: Sequence[str]) -> dict[str, int]:
    """``kiln1.inlet_temperature_c=BadSensorFailure`` -> {"kiln1.inlet_temperature_c": code}."""
    out: dict[str, int] = {}
    for item in items:
        key, _, name = item.partition("=")
        out[key] = getattr(StatusCodes, name)
    return out


class PlantServer:
    """Owns the model and restarts the asyncua server on faults; one asyncio loop owns everything."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        start = args.start if args.start is not None else math.floor(time.time())
        self.model = PlantModel(seed=args.seed, start=start, step_s=args.step_s)
        self.bad = parse_bad(args.bad)
        self.users = read_users(args.users_file)
        self.server: Server | None = None
        self.nodes: list[tuple[ua.NodeId, str, str]] = []  # (node id, device, value name)
        self.extra: list[ua.NodeId] = []
        self.starts = 0
        self.ns_index = 0
        self.fault = asyncio.Event()
        self.stop = asyncio.Event()

    async def _build(self) -> Server:
        args = self.args
        server = Server(user_manager=PasswordUsers(self.users, args.allow_anonymous) if self.users else None)
        await server.init()
        server.set_endpoint(f"opc.tcp://{args.host}:{args.port}")
        server.set_server_name("energy-agent plant simulator")
        await server.set_application_uri(APPLICATION_URI)
        server.set_security_policy([_POLICIES[p] for p in args.policies])
        tokens: list[type] = [ua.UserNameIdentityToken, ua.X509IdentityToken] if self.users else []
        if not self.users or args.allow_anonymous:
            tokens.insert(0, ua.AnonymousIdentityToken)
        if not self.users:
            tokens.append(ua.X509IdentityToken)
        server.set_identity_tokens(tokens)
        if args.cert is not None:
            await server.load_certificate(str(args.cert))
            await server.load_private_key(str(args.key))
        if args.client_trust_dir is not None and args.client_trust_at == "channel":
            server.iserver.sim_channel_trust_dir = args.client_trust_dir  # type: ignore[attr-defined]
        elif args.client_trust_dir is not None:
            server.set_certificate_validator(_trust_folder_validator(args.client_trust_dir))
        for k in range(self.starts):  # a restarted server lists one more namespace first: indexes move
            await server.register_namespace(f"urn:energy-agent:simulator:restart:{k}")
        idx = await server.register_namespace(NAMESPACE)
        self.ns_index = idx
        objects = server.nodes.objects
        self.nodes = []
        for device in self.model.device_names():
            folder = await objects.add_object(_node(device, idx), ua.QualifiedName(ua.String(device), ua.UInt16(idx)))
            for name, value in sorted(self.model.values(device).items()):
                node = await folder.add_variable(
                    _node(f"{device}.{name}", idx), ua.QualifiedName(ua.String(name), ua.UInt16(idx)), float(value)
                )
                self.nodes.append((node.nodeid, device, name))
        self.extra = []
        if args.extra_items:
            bench = await objects.add_object(_node("bench", idx), ua.QualifiedName(ua.String("bench"), ua.UInt16(idx)))
            for i in range(args.extra_items):
                node = await bench.add_variable(
                    _node(f"bench.item{i}", idx), ua.QualifiedName(ua.String(f"item{i}"), ua.UInt16(idx)), 0.0
                )
                self.extra.append(node.nodeid)
        return server

    async def publish(self) -> None:
        server = self.server
        if server is None:
            return
        self.model.advance_to(time.time())
        t = self.model.now
        source = _dt(t)
        now = _dt(time.time())
        cache: dict[str, dict[str, float]] = {}
        for nodeid, device, name in self.nodes:
            values = cache.get(device)
            if values is None:
                values = cache[device] = self.model.values(device)
            code = self.bad.get(f"{device}.{name}", StatusCodes.Good)
            dv = ua.DataValue(
                ua.Variant(float(values[name]), ua.VariantType.Double),
                StatusCode=ua.StatusCode(ua.UInt32(code)),
                SourceTimestamp=source,
                ServerTimestamp=now,
            )
            await server.write_attribute_value(nodeid, dv)
        k = round((t - self.model.start) / self.model.step_s)
        for i, nodeid in enumerate(self.extra):
            dv = ua.DataValue(
                ua.Variant(float(k * 1000 + i), ua.VariantType.Double), SourceTimestamp=source, ServerTimestamp=now
            )
            await server.write_attribute_value(nodeid, dv)

    def stats(self) -> dict[str, Any]:
        if self.server is None:
            return {"listening": False, "sessions": 0, "subscriptions": 0, "monitored_items": 0, "starts": self.starts}
        iserver = self.server.iserver
        subs = iserver.subscription_service.subscriptions
        items = sum(len(getattr(s.monitored_item_srv, "_monitored_items", {})) for s in subs.values())
        sessions = len(getattr(iserver, "_external_sessions", {}))
        return {
            "listening": True,
            "sessions": sessions,
            "subscriptions": len(subs),
            "monitored_items": items,
            "starts": self.starts,
            "namespace_index": self.ns_index,
        }

    def write_status(self) -> None:
        path: Path | None = self.args.status_file
        if path is None:
            return
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.stats()))
        tmp.replace(path)

    async def _serve_once(self) -> None:
        self.server = await self._build()
        await self.server.start()
        self.starts += 1
        log.info("listening on opc.tcp://%s:%d (start %d)", self.args.host, self.args.port, self.starts)
        try:
            next_step = time.monotonic()
            next_status = next_step
            while not self.stop.is_set() and not self.fault.is_set():
                now = time.monotonic()
                if now >= next_step:
                    await self.publish()
                    next_step += self.args.step_s
                    if next_step < now:
                        next_step = now + self.args.step_s
                if now >= next_status:
                    self.write_status()
                    next_status = now + 0.5
                timeout = max(0.0, min(next_step, next_status) - time.monotonic())
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(_first(self.stop, self.fault), timeout)
        finally:
            server, self.server = self.server, None
            await server.stop()
            self.write_status()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, self.stop.set)
        loop.add_signal_handler(signal.SIGINT, self.stop.set)
        loop.add_signal_handler(signal.SIGUSR1, self.fault.set)
        every = self.args.fault_every_s
        while not self.stop.is_set():
            timer = loop.call_later(every, self.fault.set) if every else None
            await self._serve_once()
            if timer is not None:
                timer.cancel()
            if self.stop.is_set():
                break
            log.info("fault: server stopped for %.1f s", self.args.fault_down_s)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop.wait(), self.args.fault_down_s)
            self.fault.clear()


def _dt(t: float) -> ua.DateTime:
    return ua.DateTime.fromtimestamp(t, dt.UTC)


def _node(identifier: str, index: int) -> ua.NodeId:
    return ua.NodeId(ua.String(identifier), ua.Int16(index))


async def _first(*events: asyncio.Event) -> None:
    waiters = [asyncio.ensure_future(e.wait()) for e in events]
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waiters:
            w.cancel()


_UNITS = (
    ("_kvarh", "kvarh"), ("_kwh", "kWh"), ("_kvar", "kvar"), ("_kva", "kVA"), ("_kw", "kW"), ("_tph", "t/h"),
    ("_m3min", "m3/min"), ("_m3h", "m3/h"), ("_m3", "m3"), ("_mpa", "MPa"), ("_gj", "GJ"), ("_rpm", "rpm"),
    ("_hz", "Hz"), ("_c", "°C"), ("_t", "t"), ("_h", "h"), ("_v", "V"), ("_a", "A"), ("_m", "m"),
)  # fmt: skip


def site_text(endpoint: str, model: PlantModel, devices: Sequence[str]) -> str:
    """A site file reading ``devices`` from this simulator (policy None, explicitly allowed: a test network)."""
    from agent.model import Role

    roles = {r.value for r in Role}
    lines = ["site: sim-plant", "gateway: sim-gw", "devices:"]
    for device in devices:
        lines += [
            f"  - name: {device}",
            "    protocol: opcua",
            f"    endpoint: {endpoint}",
            "    security: {policy: None, mode: None, allow_none: true}",
            "    interval_s: 1",
            "    points:",
        ]
        for name in sorted(model.values(device)):
            if name not in roles:
                continue
            unit = next((u for suffix, u in _UNITS if name.endswith(suffix)), "")
            node = f"nsu={NAMESPACE};s={device}.{name}"
            lines.append(f'      - {{name: {name}, node_id: "{node}", role: {name}, unit: "{unit}"}}')
    return "\n".join(lines) + "\n"


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    p = parser or argparse.ArgumentParser(prog="python -m simulators.opcua_server", description=__doc__.split("\n")[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=4840)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--start", type=float, default=None, help="Model start (UNIX s); default: now, whole second")
    p.add_argument("--step-s", type=float, default=1.0)
    p.add_argument("--policies", nargs="+", default=["None"], choices=sorted(_POLICIES))
    p.add_argument("--cert", type=Path, default=None, help="Server certificate (DER)")
    p.add_argument("--key", type=Path, default=None, help="Server private key (PEM)")
    p.add_argument("--pki-dir", type=Path, default=None, help="Make server-cert.der / server-key.pem here if missing")
    p.add_argument("--users-file", type=Path, default=None, help="name:password lines; enables username auth")
    p.add_argument("--allow-anonymous", action="store_true")
    p.add_argument("--client-trust-dir", type=Path, default=None, help="accept only client certificates (DER) here")
    p.add_argument(
        "--client-trust-at",
        choices=["session", "channel"],
        default="session",
        help="refuse an untrusted client at CreateSession (BadCertificateUntrusted) or OpenSecureChannel",
    )
    p.add_argument("--bad", action="append", default=[], metavar="DEVICE.VALUE=STATUS")
    p.add_argument("--extra-items", type=int, default=0)
    p.add_argument("--fault-every-s", type=float, default=0.0)
    p.add_argument("--fault-down-s", type=float, default=3.0)
    p.add_argument("--status-file", type=Path, default=None)
    p.add_argument("--write-site", type=Path, default=None, help="write a site file reading this simulator")
    p.add_argument(
        "--site-devices", nargs="*", default=["kiln1", "kiln1-meter", "boiler1", "raw-mill-vfd", "compressor1"]
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    return run_args(build_parser().parse_args(argv))


def run_args(args: argparse.Namespace) -> int:
    """Serve until SIGTERM/SIGINT (also the entry of ``python -m simulators opcua``)."""
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    log.setLevel(logging.INFO)
    if args.write_site is not None:  # before listening: whoever waits for the port finds the site file ready
        model = PlantModel(seed=args.seed, step_s=args.step_s)
        args.write_site.write_text(site_text(f"opc.tcp://{args.host}:{args.port}", model, args.site_devices))
    if args.pki_dir is not None and args.cert is None:
        args.cert, args.key = args.pki_dir / "server-cert.der", args.pki_dir / "server-key.pem"
        if not args.cert.exists() or not args.key.exists():
            make_server_certificate(args.cert, args.key, socket.gethostname())
    try:
        import uvloop

        uvloop.run(PlantServer(args).run())
    except ImportError:  # pragma: no cover - uvloop is a dependency; plain asyncio is the fallback
        asyncio.run(PlantServer(args).run())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
