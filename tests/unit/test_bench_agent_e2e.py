"""The end-to-end benchmark's C simulator is optional: without ``mb_sim`` (MB_SIM or PATH) ``--sim c`` says what
it needs and exits 2 before starting anything; the port ranges it would give the simulator are free."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from tests.benchmarks import agent_e2e


def test_sim_c_without_mb_sim_says_what_it_needs(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("MB_SIM", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert agent_e2e.mb_sim_binary() is None
    assert agent_e2e.main(["--sim", "c", "--seconds", "1"]) == 2
    assert "mb_sim" in capsys.readouterr().err


def test_mb_sim_is_taken_from_the_environment_first(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    binary = tmp_path / "mb_sim"
    monkeypatch.setenv("MB_SIM", str(binary))
    assert agent_e2e.mb_sim_binary() == str(binary)


def test_a_free_port_range_is_free_and_below_the_ephemeral_ports() -> None:
    base = agent_e2e._free_port_range(50)
    assert base >= 10000 and base + 50 <= 32000
    with socket.socket() as s:
        s.bind(("127.0.0.1", base + 49))
