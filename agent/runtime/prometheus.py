"""Prometheus text exposition of the agent's self-monitoring, served on a local port (loopback by default).

:func:`families` turns the health snapshot the status topic publishes (``Agent.health()``) into metric families
that follow the exposition conventions: base units in the name (``_seconds``, ``_bytes``, ``_messages``),
``_total`` on counters, one meaning per metric with labels for the parts (``device``, ``kind``, ``reason``), and
percentiles as a ``summary`` with ``quantile="0.5"`` labels. The percentiles are over the last 2048 observations
(a sliding window), so the summaries carry no ``_sum``/``_count``; ``quantile="1"`` is that window's maximum.

Minimal HTTP/1.0 on asyncio streams (about 60 lines; no HTTP framework for one read-only page): ``GET /metrics``
answers the text format 0.0.4; anything else 404; a request line or header over 8 KiB 414/431. Read-only, no state.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

log = logging.getLogger("agent.runtime")

Labels = dict[str, str]
_QUANTILES = {"p50": "0.5", "p95": "0.95", "p99": "0.99", "max": "1"}
_SPOOL_KINDS = ("samples", "kpi", "status")


@dataclass(frozen=True, slots=True)
class Family:
    """One metric: ``name`` carries the unit (and ``_total`` for a counter); ``samples`` are (labels, value)."""

    name: str
    kind: Literal["gauge", "counter", "summary"]
    help: str
    samples: list[tuple[Labels, float]] = field(default_factory=list)


def _escape(value: str) -> str:
    """A label value: backslash, newline and double quote escaped."""
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _escape_help(text: str) -> str:
    """HELP text: backslash and newline escaped (quotes stay)."""
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


def render(metrics: Iterable[Family]) -> str:
    lines: list[str] = []
    for fam in metrics:
        lines.append(f"# HELP {fam.name} {_escape_help(fam.help)}")
        lines.append(f"# TYPE {fam.name} {fam.kind}")
        for labels, value in fam.samples:
            label_text = ",".join(f'{k}="{_escape(v)}"' for k, v in sorted(labels.items()))
            head = f"{fam.name}{{{label_text}}}" if label_text else fam.name
            lines.append(f"{head} {_number(value)}")
    return "\n".join(lines) + "\n"


def _num(value: Any) -> float | None:
    """A figure from the health snapshot as a float; None when absent or not a number (bools count as 0/1)."""
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, int | float):
        return float(value)
    return None


def _summary(name: str, help_text: str, figures: Mapping[str, Any], scale: float = 1.0) -> Family:
    samples = []
    for key, quantile in _QUANTILES.items():
        value = _num(figures.get(key))
        if value is not None:
            samples.append(({"quantile": quantile}, value * scale))
    return Family(name, "summary", f"{help_text} (sliding window of the last 2048 observations)", samples)


def families(health: Mapping[str, Any]) -> list[Family]:
    """Every family from one ``Agent.health()`` snapshot. A figure that is missing is left out (never a fake 0)."""
    return [*_device_families(health.get("devices", {})), *_agent_families(health)]


def _device_families(devices: Mapping[str, Mapping[str, Any]]) -> list[Family]:
    def per_device(key: str) -> list[tuple[Labels, float]]:
        return [({"device": d}, v) for d, fig in devices.items() if (v := _num(fig.get(key))) is not None]

    return [
        Family(
            "energy_agent_device_up",
            "gauge",
            "1 when the device's polls succeed, 0 once failures reached the threshold",
            [({"device": d}, 1.0 if fig.get("state") == "ok" else 0.0) for d, fig in devices.items()],
        ),
        Family(
            "energy_agent_device_last_success_timestamp_seconds",
            "gauge",
            "UNIX time of the device's last successful poll",
            per_device("last_success_ts"),
        ),
        Family(
            "energy_agent_device_consecutive_failures",
            "gauge",
            "Failed polls in a row (0 after a success)",
            per_device("consecutive_failures"),
        ),
        Family(
            "energy_agent_device_poll_duration_seconds",
            "gauge",
            "Duration of the device's last poll",
            per_device("last_poll_duration_s"),
        ),
        Family("energy_agent_device_requests_total", "counter", "Requests sent to the device", per_device("requests")),
        Family(
            "energy_agent_device_retries_total",
            "counter",
            "Requests or connection attempts repeated after a timeout or a dropped connection",
            per_device("retries"),
        ),
        Family(
            "energy_agent_device_connection_drops_total",
            "counter",
            "Established connections or sessions to the device that were lost",
            per_device("connection_drops"),
        ),
        Family(
            "energy_agent_device_errors_total",
            "counter",
            "Failed requests to the device by kind of error (timeout, exception name, ...)",
            [
                ({"device": d, "kind": str(kind)}, float(n))
                for d, fig in devices.items()
                for kind, n in (fig.get("errors") or {}).items()
                if _num(n) is not None
            ],
        ),
    ]


def _agent_families(health: Mapping[str, Any]) -> list[Family]:
    polls = _num(health.get("polls"))
    return [
        Family(
            "energy_agent_polls_total", "counter", "Polls handed to the spool", [] if polls is None else [({}, polls)]
        ),
        _summary(
            "energy_agent_loop_lag_seconds", "How late the event loop woke a sleeper", health.get("loop_lag_s", {})
        ),
        _summary(
            "energy_agent_poll_jitter_seconds",
            "Poll start offset from its wall-clock-aligned slot",
            health.get("poll_jitter_s", {}),
        ),
        _summary(
            "energy_agent_poll_to_spool_seconds",
            "From a poll's last reply to its samples committed in the spool",
            health.get("poll_to_spool_s", {}),
        ),
        *_spool_families(health.get("spool") or {}),
        *_mqtt_families(health.get("sink") or {}),
    ]


def _spool_families(spool: Mapping[str, Any]) -> list[Family]:
    if not spool:
        return []
    by_kind: Mapping[str, Any] = spool.get("depth_by_kind") or {}
    kinds = sorted({*_SPOOL_KINDS, *by_kind})
    dropped = [
        ({"kind": kind, "reason": reason}, _num((spool.get(f"dropped_{reason}") or {}).get(kind)) or 0.0)
        for reason in ("full", "expired")
        for kind in sorted({*_SPOOL_KINDS, *(spool.get(f"dropped_{reason}") or {})})
    ]
    scalars = [
        ("energy_agent_spool_bytes", "Bytes the spooled messages take (accounted)", "bytes"),
        ("energy_agent_spool_capacity_bytes", "The spool's limit (spool.max_bytes)", "max_bytes"),
    ]
    return [
        Family(
            "energy_agent_spool_messages",
            "gauge",
            "Messages waiting in the spool for the broker's acknowledgement, by kind",
            [({"kind": k}, _num(by_kind.get(k)) or 0.0) for k in kinds],
        ),
        *(Family(n, "gauge", h, [({}, v)]) for n, h, key in scalars if (v := _num(spool.get(key))) is not None),
        Family(
            "energy_agent_spool_oldest_age_seconds",
            "gauge",
            "Age of the oldest spooled message (0 when the spool is empty)",
            [({}, _num(spool.get("oldest_age_s")) or 0.0)],
        ),
        Family(
            "energy_agent_spool_dropped_messages_total",
            "counter",
            "Messages dropped from the spool: reason full (max_bytes reached) or expired (older than max_age_s)",
            dropped,
        ),
    ]


def _mqtt_families(sink: Mapping[str, Any]) -> list[Family]:
    if not sink:
        return []

    def one(key: str) -> list[tuple[Labels, float]]:
        value = _num(sink.get(key))
        return [] if value is None else [({}, value)]

    lost = [({"reason": r}, v) for r in ("refused", "rejected") if (v := _num(sink.get(r))) is not None]
    return [
        Family("energy_agent_mqtt_connected", "gauge", "1 while the MQTT session is up", one("connected")),
        Family(
            "energy_agent_mqtt_replaying", "gauge", "1 while the spooled backlog is being replayed", one("replaying")
        ),
        Family(
            "energy_agent_mqtt_inflight_messages",
            "gauge",
            "Messages published and not yet acknowledged",
            one("inflight"),
        ),
        Family("energy_agent_mqtt_published_messages_total", "counter", "Messages handed to MQTT", one("published")),
        Family("energy_agent_mqtt_acked_messages_total", "counter", "Messages the broker acknowledged", one("acked")),
        Family(
            "energy_agent_mqtt_dropped_messages_total",
            "counter",
            "Messages deleted unpublished: refused by the broker (ACL) or rejected as unpublishable",
            lost,
        ),
        Family("energy_agent_mqtt_connects_total", "counter", "MQTT sessions established", one("connects")),
        Family(
            "energy_agent_mqtt_connection_failures_total",
            "counter",
            "Failed connection attempts and lost connections",
            one("failures"),
        ),
        _summary(
            "energy_agent_mqtt_publish_latency_seconds",
            "From publish to the broker's acknowledgement",
            sink.get("publish_latency_ms") or {},
            scale=0.001,
        ),
    ]


class PrometheusServer:
    """``async with PrometheusServer(host, port, collect): ...`` serves ``collect()`` rendered at each scrape.

    Any local process can connect, so the server is defensive: a request line or header over 8 KiB gets 414 or 431
    (the stream's limit, not an exception), a client that says nothing for 5 s is dropped, and on exit every
    connection in progress is cancelled and awaited, so a stop during a scrape logs nothing."""

    _LIMIT = 8192

    def __init__(self, host: str, port: int, collect: Callable[[], Iterable[Family]]) -> None:
        self.host = host
        self.port = port
        self._collect = collect
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> PrometheusServer:
        self._server = await asyncio.start_server(self._handle, self.host, self.port, limit=self._LIMIT)
        sockets = self._server.sockets
        if sockets:
            self.port = sockets[0].getsockname()[1]
        log.info("metrics: serving Prometheus text on http://%s:%d/metrics", self.host, self.port)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._server is None:
            return
        self._server.close()
        for task in list(self._connections):
            task.cancel()
        if self._connections:
            await asyncio.gather(*self._connections, return_exceptions=True)
        await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._connections.add(task)
        try:
            writer.write(await self._answer(reader))
            await writer.drain()
        except (TimeoutError, ConnectionError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:
            pass  # the agent is stopping; the client sees the connection close
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError, asyncio.CancelledError):
                await writer.wait_closed()
            if task is not None:
                self._connections.discard(task)

    async def _answer(self, reader: asyncio.StreamReader) -> bytes:
        try:
            request = await asyncio.wait_for(reader.readline(), 5)
        except ValueError:  # longer than the limit (asyncio.LimitOverrunError, re-raised by readline)
            return _reply("414 URI Too Long", b"request line too long\n")
        try:
            while (await asyncio.wait_for(reader.readline(), 5)) not in (b"\r\n", b"\n", b""):
                pass
        except ValueError:
            return _reply("431 Request Header Fields Too Large", b"header too long\n")
        parts = request.decode("latin-1").split()
        if len(parts) >= 2 and parts[0] == "GET" and parts[1].split("?")[0] == "/metrics":
            return _reply("200 OK", render(self._collect()).encode(), "text/plain; version=0.0.4; charset=utf-8")
        return _reply("404 Not Found", b"not found\n")


def _reply(status: str, body: bytes, content_type: str = "text/plain") -> bytes:
    head = f"HTTP/1.0 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\n\r\n"
    return head.encode() + body
