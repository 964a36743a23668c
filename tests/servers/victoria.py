"""Debian's VictoriaMetrics single node on a free loopback port: it accepts the InfluxDB v2 write API
(``/api/v2/write``), so it stands in for InfluxDB 2.x in tests of the influxdb-client path.

VictoriaMetrics stores numeric fields only (a metric per ``measurement_field``); string fields are dropped.
``-dedup.minScrapeInterval=1ms`` makes it keep one sample per series and millisecond, as InfluxDB keeps one point
per series and timestamp, so a redelivered message does not show up twice.
"""

from __future__ import annotations

import json
import shutil
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.servers.process import ServerProcess, free_port


def victoria_binary() -> str:
    found = shutil.which("victoria-metrics") or shutil.which("/usr/bin/victoria-metrics")
    if not found:
        pytest.skip("victoria-metrics is not installed: run deploy/test.sh, which installs Debian's victoria-metrics")
    return found


class VictoriaServer(ServerProcess):
    def __enter__(self) -> VictoriaServer:
        self.start()
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def flush(self) -> None:
        """Make recently written samples visible to queries."""
        with urllib.request.urlopen(f"{self.url}/internal/force_flush", timeout=30) as resp:
            resp.read()

    def export(self, match: str) -> list[dict[str, Any]]:
        """Raw series as /api/v1/export returns them (one JSON object per series)."""
        query = urllib.parse.urlencode({"match[]": match})
        with urllib.request.urlopen(f"{self.url}/api/v1/export?{query}", timeout=30) as resp:
            return [json.loads(line) for line in resp.read().splitlines() if line.strip()]


def victoria(workdir: Path, port: int | None = None) -> VictoriaServer:
    port = port or free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    argv = [
        victoria_binary(),
        f"-httpListenAddr=127.0.0.1:{port}",
        f"-storageDataPath={workdir / 'data'}",
        "-retentionPeriod=100y",
        "-dedup.minScrapeInterval=1ms",
        "-search.disableCache",
        "-loggerLevel=ERROR",
    ]
    return VictoriaServer("victoria-metrics", argv, workdir, port)
