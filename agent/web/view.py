"""The page's data: what the runtime offers (:class:`AgentView`) and the JSON frames pushed to the browser.

Two frames, each encoded once and sent to every viewer: ``live`` (about every second: devices with their state,
points and counters, spool, MQTT, log) and ``kpi`` (when the KPIs were evaluated again: the table and the trends).
A device's state for the page: ``ok``; ``failing`` with the reason of its last poll and a hint at the likely cause;
``backing_off`` while a failing device's slots are skipped (the reason it backs off for); ``waiting`` before its
first poll; ``disabled``.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from agent.model import KpiValue, Quality, Sample
from agent.web.live import DeviceLive, LiveState, LogRing

BACKING_OFF = "backing off: "


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    """A configured device as the page lists it, before or without any poll."""

    name: str
    protocol: str  # "modbus" or "opcua"
    endpoint: str  # "host:port unit 3", "bus rs485-1 unit 3", "opc.tcp://..."
    interval_s: float
    enabled: bool
    probe_note: str = ""  # why the page does not probe this device itself (a serial port the agent holds), or ""


class AgentView(Protocol):
    """What the running agent offers the page (implemented in agent.runtime). Every method is cheap and called on
    the event loop; none does I/O except ``site_text`` (reads the site file) and nothing changes any state."""

    @property
    def site_path(self) -> Path: ...

    def meta(self) -> dict[str, Any]:
        """version, site, gateway, boot, started_ts, reloaded_ts (None until a reload was applied)."""
        ...

    def devices(self) -> list[DeviceInfo]: ...

    def health(self) -> dict[str, Any]:
        """The status topic's health snapshot (``Agent.health()``)."""
        ...

    def raw_registers(self, device: str) -> dict[str, str] | None:
        """point -> raw registers in hex from the device's last poll; None for a device that has none."""
        ...

    def hints(self, reasons: list[str]) -> list[str]:
        """The likely causes of these fault reasons, one sentence each (probe's hints)."""
        ...


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _point(s: Sample) -> dict[str, Any]:
    return {
        "point": s.point,
        "value": _finite(s.value),
        "unit": s.unit,
        "quality": s.quality.value,
        "reason": s.reason,
        "ts": s.ts,
    }


def device_state(health: Mapping[str, Any] | None, live: DeviceLive | None, enabled: bool) -> tuple[str, str]:
    """(state, reason) of one device for the page."""
    if not enabled or (health is not None and health.get("state") == "disabled"):
        return "disabled", ""
    if live is None or live.last is None:
        return "waiting", ""
    samples = live.last.samples
    bad = [s.reason for s in samples if s.quality in (Quality.BAD, Quality.STALE) and s.reason]
    if bad and all(r.startswith(BACKING_OFF) for r in bad) and len(bad) == len(samples):
        return "backing_off", bad[0].removeprefix(BACKING_OFF)
    failing = health is not None and (health.get("state") == "failed" or health.get("consecutive_failures", 0) > 0)
    errors = [e.removeprefix(f"{live.last.device}: ") for e in live.last.errors]
    if failing or (samples and len(bad) == len(samples)):
        reason = errors[0] if errors else (Counter(bad).most_common(1)[0][0] if bad else "no reply")
        return "failing", reason
    if bad or errors:
        return "ok", (errors[0] if errors else Counter(bad).most_common(1)[0][0])
    return "ok", ""


def live_frame(view: AgentView, live: LiveState, log: LogRing | None, now: float | None = None) -> dict[str, Any]:
    health = view.health()
    by_device: dict[str, Any] = health.get("devices", {})
    devices = []
    for info in view.devices():
        h = by_device.get(info.name)
        d = live.devices.get(info.name)
        state, reason = device_state(h, d, info.enabled)
        last = d.last if d is not None else None
        devices.append(
            {
                "name": info.name,
                "protocol": info.protocol,
                "endpoint": info.endpoint,
                "interval_s": info.interval_s,
                "probe_note": info.probe_note,
                "state": state,
                "reason": reason,
                "hint": " ".join(view.hints([reason])) if reason else "",
                "last_poll_ts": last.ts + last.duration_s if last is not None else None,
                "last_success_ts": h.get("last_success_ts") if h else None,
                "duration_ms": round(last.duration_s * 1000, 1) if last is not None else None,
                "polls": d.polls if d else 0,
                "good_polls": d.good_polls if d else 0,
                "bad_polls": d.bad_polls if d else 0,
                "good": d.good_samples if d else 0,
                "bad": d.bad_samples if d else 0,
                "consecutive_failures": h.get("consecutive_failures", 0) if h else 0,
                "requests": h.get("requests", 0) if h else 0,
                "retries": h.get("retries", 0) if h else 0,
                "drops": h.get("connection_drops", 0) if h else 0,
                "errors": h.get("errors", {}) if h else {},
                "points": [_point(s) for s in last.samples] if last is not None else [],
            }
        )
    spool: dict[str, Any] = health.get("spool", {})
    sink: dict[str, Any] = health.get("sink", {})
    lag = health.get("loop_lag_s", {})
    return {
        "type": "live",
        "now": time.time() if now is None else now,
        "meta": view.meta() | {"site_file": str(view.site_path), "polls": health.get("polls", 0)},
        "devices": devices,
        "spool": {
            "depth": spool.get("depth", 0),
            "bytes": spool.get("bytes", 0),
            "max_bytes": spool.get("max_bytes", 0),
            "oldest_age_s": spool.get("oldest_age_s"),
            "depth_by_kind": spool.get("depth_by_kind", {}),
            "disk_fault": spool.get("disk_fault", ""),
        },
        "mqtt": (
            {
                "configured": bool(sink),
                "connected": bool(sink.get("connected")),
                "inflight": sink.get("inflight", 0),
                "published": sink.get("published", 0),
                "acked": sink.get("acked", 0),
                "replaying": bool(sink.get("replaying")),
                "last_error": str(sink.get("last_error") or ""),
            }
        ),
        "loop_lag_ms": {k: (None if v is None else round(v * 1000, 2)) for k, v in lag.items()},
        "loop_lag_recent_ms": {
            k: (None if v is None else round(v * 1000, 2)) for k, v in health.get("loop_lag_recent_s", {}).items()
        },
        "log": [
            {"ts": line.ts, "level": line.level, "logger": line.logger, "message": line.message}
            for line in (log.lines if log is not None else ())
        ],
    }


def _kpi(v: KpiValue) -> dict[str, Any]:
    return {
        "scope": v.scope,
        "name": v.name,
        "window": v.window,
        "value": _finite(v.value),
        "unit": v.unit,
        "coverage": v.coverage,
        "quality": v.quality.value,
        "final": v.final,
        "grade": v.grade.value if v.grade is not None else None,
        "grade_indicative": v.grade_indicative,
        "distance": _finite(v.distance),
        "reference": v.reference,
        "reason": v.reason,
        "window_start": v.window_start,
        "window_end": v.window_end,
    }


def kpi_frame(live: LiveState) -> dict[str, Any]:
    rows = []
    for key in sorted(live.kpis):
        k = live.kpis[key]
        rows.append(_kpi(k.value) | {"trend": [[round(t, 1), _finite(v)] for t, v in k.trend]})
    return {"type": "kpi", "ts": live.kpi_ts, "kpis": rows}
