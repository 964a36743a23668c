"""Debian's InfluxDB 1.x (``influxd``) on free loopback ports in a temporary folder, with InfluxQL helpers.

The config puts meta/data/wal in ``workdir``, binds HTTP and the 8088 RPC (backup) service to free ports on
127.0.0.1, and turns off reporting, monitoring and the request log. Restart on the same ports (and data) by
calling ``start()`` again after ``stop()``/``kill9()``.
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


def influxd_binary() -> str:
    found = shutil.which("influxd") or shutil.which("/usr/bin/influxd")
    if not found:
        pytest.skip("influxd is not installed: run deploy/test.sh, which installs Debian's influxdb")
    return found


class InfluxServer(ServerProcess):
    def __enter__(self) -> InfluxServer:
        self.start()
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def query(self, q: str, db: str | None = None, method: str = "GET") -> list[dict[str, Any]]:
        """Run InfluxQL; return the ``series`` of the first statement ([] when there are none). Raise on error."""
        params = {"q": q, "epoch": "ns"}
        if db:
            params["db"] = db
        data = urllib.parse.urlencode(params)
        if method == "POST":
            req = urllib.request.Request(f"{self.url}/query", data=data.encode(), method="POST")
        else:
            req = urllib.request.Request(f"{self.url}/query?{data}")
        with urllib.request.urlopen(req, timeout=30) as resp:
            body = json.loads(resp.read())
        result = body["results"][0]
        if "error" in result:
            raise RuntimeError(f"InfluxQL {q!r}: {result['error']}")
        series: list[dict[str, Any]] = result.get("series", [])
        return series

    def create_database(self, db: str) -> None:
        self.query(f'CREATE DATABASE "{db}"', method="POST")

    def scalar(self, q: str, db: str) -> Any:
        """The first value column of the first row (e.g. of ``SELECT count(x) ...``), or 0 when there are no rows."""
        series = self.query(q, db)
        if not series:
            return 0
        return series[0]["values"][0][1]


def influxd(workdir: Path, port: int | None = None) -> InfluxServer:
    """Not started: use ``with influxd(...) as db`` or ``.start()``."""
    port = port or free_port()
    rpc = free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    conf = workdir / "influxdb.conf"
    conf.write_text(
        "reporting-disabled = true\n"
        f'bind-address = "127.0.0.1:{rpc}"\n'
        f'[meta]\n  dir = "{workdir / "meta"}"\n  logging-enabled = false\n'
        f'[data]\n  dir = "{workdir / "data"}"\n  wal-dir = "{workdir / "wal"}"\n  query-log-enabled = false\n'
        '  cache-snapshot-write-cold-duration = "10s"\n'
        "[monitor]\n  store-enabled = false\n"
        "[subscriber]\n  enabled = false\n"
        "[continuous_queries]\n  enabled = false\n"
        f'[http]\n  enabled = true\n  bind-address = "127.0.0.1:{port}"\n  log-enabled = false\n'
        "  pprof-enabled = false\n"
        '[logging]\n  level = "warn"\n'
    )
    return InfluxServer("influxd", [influxd_binary(), "-config", str(conf)], workdir, port)
