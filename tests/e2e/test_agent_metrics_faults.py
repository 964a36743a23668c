"""/metrics under abuse from any local process: a request line over the stream limit, and SIGTERM while a scrape is
in progress. Neither may put a traceback in the agent's log (issue 17: LimitOverrunError tracebacks, one per
connection; CancelledError tracebacks at error level on 3 of 3 stops)."""

from __future__ import annotations

import socket
import urllib.request
from pathlib import Path

import pytest

from tests.e2e.agent_harness import AgentProcess, agent_site
from tests.servers.mosquitto import mosquitto
from tests.simfixtures import simulator_process

pytestmark = pytest.mark.e2e


def test_a_huge_request_line_and_a_stop_during_a_scrape_log_no_traceback(tmp_path: Path) -> None:
    with simulator_process(tmp_path / "sim"), mosquitto(tmp_path / "mq") as broker:
        site = agent_site(tmp_path / "sim" / "site.yaml", broker.port)
        agent = AgentProcess(site).wait_ready()
        try:
            port = agent.metrics_port
            for _ in range(3):
                with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
                    s.sendall(b"GET /" + b"a" * 70_000 + b" HTTP/1.0\r\n\r\n")
                    reply = s.recv(4096)
                assert reply.startswith(b"HTTP/1.") and b" 414 " in reply.split(b"\r\n")[0], reply[:200]
            text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
            assert "energy_agent_device_up" in text  # still serving
            # scrapes in progress when SIGTERM comes: one sent half a request, one sent nothing yet
            half = socket.create_connection(("127.0.0.1", port), timeout=10)
            half.sendall(b"GET /metrics HTTP/1.0\r\nHost: x\r\n")
            idle = socket.create_connection(("127.0.0.1", port), timeout=10)
            try:
                assert agent.terminate() == 0, agent.log()[-3000:]
            finally:
                half.close()
                idle.close()
        finally:
            if agent.proc.poll() is None:
                agent.terminate()
        log = agent.log()
        assert "Traceback" not in log, log[-4000:]
        assert "CancelledError" not in log and "LimitOverrunError" not in log
