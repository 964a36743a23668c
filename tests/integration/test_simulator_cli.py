"""``python -m simulators`` as an operator meets it: on a port already in use, and installed on a gateway (the
packages in site-packages, the profile library beside the venv). Each ends with one clear line or serves; never a
traceback (issue 17)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

import agent
import simulators

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("kind", ["modbus", "opcua"])
def test_a_port_in_use_is_one_line_and_exit_69(kind: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "simulators", kind, "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert done.returncode == 69, done.stderr
    assert done.stderr.splitlines() == [
        f"python -m simulators {kind}: cannot listen on 127.0.0.1:{port}: the port is in use (another simulator? "
        "stop it, or give --port 0 for any free port)"
    ]


def test_installed_without_the_checkout_it_finds_the_library_beside_the_venv(tmp_path: Path) -> None:
    """As deploy/install.sh lays it out: the packages in site-packages, device_profiles/ beside the venv (for this
    venv, the worktree's). The simulator used to look for ../device_profiles next to its package."""
    site_packages = tmp_path / "site-packages"
    for package in (agent, simulators):
        src = Path(str(package.__file__)).resolve().parent
        shutil.copytree(src, site_packages / src.name, ignore=shutil.ignore_patterns("__pycache__"))
    beside_venv = Path(sys.prefix).resolve().parent / "device_profiles"
    if not beside_venv.is_dir():
        pytest.skip(f"this venv has no device_profiles beside it ({beside_venv})")
    env = dict(os.environ, PYTHONPATH=str(site_packages))
    env.pop("ENERGY_AGENT_PROFILES", None)
    argv = [sys.executable, "-m", "simulators", "modbus", "--port", "0", "--devices", "main-meter"]
    with subprocess.Popen(argv, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        first = proc.stdout.readline().decode()
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert first.startswith("main-meter -> ("), err.decode()[-2000:]
    assert b"Traceback" not in err
