"""Helpers for the OPC UA integration tests: the simulator as a process, and a source run with its results.

Not a test module; imported by tests/integration/test_opcua_*.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.config.opcua import OpcuaDeviceConfig
from agent.model import PollResult
from agent.sources.opcua import pki
from agent.sources.opcua.source import OpcuaSource
from tests.servers.process import ServerProcess, free_port

NAMESPACE = "urn:energy-agent:simulator:plant"
ALL_POLICIES = (
    "None",
    "Basic256Sha256_Sign",
    "Basic256Sha256_SignAndEncrypt",
    "Aes128_Sha256_RsaOaep_Sign",
    "Aes128_Sha256_RsaOaep_SignAndEncrypt",
    "Aes256_Sha256_RsaPss_Sign",
    "Aes256_Sha256_RsaPss_SignAndEncrypt",
)


@dataclass
class Sim:
    proc: ServerProcess
    port: int
    start: float
    seed: int
    workdir: Path
    server_cert: Path

    @property
    def endpoint(self) -> str:
        return f"opc.tcp://127.0.0.1:{self.port}"

    def status(self) -> dict[str, Any]:
        try:
            data: dict[str, Any] = json.loads((self.workdir / "status.json").read_text())
        except (OSError, ValueError):
            return {}
        return data

    def wait_status(self, pred: Callable[[dict[str, Any]], bool], timeout_s: float = 10.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while True:
            status = self.status()
            if status and pred(status):
                return status
            if time.monotonic() > deadline:
                raise TimeoutError(f"simulator status never matched; last {status}\n{self.proc.log()}")
            time.sleep(0.05)

    def fault(self) -> None:
        """Stop the server now; it comes back on the same port after --fault-down-s."""
        os.kill(self.proc.pid, signal.SIGUSR1)


def start_sim(
    workdir: Path,
    *,
    policies: Sequence[str] = ("None",),
    users: dict[str, str] | None = None,
    allow_anonymous: bool = False,
    bad: Sequence[str] = (),
    extra_items: int = 0,
    fault_down_s: float = 3.0,
    seed: int = 1,
    client_trust_dir: Path | None = None,
    client_trust_at: str = "session",
    step_s: float = 1.0,
) -> Sim:
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    start = float(math.floor(time.time()) - 5)
    argv = [
        sys.executable, "-m", "simulators.opcua_server", "--port", str(port), "--seed", str(seed),
        "--start", str(start), "--status-file", str(workdir / "status.json"), "--pki-dir", str(workdir / "pki"),
        "--fault-down-s", str(fault_down_s), "--extra-items", str(extra_items), "--step-s", str(step_s),
        "--policies", *policies,
    ]  # fmt: skip
    if users:
        (workdir / "users").write_text("".join(f"{u}:{p}\n" for u, p in users.items()))
        argv += ["--users-file", str(workdir / "users")]
    if allow_anonymous:
        argv.append("--allow-anonymous")
    if client_trust_dir is not None:
        argv += ["--client-trust-dir", str(client_trust_dir), "--client-trust-at", client_trust_at]
    for item in bad:
        argv += ["--bad", item]
    proc = ServerProcess("opcua-sim", argv, workdir, port).start(timeout_s=30)
    return Sim(proc, port, start, seed, workdir, workdir / "pki" / "server-cert.der")


@dataclass
class ClientPki:
    cert: Path
    key: Path
    trust_dir: Path


def client_pki(base: Path, trust: Sim | None = None) -> ClientPki:
    base.mkdir(parents=True, exist_ok=True)
    pki.make_application_certificate(base / "agent-cert.der", base / "agent-key.pem", "urn:test:energy-agent")
    trust_dir = base / "trusted"
    trust_dir.mkdir(exist_ok=True)
    if trust is not None:
        pki.pin(pki.load_certificate(trust.server_cert), trust_dir, "sim")
    return ClientPki(base / "agent-cert.der", base / "agent-key.pem", trust_dir)


def device_config(
    sim: Sim, points: list[dict[str, Any]], *, creds: ClientPki | None = None, policy: str = "None", **over: Any
) -> OpcuaDeviceConfig:
    data: dict[str, Any] = {"name": "kiln1", "endpoint": sim.endpoint, "interval_s": 0.5, "points": points}
    if policy == "None":
        data["security"] = {"policy": "None", "mode": "None", "allow_none": True}
    else:
        name, _, mode = policy.rpartition("_")
        assert creds is not None
        data["security"] = {"policy": name, "mode": mode}
        data |= {"client_cert": str(creds.cert), "client_key": str(creds.key), "trust_dir": str(creds.trust_dir)}
    data.update(over)
    return OpcuaDeviceConfig.model_validate(data)


def point(device: str, value: str, **over: Any) -> dict[str, Any]:
    return {"name": f"{device}.{value}", "node_id": f"nsu={NAMESPACE};s={device}.{value}"} | over


@dataclass
class Run:
    source: OpcuaSource
    results: list[PollResult] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def emit(self, result: PollResult) -> None:
        self.results.append(result)
        self.changed.set()

    async def wait_for(self, pred: Callable[[PollResult], bool], timeout_s: float, after: int = 0) -> PollResult:
        """The first result at index >= ``after`` that satisfies ``pred``; TimeoutError past the deadline."""
        deadline = time.monotonic() + timeout_s
        checked = after
        while True:
            while checked < len(self.results):
                result = self.results[checked]
                checked += 1
                if pred(result):
                    return result
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                last = self.results[-1] if self.results else None
                raise TimeoutError(f"no matching result in {timeout_s} s; last: {last}")
            self.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), remaining)


@contextlib.asynccontextmanager
async def running(source: OpcuaSource) -> AsyncIterator[Run]:
    run = Run(source)
    task = asyncio.create_task(source.run(run.emit))
    try:
        yield run
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def all_good(result: PollResult) -> bool:
    return all(s.quality.value == "good" for s in result.samples)


async def wait_status_async(
    sim: Sim, pred: Callable[[dict[str, Any]], bool], timeout_s: float = 10.0
) -> dict[str, Any]:
    """Like ``Sim.wait_status`` without blocking the event loop the source runs in."""
    deadline = time.monotonic() + timeout_s
    while True:
        status = sim.status()
        if status and pred(status):
            return status
        if time.monotonic() > deadline:
            raise TimeoutError(f"simulator status never matched; last {status}")
        await asyncio.sleep(0.02)
