"""Metered quantities: counter readings the agents published, as stored in InfluxDB, turned into 15-minute deltas.

Why from InfluxDB and not at intake: ingestors share one subscription group, so the consecutive readings of one
counter are spread over several processes; only the database holds them all, and it holds them whatever order or
redelivery they came in. The account therefore reads the ``sample`` measurement back (InfluxQL ``/query``: InfluxDB
1.x, or 2.x with a DBRP mapping) for each declared meter's series (site, gateway, device, role), good readings only.

The quantity of a quarter is the counter's increase across it, each increase between two consecutive readings
spread evenly over the time between them (linear interpolation at the quarter's bounds). A counter that goes down
restarted (meter reset or replacement, a register wrap): the increase is its new reading. Nothing is lost across a
silence, because counters are cumulative; but a quarter whose time is not covered by readings at most
``max_sample_gap_s`` apart is a gap, and its cause is looked up in what the agents published: the gateway's status
(offline), the device's bad or uncertain readings and their reason, else "no data received".
"""

from __future__ import annotations

import http.client
import itertools
import json
import threading
import urllib.parse
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from agent.center.accounts.periods import QUARTER_S
from agent.center.config import InfluxConfig


@dataclass(frozen=True, slots=True)
class SeriesRef:
    key: str  # meter id, or output:<product>
    site: str
    gateway: str
    device: str
    role: str


@dataclass(frozen=True, slots=True)
class QuarterValue:
    start: float
    quantity: float
    coverage: float
    cause: str


class SeriesReader(Protocol):
    def readings(self, ref: SeriesRef, t0: float, t1: float) -> list[tuple[float, float]]:
        """Good readings (ts, value) of the counter with t0 <= ts <= t1, oldest first."""
        ...

    def problems(self, ref: SeriesRef, t0: float, t1: float) -> list[tuple[float, str]]:
        """(ts, cause) of what went wrong in [t0, t1): gateway offline, bad or uncertain readings."""
        ...

    def close(self) -> None:
        """The round is over: let go of what was kept for it (a connection)."""
        ...


