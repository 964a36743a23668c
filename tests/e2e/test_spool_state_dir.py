"""``energy-agent run`` as a process against a hostile state directory: a corrupt spool file, a read-only or
uncreatable directory, a second agent on the same directory, a disk that fills up, a directory removed while the
agent runs. Expected faults get one line that names the file or directory and the fix, never a traceback; the
ones a restart cannot fix exit 78, which the systemd unit does not restart (RestartPreventExitStatus=78)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.agent_harness import AgentProcess, dump_yaml, load_yaml
from tests.fsmount import fill, tmpfs
from tests.servers.process import ServerProcess, free_port
from tests.simfixtures import simulator_process

pytestmark = pytest.mark.e2e
REPO = Path(__file__).resolve().parents[2]
MiB = 1 << 20


def energy_agent() -> list[str]:
    script = Path(sys.executable).with_name("energy-agent")
    return [str(script)] if script.exists() else [sys.executable, "-m", "agent"]


def write_site(folder: Path, state_dir: Path, base: dict[str, Any] | None = None) -> Path:
    """A site without a broker (the spool only fills) and with a metrics port, which answers once the spool is open."""
    site = dict(base or {"site": "s1", "gateway": "gw1"})
    site.pop("mqtt", None)
    site["state_dir"] = str(state_dir)
    site["monitoring"] = {"prometheus_port": free_port(), "status_interval_s": 2}
    path = folder / "agent-site.yaml"
    dump_yaml(path, site)
    return path


def started(site: Path) -> AgentProcess:
    """An agent that answered a whole /metrics request: the spool is open, and no half-served connection of the
    readiness probe is left for SIGTERM to cancel."""
    agent = AgentProcess(site).wait_ready()
    with urllib.request.urlopen(f"http://127.0.0.1:{agent.metrics_port}/metrics", timeout=10) as reply:
        assert reply.status == 200
    return agent


def run_once(site: Path, timeout_s: float = 30) -> subprocess.CompletedProcess[str]:
    """The agent when it is expected to refuse to start."""
    return subprocess.run(
        [*energy_agent(), "run", str(site)], cwd=REPO, capture_output=True, text=True, timeout=timeout_s
    )


def spool_stats(site: Path) -> dict[str, Any]:
    done = subprocess.run(
        [*energy_agent(), "spool", "stats", str(site), "--json"], cwd=REPO, capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stderr
    stats: dict[str, Any] = json.loads(done.stdout)
    return stats


def wait_for(what: str, check: Any, timeout_s: float, agent: AgentProcess) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert agent.proc.poll() is None, (
            f"the agent exited ({agent.proc.returncode}) waiting for {what}\n{agent.log()}"
        )
        assert time.monotonic() < deadline, f"no {what} after {timeout_s} s\n{agent.log()}"
        time.sleep(0.1)


@pytest.mark.parametrize("damage", ["text", "random", "truncated"])
def test_a_corrupt_spool_is_moved_aside_logged_once_and_the_agent_runs(tmp_path: Path, damage: str) -> None:
    state = tmp_path / "state"
    state.mkdir()
    spool = state / "spool.sqlite"
    if damage == "text":
        spool.write_text("site: this is somebody's YAML, not a spool\n" * 20)
    elif damage == "random":
        spool.write_bytes(os.urandom(100_000))
    else:
        from agent.config.spool import SpoolConfig
        from agent.spool.sqlite import SqliteSpool

        s = SqliteSpool.open(spool, SpoolConfig())
        for i in range(400):
            s.append("plant/s1/gw1/m/samples", bytes([i % 251]) * 1500, "samples")
        s.close()
        with spool.open("r+b") as f:
            f.truncate(spool.stat().st_size // 3)
    damaged = spool.read_bytes()
    site = write_site(tmp_path, state)

    agent = started(site)
    stats = spool_stats(site)  # beside the running agent
    assert agent.terminate() == 0
    log = agent.log()
    assert "Traceback" not in log
    lines = [line for line in log.splitlines() if "moved it aside" in line]
    assert len(lines) == 1 and str(spool) in lines[0], log
    aside = [p for p in state.iterdir() if p.name.startswith("spool.sqlite.corrupt-")]
    assert len(aside) == 1 and aside[0].read_bytes() == damaged, "kept, unchanged, for inspection"
    assert aside[0].name in lines[0]
    assert stats["corrupt_replaced"] == 1 and stats["replaced_file"] == aside[0].name


@pytest.fixture
def read_only_dir(tmp_path: Path) -> Iterator[Path]:
    """A state directory the agent cannot write: a read-only mount as root (root ignores file modes), else a
    directory without write permission."""
    folder = tmp_path / "ro-state"
    if os.geteuid() == 0:
        with tmpfs(folder, MiB, read_only=True):
            yield folder
    else:
        folder.mkdir()
        folder.chmod(0o500)
        try:
            yield folder
        finally:
            folder.chmod(0o700)


def test_a_read_only_state_dir_is_one_line_and_exit_78(tmp_path: Path, read_only_dir: Path) -> None:
    site = write_site(tmp_path, read_only_dir)
    done = run_once(site)
    assert done.returncode == 78, done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    err = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(err) == 1, done.stderr
    assert f"state directory {read_only_dir}: not writable" in err[0] and "writable" in err[0], err[0]


def test_a_state_dir_that_cannot_be_created_is_one_line_and_exit_78(tmp_path: Path) -> None:
    (tmp_path / "not-a-dir").write_text("")
    site = write_site(tmp_path, tmp_path / "not-a-dir" / "state")
    done = run_once(site)
    assert done.returncode == 78, done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    err = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(err) == 1 and "not-a-dir/state: cannot be created" in err[0], done.stderr


def test_a_second_agent_on_the_same_state_dir_names_the_first_and_exits_78(tmp_path: Path) -> None:
    state = tmp_path / "state"
    site = write_site(tmp_path, state)
    first = started(site)
    try:
        (tmp_path / "second").mkdir()
        second_site = write_site(tmp_path / "second", state)  # another site file naming the same directory
        began = time.monotonic()
        done = run_once(second_site)
        assert done.returncode == 78, done.stderr
        assert time.monotonic() - began < 20
        assert "Traceback" not in done.stderr + done.stdout
        err = [line for line in done.stderr.splitlines() if line.strip()]
        assert len(err) == 1 and f"in use by another energy-agent (PID {first.proc.pid}," in err[0], done.stderr
        assert spool_stats(site)["depth"] == 0, "spool stats reads beside the running agent"
        assert first.proc.poll() is None, "the first agent is untouched"
    finally:
        assert first.terminate() == 0
    again = started(site)  # the lock went with the first process
    assert again.terminate() == 0
    assert "Traceback" not in first.log() + again.log()


def test_a_second_agent_after_the_first_was_killed_starts(tmp_path: Path) -> None:
    site = write_site(tmp_path, tmp_path / "state")
    first = started(site)
    first.kill9()  # the lock file stays, with a stale PID; the kernel released the lock
    again = started(site)
    assert again.terminate() == 0


@pytest.fixture
def plant(tmp_path: Path) -> Iterator[ServerProcess]:
    with simulator_process(tmp_path) as sim:
        yield sim


def test_a_disk_that_fills_up_under_the_running_agent(tmp_path: Path, plant: ServerProcess) -> None:
    """The agent polls the simulated plant into a spool on a 24 MiB tmpfs; another process takes every free
    block. The agent keeps polling (no exit, no traceback), logs the episode once, keeps the newest messages
    within the space it holds, and logs the recovery once space is back."""
    with tmpfs(tmp_path / "fs", 24 * MiB) as fs:
        site = write_site(tmp_path, fs / "state", load_yaml(tmp_path / "site.yaml"))
        agent = started(site)
        try:
            wait_for("samples in the spool", lambda: spool_stats(site)["depth"] >= 20, 30, agent)
            filler = fill(fs)
            wait_for("the full-disk episode", lambda: "refuses writes" in agent.log(), 30, agent)
            during = spool_stats(site)
            time.sleep(3)  # three more poll cycles of every device into the full disk
            later = spool_stats(site)
            assert agent.proc.poll() is None, agent.log()
            dropped = sum(later["dropped_full"].values()) + sum(later["dropped_unwritable"].values())
            assert dropped > sum(during["dropped_full"].values()) + sum(during["dropped_unwritable"].values())
            filler.unlink()
            wait_for("the recovery", lambda: "takes writes again" in agent.log(), 30, agent)
            grown = spool_stats(site)["depth"]
            wait_for("the spool growing again", lambda: spool_stats(site)["depth"] > grown + 20, 30, agent)
        finally:
            code = agent.terminate()
        log = agent.log()
        assert code == 0, log
        assert "Traceback" not in log
        assert log.count("refuses writes") == 1 and log.count("takes writes again") == 1, log


def test_the_state_dir_removed_under_the_running_agent_is_made_again(tmp_path: Path, plant: ServerProcess) -> None:
    """rm -rf of the state directory: no crash, and within seconds the spool (with what it held) and the lock
    are back at their paths, so a restart finds them and a second agent is still refused."""
    site = write_site(tmp_path, tmp_path / "state", load_yaml(tmp_path / "site.yaml"))
    agent = started(site)
    wait_for("samples in the spool", lambda: spool_stats(site)["depth"] >= 11, 30, agent)
    shutil.rmtree(tmp_path / "state")
    wait_for("the spool made again", lambda: "was removed while the agent runs" in agent.log(), 30, agent)
    depth = spool_stats(site)["depth"]
    assert depth >= 11, "what the removed file held came along"
    wait_for("the spool growing", lambda: spool_stats(site)["depth"] > depth + 11, 30, agent)
    refused = run_once(site)
    assert refused.returncode == 78 and f"PID {agent.proc.pid}" in refused.stderr, refused.stderr
    assert agent.terminate() == 0, agent.log()
    assert "Traceback" not in agent.log()
