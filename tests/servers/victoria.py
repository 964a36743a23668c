"""Debian's VictoriaMetrics single node on a free loopback port: it accepts the InfluxDB v2 write API
(``/api/v2/write``), so it stands in for InfluxDB 2.x in tests of the influxdb-client path.

VictoriaMetrics stores numeric fields only (a metric per ``measurement_field``); string fields are dropped.
``-dedup.minScrapeInterval=1ms`` makes it keep one sample per series and millisecond, as InfluxDB keeps one point
per series and timestamp, so a redelivered message does not show up twice (``dedup=False`` leaves it out, to show
that it is needed). ``path_prefix`` sets ``-http.pathPrefix``: every path, writes and queries, is served under it;
with ``/insert/0`` a single node answers the cluster vminsert's ``/insert/0/influx/write``.
"""

from __future__ import annotations

import json
import shutil
import urllib.error
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

    path_prefix = ""

    @property
    def url(self) -> str:
        """Where the server answers, with its path prefix."""
        return f"http://127.0.0.1:{self.port}{self.path_prefix}"

    def flush(self) -> None:
        """Make recently written samples visible to queries."""
        with urllib.request.urlopen(f"{self.url}/internal/force_flush", timeout=30) as resp:
            resp.read()

    def export(self, match: str) -> list[dict[str, Any]]:
        """Raw series as /api/v1/export returns them (one JSON object per series)."""
        query = urllib.parse.urlencode({"match[]": match})
        with urllib.request.urlopen(f"{self.url}/api/v1/export?{query}", timeout=30) as resp:
            return [json.loads(line) for line in resp.read().splitlines() if line.strip()]

    def query(self, promql: str, at: float) -> list[dict[str, Any]]:
        """An instant MetricsQL query at UNIX time ``at``: the ``result`` list (``metric``, ``value``)."""
        return self._api("query", promql, {"time": f"{at:.3f}"})

    def query_range(self, promql: str, start: float, end: float, step_s: float) -> list[dict[str, Any]]:
        """A range query: the ``result`` list (``metric``, ``values`` as [[t, "v"], ...])."""
        return self._api("query_range", promql, {"start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{step_s}s"})

    def _api(self, path: str, promql: str, params: dict[str, str]) -> list[dict[str, Any]]:
        query = urllib.parse.urlencode({"query": promql} | params)
        try:
            with urllib.request.urlopen(f"{self.url}/api/v1/{path}?{query}", timeout=30) as resp:
                body = json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            raise RuntimeError(
                f"MetricsQL {promql!r}: HTTP {exc.code}: {exc.read().decode(errors='replace')}"
            ) from None
        result: list[dict[str, Any]] = body["data"]["result"]
        return result


def victoria(
    workdir: Path, port: int | None = None, path_prefix: str = "", dedup: bool = True, relabel: Path | None = None
) -> VictoriaServer:
    """``relabel``: a -relabelConfig file. Points are visible to queries at once (-search.latencyOffset=0s; the
    default hides the last 30 s). Query limits as docs/scale.md sets them."""
    port = port or free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    argv = [
        victoria_binary(),
        f"-httpListenAddr=127.0.0.1:{port}",
        f"-storageDataPath={workdir / 'data'}",
        "-retentionPeriod=100y",
        "-search.disableCache",
        "-search.latencyOffset=0s",
        "-search.maxPointsPerTimeseries=40000",  # as docs/scale.md sets it: 400 days of 15-minute steps
        "-loggerLevel=ERROR",
    ]
    if relabel is not None:
        argv.append(f"-relabelConfig={relabel}")
    if dedup:
        argv.append("-dedup.minScrapeInterval=1ms")
    if path_prefix:
        argv.append(f"-http.pathPrefix={path_prefix}")
    server = VictoriaServer("victoria-metrics", argv, workdir, port)
    server.path_prefix = path_prefix
    return server


def vmauth(workdir: Path, upstream: str, bearer_token: str, username: str, password: str) -> ServerProcess:
    """Debian's vmauth (VictoriaMetrics' auth proxy) in front of ``upstream``: one user by Bearer token, one by
    Basic auth; every path is passed on to ``upstream`` as it came. Not started."""
    binary = shutil.which("vmauth") or shutil.which("/usr/bin/vmauth")
    if not binary:
        pytest.skip("vmauth is not installed: it comes with Debian's victoria-metrics package (deploy/test.sh)")
    port = free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    conf = workdir / "auth.yml"
    conf.write_text(
        "users:\n"
        f'  - bearer_token: "{bearer_token}"\n    url_prefix: "{upstream}"\n'
        f'  - username: "{username}"\n    password: "{password}"\n    url_prefix: "{upstream}"\n'
    )
    argv = [binary, f"-auth.config={conf}", f"-httpListenAddr=127.0.0.1:{port}", "-loggerLevel=ERROR"]
    return ServerProcess("vmauth", argv, workdir, port)