def _q(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


class InfluxReader:
    """InfluxQL over HTTP, blocking (run it in a worker thread). One connection is kept open from one query to the
    next (a month's round is thousands of queries); a kept connection that InfluxDB closed meanwhile is opened again
    and the query (a GET, safe to repeat) asked once more."""

    def __init__(self, config: InfluxConfig) -> None:
        url = urllib.parse.urlsplit(config.url.rstrip("/") + "/query")
        self._https = url.scheme == "https"
        self._host, self._port = url.hostname or "localhost", url.port
        self._path = url.path
        self._db = config.database or config.bucket or ""
        self._timeout = config.timeout_ms / 1000
        self._headers: dict[str, str] = {}
        self._conn: http.client.HTTPConnection | None = None
        self._lock = threading.Lock()
        secret = config.secret()
        if config.kind == "v2" and secret:
            self._headers["Authorization"] = f"Token {secret}"
        elif config.username and secret is not None:
            import base64

            token = base64.b64encode(f"{config.username}:{secret}".encode()).decode()
            self._headers["Authorization"] = f"Basic {token}"

    def query(self, q: str) -> list[dict[str, Any]]:
        data = urllib.parse.urlencode({"q": q, "db": self._db, "epoch": "ms"})
        with self._lock:
            status, raw = self._get(f"{self._path}?{data}")
        if status != 200:
            raise RuntimeError(f"InfluxDB answered {status} to {q[:80]!r}: {raw[:300].decode(errors='replace')}")
        result = json.loads(raw)["results"][0]
        if "error" in result:
            raise RuntimeError(f"InfluxDB refused {q[:80]!r}: {result['error']}")
        series: list[dict[str, Any]] = result.get("series", [])
        return series

    def _get(self, path: str) -> tuple[int, bytes]:
        kept = self._conn is not None
        try:
            return self._send(path)
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
            if not kept:
                raise
        return self._send(path)  # InfluxDB closed the idle kept connection: ask again on a new one

    def _send(self, path: str) -> tuple[int, bytes]:
        if self._conn is None:
            cls = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
            self._conn = cls(self._host, self._port, timeout=self._timeout)
        try:
            self._conn.request("GET", path, headers=self._headers)
            resp = self._conn.getresponse()
            raw = resp.read()
        except BaseException:
            self.close()
            raise
        if resp.will_close:
            self.close()
        return resp.status, raw

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _where(self, ref: SeriesRef, t0: float, t1: float) -> str:
        return (
            f"site={_q(ref.site)} AND gateway={_q(ref.gateway)} AND device={_q(ref.device)} AND role={_q(ref.role)}"
            f" AND time >= {int(t0 * 1000)}ms AND time <= {int(t1 * 1000)}ms"
        )

    def readings(self, ref: SeriesRef, t0: float, t1: float) -> list[tuple[float, float]]:
        q = f"SELECT value FROM sample WHERE {self._where(ref, t0, t1)} AND quality='good'"
        out: list[tuple[float, float]] = []
        for s in self.query(q):
            out += [(row[0] / 1000.0, float(row[1])) for row in s["values"] if row[1] is not None]
        out.sort()
        return out

    def problems(self, ref: SeriesRef, t0: float, t1: float) -> list[tuple[float, str]]:
        out: list[tuple[float, str]] = []
        q = f"SELECT quality, reason FROM sample WHERE {self._where(ref, t0, t1)} AND quality<>'good'"
        for s in self.query(q):
            for ts, quality, reason in s["values"]:
                out.append((ts / 1000.0, f"device {ref.device} {quality}: {reason or 'no reason given'}"))
        q = (
            f"SELECT online FROM gateway_status WHERE site={_q(ref.site)} AND gateway={_q(ref.gateway)}"
            f" AND time >= {int(t0 * 1000)}ms AND time <= {int(t1 * 1000)}ms AND online=0"
        )
        for s in self.query(q):
            out += [(row[0] / 1000.0, f"gateway {ref.gateway} offline") for row in s["values"]]
        return sorted(out)


def quarters(
    readings: Sequence[tuple[float, float]], t0: float, t1: float, max_gap_s: float
) -> list[tuple[float, float, float]]:
    """(start, quantity, covered fraction) of every quarter in [t0, t1) from a counter's readings."""
    n = round((t1 - t0) / QUARTER_S)
    qty = [0.0] * n
    cov = [0.0] * n
    for (a, va), (b, vb) in itertools.pairwise(readings):
        if b <= a or b <= t0 or a >= t1:
            continue
        inc = vb - va if vb >= va else vb
        rate = inc / (b - a)
        i = max(0, int((a - t0) // QUARTER_S))
        while i < n:
            qa = t0 + i * QUARTER_S
            lo, hi = max(a, qa), min(b, qa + QUARTER_S)
            if lo >= b:
                break
            if hi > lo:
                qty[i] += rate * (hi - lo)
                if b - a <= max_gap_s:
                    cov[i] += (hi - lo) / QUARTER_S
            i += 1
    return [(t0 + i * QUARTER_S, qty[i], min(1.0, cov[i])) for i in range(n)]


def series_quarters(reader: SeriesReader, ref: SeriesRef, t0: float, t1: float, max_gap_s: float) -> list[QuarterValue]:
    """The quarters of [t0, t1) for one series, with a cause for each quarter not fully covered."""
    rows = quarters(reader.readings(ref, t0 - max_gap_s, t1 + max_gap_s), t0, t1, max_gap_s)
    out: list[QuarterValue] = []
    problems: list[tuple[float, str]] | None = None
    for start, qty, coverage in rows:
        cause = ""
        if coverage < 0.999:
            if problems is None:
                problems = reader.problems(ref, t0 - max_gap_s, t1 + max_gap_s)
            seen = Counter(c for ts, c in problems if start - max_gap_s <= ts <= start + QUARTER_S + max_gap_s)
            cause = seen.most_common(1)[0][0] if seen else "no data received"
        out.append(QuarterValue(start, qty, coverage, cause))
    return out
