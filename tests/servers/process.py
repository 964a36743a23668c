"""A server process owned by a test: start, wait until its port accepts, stop by PID (SIGTERM, then SIGKILL)."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

# Ports for the servers tests start come from below the kernel's ephemeral range (32768-60999 by default), one slice
# per xdist worker: a port taken there "free" (bound and closed) could otherwise become the local port of some
# outgoing connection (a test's MQTT or Modbus client, anyone's) before the server bound it. The agent then failed
# with EADDRINUSE while its test waited on a port another process answered.
_PORTS = range(20000, 32768)
_SLICES = 8  # more than the workers of a run (deploy/test.sh: two per core); a nested pytest run shares slices
_port_cursor: list[int] = []


def _port_slice() -> range:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw")
    index = int(worker[2:]) if worker[2:].isdigit() else _SLICES - 1
    size = len(_PORTS) // _SLICES
    start = _PORTS.start + (index % _SLICES) * size
    return range(start, start + size)


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody uses right now, from this worker's slice below the ephemeral range (above), taken in turn
    from a random start (a nested run of the suite, sharing the slice, starts elsewhere); the kernel's choice when
    the slice is exhausted."""
    ports = _port_slice()
    if not _port_cursor:
        _port_cursor.append(random.randrange(len(ports)))
    for _ in range(len(ports)):
        port = ports[_port_cursor[0] % len(ports)]
        _port_cursor[0] += 1
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind((host, port))  # without SO_REUSEADDR: a port in TIME_WAIT is passed over too
            except OSError:
                continue
            return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        kernel: int = s.getsockname()[1]
        return kernel


def ctrl_c_reaches_it() -> None:
    """``preexec_fn`` for a command a test stops with SIGINT, as Ctrl-C at a terminal would: the child starts with
    SIGINT at its default. A shell starts background jobs with SIGINT ignored and that is inherited (a suite run
    as ``bash deploy/test.sh &``): Python then leaves it ignored, and bash cannot trap it, so the command would
    never see the test's Ctrl-C."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def wait_port(host: str, port: int, timeout_s: float = 10.0, proc: subprocess.Popen[bytes] | None = None) -> None:
    """Block until ``host:port`` accepts a TCP connection; raise if the process died or time ran out."""
    deadline = time.monotonic() + timeout_s
    while True:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with code {proc.returncode} before listening on {port}")
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.2):
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"nothing listens on {host}:{port} after {timeout_s} s")
        time.sleep(0.02)


class ServerProcess:
    """One server process; the log goes to ``<workdir>/<name>.log``."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        workdir: Path,
        port: int,
        host: str = "127.0.0.1",
        env: dict[str, str] | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.workdir = workdir
        self.port = port
        self.host = host
        self.env = env
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = workdir / f"{name}.log"

    def start(self, timeout_s: float = 15.0) -> ServerProcess:
        self.workdir.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        env = dict(os.environ) | (self.env or {})
        self.proc = subprocess.Popen(
            self.argv, cwd=self.workdir, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
        log.close()
        try:
            wait_port(self.host, self.port, timeout_s, self.proc)
        except Exception as exc:
            self.stop()
            raise RuntimeError(f"{self.name} did not start: {exc}\n{self.log()}") from exc
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None, "not started"
        return self.proc.pid

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill9(self) -> None:
        """SIGKILL, as a crash or power cut would."""
        if self.running():
            assert self.proc is not None
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self, timeout_s: float = 10.0) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()
