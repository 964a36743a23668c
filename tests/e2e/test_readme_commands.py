"""The README's two set-up commands, run in a copy of the repository with a fresh virtualenv.

Each runs in its own fresh copy, as a user's first command would. ``bash deploy/test.sh`` runs here on one small
test file (the whole suite is what CI runs through it anyway); ``bash deploy/demo.sh`` must make its own
virtualenv, then bring up the simulator, broker, agent (and InfluxDB with the ingestor) and show
samples from all eleven plant devices and graded KPIs.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.servers.process import ctrl_c_reaches_it

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.e2e


def readme_commands() -> list[str]:
    text = (REPO / "README.md").read_text()
    setup = text.split("## Set up on a fresh Debian/Ubuntu machine", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^    (bash deploy/\S+)$", setup, flags=re.MULTILINE)


def copy_of_repo(dest: Path) -> Path:
    files = (
        subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
            cwd=REPO,
            capture_output=True,
            check=True,
        )
        .stdout.decode()
        .split("\0")
    )
    for name in filter(None, files):
        src = REPO / name
        if src.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)
    return dest


def run_interruptibly(
    argv: list[str],
    cwd: Path,
    timeout_s: float,
    env: dict[str, str] | None = None,
    stop_when: Callable[[str], bool] | None = None,
) -> subprocess.CompletedProcess[str]:
    """``subprocess.run`` with output captured, except that a test stopped early (a failure, its timeout) stops
    the command as Ctrl-C would: the demo then stops the simulator, broker, agent and database it started (each in
    a session of its own) instead of leaving them running, with their CPU, under the tests that come next.
    ``stop_when``: a line of output that makes the command's work done; it is then stopped as by Ctrl-C, once."""
    proc = subprocess.Popen(
        argv,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=None if env is None else os.environ | env,
        preexec_fn=ctrl_c_reaches_it,  # resets one signal before exec
    )
    out: list[str] = []
    err: list[str] = []

    def read_out() -> None:
        assert proc.stdout is not None
        stopped = False
        for line in proc.stdout:
            out.append(line)
            if not stopped and stop_when is not None and stop_when(line):
                stopped = True
                proc.send_signal(signal.SIGINT)

    def read_err() -> None:
        assert proc.stderr is not None
        err.extend(proc.stderr)

    readers = [threading.Thread(target=read_out, daemon=True), threading.Thread(target=read_err, daemon=True)]
    for reader in readers:
        reader.start()
    try:
        proc.wait(timeout=timeout_s)
    except BaseException:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        raise
    finally:
        for reader in readers:
            reader.join(timeout=30)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
    return subprocess.CompletedProcess(argv, proc.returncode, "".join(out), "".join(err))


def test_readme_gives_exactly_the_two_commands() -> None:
    assert readme_commands() == ["bash deploy/demo.sh", "bash deploy/test.sh"]
    assert "bash deploy/test.sh" in (REPO / ".ci" / "run").read_text()


@pytest.mark.long(seconds=20)  # a fresh virtualenv with the dev tools
@pytest.mark.timeout(900)  # its own step is bounded (900 s); on a loaded machine installing takes minutes
def test_the_test_command_works_in_a_fresh_virtualenv(tmp_path: Path) -> None:
    repo = copy_of_repo(tmp_path / "repo")
    assert not (repo / ".venv").exists()
    tests = run_interruptibly(
        ["bash", "deploy/test.sh", "-q", "-p", "no:cacheprovider", "tests/unit/test_runtime_prometheus.py"],
        repo,
        900,
        env={"TEST_WORKERS": "2"},  # parallel as the whole suite runs, without four workers for one small file
    )
    assert tests.returncode == 0, tests.stdout[-3000:] + tests.stderr[-3000:]
    assert re.search(r"\b\d+ passed\b", tests.stdout) and " failed" not in tests.stdout, tests.stdout[-2000:]


@pytest.mark.long(seconds=125)  # a fresh virtualenv with the demo's packages, then the demo up to its first grade
@pytest.mark.timeout(900)  # its own step is bounded (900 s); on a loaded machine installing takes minutes
def test_the_demo_command_works_in_a_fresh_virtualenv(tmp_path: Path) -> None:
    """A user's first command on a fresh clone: the demo makes its own virtualenv (the project and the demo
    extra, not the test tools), then runs the whole pipeline."""
    repo = copy_of_repo(tmp_path / "repo")
    assert not (repo / ".venv").exists()
    demo = run_interruptibly(
        # a grade needs a minute covered to the demo's 80 %: the first whole minute after start, within ~130 s;
        # once the screen shows one, the demo is stopped as by Ctrl-C (it then prints its summary)
        ["bash", "deploy/demo.sh", "--duration", "150", "--plain", "--workdir", str(tmp_path / "demo")],
        repo,
        900,
        stop_when=lambda line: line.startswith("Grade of "),
    )
    assert demo.returncode == 0, demo.stdout[-4000:] + demo.stderr[-3000:]
    assert (repo / ".venv" / "bin" / "energy-agent").exists()
    summary = demo.stdout.strip().splitlines()[-1]
    match = re.search(r"(\d+) sample messages from (\d+) devices, (\d+) KPI messages, (\d+) invalid", summary)
    assert match, summary
    assert int(match.group(2)) == 11 and int(match.group(3)) >= 2 and match.group(4) == "0"
    assert re.search(r"^Grade of \S+ \S+: \(?(BENCHMARK|between|BELOW BASELINE)", demo.stdout, flags=re.MULTILINE)


@pytest.mark.long(seconds=40)  # a 35 s demo
def test_demo_falls_back_to_the_embedded_broker(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Without mosquitto the demo runs on the embedded broker (MQTT 3.1.1), the agent speaking 3.1.1 to it.
    ``--keep`` keeps its temporary work folder and says where it is."""
    from agent.cli import main

    code = main(["demo", "--broker", "embedded", "--duration", "35", "--plain", "--keep"])
    out = capsys.readouterr().out
    kept = re.search(r"^work folder kept: (\S+) ", out, flags=re.MULTILINE)
    assert kept, out[-1000:]
    workdir = Path(kept.group(1))
    try:
        assert code == 0, out[-3000:]
        assert "embedded broker (MQTT 3.1.1)" in out
        assert re.search(r"from 11 devices, [1-9]\d* KPI messages, 0 invalid payloads", out), out[-500:]
        assert "protocol: 3.1.1" in (workdir / "site.yaml").read_text()
        assert (workdir / "energy-agent.log").exists() and (workdir / "state" / "spool.sqlite").exists()
    finally:
        shutil.rmtree(workdir)
