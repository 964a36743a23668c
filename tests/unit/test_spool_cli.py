"""``energy-agent spool stats``: the figures of a real spool file, as a table and as JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent.cli import main
from agent.config.spool import SpoolConfig
from agent.spool.sqlite import SqliteSpool


def _site(tmp_path: Path) -> Path:
    site = tmp_path / "site.yaml"
    site.write_text("site: s1\ngateway: gw1\nstate_dir: state\nspool:\n  max_bytes: 65536\n")
    return site


def test_stats_json_reports_depth_bytes_age_and_drops(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("STATE_DIRECTORY", raising=False)
    site = _site(tmp_path)
    now = [1_000_000.0]
    spool = SqliteSpool.open(tmp_path / "state" / "spool.sqlite", SpoolConfig(max_bytes=65536), lambda: now[0])
    for i in range(30):  # 30 x ~4 KiB into 64 KiB: the oldest samples are dropped
        spool.append("plant/s1/gw1/m1/samples", b"x" * 4000, "samples", seq=i, ts=100.0 + i)
    spool.append("plant/s1/gw1/kpi", b"k" * 100, "kpi", seq=30, ts=200.0)
    expected = spool.stats()
    spool.close()
    assert expected.dropped_full["samples"] > 0

    assert main(["spool", "stats", str(site), "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert got["depth"] == expected.depth and got["bytes"] == expected.bytes
    assert got["depth_by_kind"] == {"samples": expected.depth_by_kind["samples"], "kpi": 1, "status": 0}
    assert got["dropped_full"] == expected.dropped_full
    assert got["oldest_ts"] == expected.oldest_ts and got["oldest_age_s"] > 0
    assert got["dropped_unwritable"] == {"samples": 0, "kpi": 0, "status": 0} and got["corrupt_replaced"] == 0

    assert main(["spool", "stats", str(site)]) == 0
    table = capsys.readouterr().out
    assert f"depth        {expected.depth} messages" in table
    assert f"{expected.dropped_full['samples']} samples" in table
    assert "unstored     0 samples, 0 kpi, 0 status (the disk refused them)" in table


def test_stats_of_a_spool_not_created_yet_is_empty(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("STATE_DIRECTORY", raising=False)
    assert main(["spool", "stats", str(_site(tmp_path)), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["depth"] == 0


def test_bad_site_file_exits_78(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    site = tmp_path / "site.yaml"
    site.write_text("site: s1\ngateway: gw1\nspool:\n  max_byte: 1\n")
    assert main(["spool", "stats", str(site)]) == 78
    assert "max_byte" in capsys.readouterr().err
