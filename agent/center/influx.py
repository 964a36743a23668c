"""Time-series writers: one Protocol, three implementations.

- :class:`V1Writer`: ``POST /write?db=&rp=&precision=`` with line protocol (InfluxDB 1.x, and any server that
  speaks the 1.x write API), over one keep-alive ``http.client`` connection (:class:`HttpLineWriter`).
- :class:`VictoriaWriter`: the same, to VictoriaMetrics' ``/influx/write`` (single node) or
  ``/insert/<tenant>/influx/write`` (cluster vminsert).
- :class:`V2Writer`: the v2 write API through influxdb-client's synchronous WriteApi (InfluxDB 2.x, 3 Core and
  Enterprise, Cloud, VictoriaMetrics' ``/api/v2/write``). A path prefix in the url is kept. The client's own
  retries are off: the ingestor owns retrying.

All are blocking; the ingestor calls them from a worker thread, one write at a time. Failures are mapped here,
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


class HttpLineWriter:
    """``POST <path>`` with line protocol over one keep-alive ``http.client`` connection: the InfluxDB 1.x
    ``/write`` API and every server that copies it (VictoriaMetrics, InfluxDB 3's v1 compatibility)."""

    def __init__(
        self,
        url: str,
        path_and_query: str,
        headers: dict[str, str],
        timeout_s: float,
        target: str,
        secret: str | None = None,
    ) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"influx.url must be http(s)://host:port[/prefix], got {url!r}")
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port or (443 if self._https else 8086)
        self._timeout_s = timeout_s
        self._path = parts.path.rstrip("/") + path_and_query  # any prefix in the url is kept
        self._headers = {"Content-Type": "text/plain; charset=utf-8"} | headers
        self._conn: http.client.HTTPConnection | None = None
        self._secret = secret  # never in an error text, even when the server echoes our Authorization header
        self.target = target

    @property
    def path(self) -> str:
        """The request path with its query (no secrets: those go in headers)."""
        return self._path

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
        text = detail.decode(errors="replace").strip()
        if self._secret:
            text = text.replace(self._secret, "***")
        text = text[:500]
        raise InfluxWriteError(
            f"{self.target}: HTTP {response.status}: {text}",
            retriable=_retriable(response.status),
            status=response.status,
        )

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def basic_auth(username: str | None, secret: str | None) -> dict[str, str]:
    if not username or secret is None:
        return {}
    return {"Authorization": "Basic " + base64.b64encode(f"{username}:{secret}".encode()).decode()}


class V1Writer(HttpLineWriter):
    def __init__(self, config: InfluxConfig) -> None:
        query = {"db": config.database or "", "precision": V1_PRECISION[config.precision]}
        if config.retention_policy:
            query["rp"] = config.retention_policy
        super().__init__(
            config.url,
            "/write?" + urllib.parse.urlencode(query),
            basic_auth(config.username, secret := config.secret()),
            config.timeout_ms / 1000,
            f"{config.url} database {config.database}",
            secret,
        )


# 400s about the target, not the data: a url, prefix or tenant it does not serve; vmauth not knowing our token
_VM_TARGET_ERRORS = ("unsupported path requested", "missing -http.pathPrefix", "cannot find the provided auth token")


class VictoriaWriter(HttpLineWriter):
    """VictoriaMetrics' InfluxDB line-protocol endpoint: a single node's ``/influx/write``, or with ``tenant`` a
    cluster vminsert's ``/insert/<tenant>/influx/write``; after any path prefix in the url (vmauth, a proxy).
    ``database`` becomes VictoriaMetrics' ``db`` label. Auth: Bearer with a token, else Basic with a username."""

    def __init__(self, config: InfluxConfig) -> None:
        where = f"/insert/{config.tenant}/influx/write" if config.tenant else "/influx/write"
        query = {"precision": V1_PRECISION[config.precision]}
        if config.database:
            query["db"] = config.database
        secret = config.secret()
        if config.uses_token():
            headers = {"Authorization": f"Bearer {secret}"} if secret else {}
        else:
            headers = basic_auth(config.username, secret)
        tenant = f" tenant {config.tenant}" if config.tenant else ""
        super().__init__(
            config.url,
            f"{where}?{urllib.parse.urlencode(query)}",
            headers,
            config.timeout_ms / 1000,
            f"VictoriaMetrics {config.url}{tenant}",
            secret,
        )

    def write(self, body: bytes) -> None:
        """VictoriaMetrics skips a malformed line (logged on its side) and answers 204; its 400 "unsupported path
        requested" or "missing -http.pathPrefix" (our url, prefix or tenant) and vmauth's 400 for an unknown token
        are about the target: held and retried (like a 404 or 401) until the config is fixed."""
        try:
            super().write(body)
        except InfluxWriteError as exc:
            if exc.status == 400 and any(why in str(exc) for why in _VM_TARGET_ERRORS):
                raise InfluxWriteError(
                    f"{exc} (check influx.url's path prefix, influx.tenant and the credentials)",
                    retriable=True,
                    status=400,
                ) from exc
            raise


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
    if config.kind == "victoriametrics":
        return VictoriaWriter(config)
    return V1Writer(config) if config.kind == "v1" else V2Writer(config)
