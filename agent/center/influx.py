"""InfluxDB writers: one Protocol, two implementations.

- :class:`V1Writer`: ``POST /write?db=&rp=&precision=`` with line protocol (InfluxDB 1.x, and any server that
  speaks the 1.x write API), over one keep-alive ``http.client`` connection.
- :class:`V2Writer`: the v2 write API through influxdb-client's synchronous WriteApi (InfluxDB 2.x, 3.x, Cloud,
  VictoriaMetrics' ``/api/v2/write``). The client's own retries are off: the ingestor owns retrying.

Both are blocking; the ingestor calls them from a worker thread, one write at a time. Failures are mapped here,
at one boundary, to :class:`InfluxWriteError` with ``retriable`` set: network errors, timeouts and every status
about the target (401/403/404/429/5xx) are retriable (keep the batch, back off, try again); 400/413/422 mean the
data itself was refused (field type
conflict, bad line, too large) and retrying the same bytes cannot succeed.
"""

from __future__ import annotations

import base64
import http.client
import urllib.parse
from typing import Any, Protocol

from agent.center.config import InfluxConfig
from agent.center.lineproto import V1_PRECISION
from agent.errors import SinkError


class InfluxWriteError(SinkError):
    def __init__(self, message: str, *, retriable: bool, status: int | None = None) -> None:
        super().__init__(message)
        self.retriable = retriable
        self.status = status


def _retriable(status: int) -> bool:
    """400 (bad line, field type conflict, partial write), 413 (too large) and 422 (unprocessable) are about the
    data; anything else (401/403 credentials, 404 no such database or bucket, 429, 5xx) is about the target and is
    fixed on the server side while we hold the data and retry."""
    return status not in (400, 413, 422)


class InfluxWriter(Protocol):
    """Lifecycle: construct, write() any number of times from one thread at a time, close() once.
    write() returns when the server accepted every line, or raises InfluxWriteError."""

    def write(self, body: bytes) -> None: ...

    def close(self) -> None: ...

    @property
    def target(self) -> str:
        """Where points go, for log lines (no secrets)."""
        ...


class V1Writer:
    def __init__(self, config: InfluxConfig) -> None:
        url = urllib.parse.urlsplit(config.url)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ValueError(f"influx.url must be http(s)://host:port, got {config.url!r}")
        self._https = url.scheme == "https"
        self._host = url.hostname
        self._port = url.port or (443 if self._https else 8086)
        self._timeout_s = config.timeout_ms / 1000
        query = {"db": config.database or "", "precision": V1_PRECISION[config.precision]}
        if config.retention_policy:
            query["rp"] = config.retention_policy
        self._path = url.path.rstrip("/") + "/write?" + urllib.parse.urlencode(query)
        self._headers = {"Content-Type": "text/plain; charset=utf-8"}
        secret = config.secret()
        if config.username and secret is not None:
            token = base64.b64encode(f"{config.username}:{secret}".encode()).decode()
            self._headers["Authorization"] = f"Basic {token}"
        self._conn: http.client.HTTPConnection | None = None
        self.target = f"{config.url} database {config.database}"

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            cls = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
            self._conn = cls(self._host, self._port, timeout=self._timeout_s)
        return self._conn

    def write(self, body: bytes) -> None:
        conn = self._connection()
        try:
            conn.request("POST", self._path, body=body, headers=self._headers)
            response = conn.getresponse()
            detail = response.read()
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            raise InfluxWriteError(f"{self.target}: {type(exc).__name__}: {exc}", retriable=True) from exc
        if response.status in (200, 204):
            return
        text = detail.decode(errors="replace").strip()[:500]
        raise InfluxWriteError(
            f"{self.target}: HTTP {response.status}: {text}",
            retriable=_retriable(response.status),
            status=response.status,
        )

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


class V2Writer:
    def __init__(self, config: InfluxConfig) -> None:
        from influxdb_client.client.influxdb_client import InfluxDBClient
        from influxdb_client.client.write_api import SYNCHRONOUS
        from influxdb_client.domain.write_precision import WritePrecision

        self._bucket = config.bucket or ""
        self._org = config.org or ""
        self._precision: Any = {
            "ns": WritePrecision.NS,
            "us": WritePrecision.US,
            "ms": WritePrecision.MS,
            "s": WritePrecision.S,
        }[config.precision]
        self._client: Any = InfluxDBClient(
            url=config.url,
            token=config.secret() or "",
            org=self._org,
            timeout=config.timeout_ms,
            retries=False,
            enable_gzip=False,
        )
        self._api: Any = self._client.write_api(write_options=SYNCHRONOUS)
        self.target = f"{config.url} bucket {self._bucket} org {self._org}"

    def write(self, body: bytes) -> None:
        from influxdb_client.rest import ApiException
        from urllib3.exceptions import HTTPError

        try:
            self._api.write(bucket=self._bucket, org=self._org, record=body, write_precision=self._precision)
        except ApiException as exc:
            status = int(exc.status or 0)
            text = str(exc.body or exc.reason or "").strip()[:500]
            raise InfluxWriteError(
                f"{self.target}: HTTP {status}: {text}", retriable=status == 0 or _retriable(status), status=status
            ) from exc
        except (OSError, HTTPError) as exc:
            raise InfluxWriteError(f"{self.target}: {type(exc).__name__}: {exc}", retriable=True) from exc

    def close(self) -> None:
        self._api.close()
        self._client.close()


def make_writer(config: InfluxConfig) -> InfluxWriter:
    return V1Writer(config) if config.kind == "v1" else V2Writer(config)
