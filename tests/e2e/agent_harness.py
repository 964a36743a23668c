"""The agent as a process (``python -m agent run site.yaml``) against the plant simulator and a real broker.

Readiness: the site turns on the agent's Prometheus port, and a test waits until it answers, which happens only
after the spool is open and recovered. Logs go to ``<workdir>/agent-<n>.log``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any, ClassVar

from ruamel.yaml import YAML

from agent.config.spool import SpoolConfig
from agent.spool.sqlite import SqliteSpool
from tests.servers.process import free_port, wait_port

REPO = Path(__file__).resolve().parents[2]


def load_yaml(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = YAML(typ="safe", pure=True).load(path.read_text())
    return data


def dump_yaml(path: Path, data: dict[str, Any]) -> None:
    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = False
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w") as f:
        yaml.dump(data, f)
    tmp.replace(path)


def agent_site(sim_site: Path, broker_port: int, **sections: Any) -> Path:
    """The simulator's site file plus mqtt (to ``broker_port``), monitoring with a metrics port, and ``sections``."""
    site = load_yaml(sim_site)
    site["mqtt"] = {
        "host": "127.0.0.1",
        "port": broker_port,
        "client_id": "agent-under-test",
        "reconnect_min_s": 0.2,
        "reconnect_max_s": 1.0,
    }
    site["monitoring"] = {"prometheus_port": free_port(), "status_interval_s": 2}
    site.update(sections)
    path = sim_site.with_name("agent-site.yaml")
    dump_yaml(path, site)
    return path


class AgentProcess:
    runs = 0
    started: ClassVar[list[AgentProcess]] = []  # stopped by tests/e2e/conftest.py after each test: see stop_leftovers

    def __init__(self, site: Path, env: dict[str, str] | None = None) -> None:
        AgentProcess.started.append(self)
        self.site = site
        self.workdir = site.parent
        AgentProcess.runs += 1
        self.log_path = self.workdir / f"agent-{AgentProcess.runs}.log"
        self.metrics_port: int = load_yaml(site)["monitoring"]["prometheus_port"]
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "agent", "run", str(site)],
                cwd=REPO,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=dict(os.environ) | (env or {}),
            )

    def wait_ready(self, timeout_s: float = 30.0) -> AgentProcess:
        try:
            wait_port("127.0.0.1", self.metrics_port, timeout_s, self.proc)
        except (RuntimeError, TimeoutError) as exc:
            raise AssertionError(f"agent not ready: {exc}\n{self.log()}") from exc
        return self

    def signal(self, sig: signal.Signals) -> None:
        self.proc.send_signal(sig)

    def terminate(self, timeout_s: float = 30.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout_s)

    def kill9(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    @classmethod
    def stop_leftovers(cls) -> None:
        """Kill the agents a test left running (it failed before stopping them): otherwise each polls and spools
        on, under the tests that come next, until its Popen is collected in one of them with a ResourceWarning."""
        while cls.started:
            agent = cls.started.pop()
            agent.kill9()


def spool_depth(site: Path) -> int:
    """Messages left in the agent's spool (the agent must not be running)."""
    state = load_yaml(site)["state_dir"]
    path = Path(state) if Path(state).is_absolute() else site.parent / state
    spool = SqliteSpool.open(path / "spool.sqlite", SpoolConfig())
    try:
        return spool.stats().depth
    finally:
        spool.close()
