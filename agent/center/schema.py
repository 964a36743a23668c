"""The InfluxDB schema: which measurement, tags, fields and timestamp each wire message becomes.

Idempotence is the design rule: a point is identified by measurement + tag set + timestamp, so every tag and the
timestamp come from the message itself (never from the arrival time, never boot/seq). A redelivered message writes
the same keys and overwrites the same points with the same values. Tags are only names with few values (site,
gateway, device, point, unit, role; KPI scope, name, window, unit), plus the device tags an operator allows with
``influx.extra_tags``; everything that varies per reading is a field. deploy/center/README.md documents it.

=============== ============================================ ====================================================
measurement     tags                                         fields
=============== ============================================ ====================================================
sample          site gateway device point [unit role extra]  value (float; bools as 1.0/0.0) or value_str,
                                                             quality, reason, source_ts (UNIX s);
                                                             time = acquisition ts
kpi             site gateway scope name window [unit] state  value, coverage, quality, window_start and
                                                             window_end (UNIX s), grade, grade_level (0 benchmark,
                                                             1 between, 2 below baseline), distance, reference,
                                                             final (bool: false = provisional running value),
                                                             grade_indicative (bool), reason,
                                                             detail_<key>; time = window_start (so the open
                                                             window is not in the future, a day is dated that day);
                                                             tag state = final | provisional: two series, so a
                                                             provisional value never replaces a final one
gateway_status  site gateway                                 state, online (0/1), boot, version, config_hash,
                                                             health_<key>[_<sub>...] (the agent's own figures:
                                                             spool, sink, loop lag...); time = status ts
device_health   site gateway device                          one per entry of health["devices"]: its figures
                                                             (errors_<kind> flattened); time = status ts
gap             site gateway                                 boot, first_seq, last_seq, missing;
                                                             time = ts of the message after the gap
=============== ============================================ ====================================================
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterator
from typing import Any

from agent.center.lineproto import FieldValue, Precision, fields_text, format_field, line, series, timestamp
from agent.wire import KpiMessage, SamplesMessage, StatusMessage

SAMPLE = "sample"
KPI = "kpi"
GATEWAY_STATUS = "gateway_status"
DEVICE_HEALTH = "device_health"
GAP = "gap"

GRADE_LEVEL = {"benchmark": 0, "between": 1, "below_baseline": 2}


_SERIES_CACHE_MAX = 200_000
_sample_series: dict[tuple[tuple[tuple[str, str], ...], str, str, str], str] = {}


def sample_lines(msg: SamplesMessage, precision: Precision, extra_tags: Collection[str] = ()) -> Iterator[str]:
    """Hot path: the escaped series part is cached per (site, gateway, device, point, unit, role, extra tags)."""
    base = {"site": msg.site, "gateway": msg.gateway, "device": msg.device}
    for key in extra_tags:
        if key in msg.tags and key not in base:
            base[key] = msg.tags[key]
    prefix = tuple(base.items())
    for s in msg.samples:
        cache_key = (prefix, s.point, s.unit, s.role or "")
        head = _sample_series.get(cache_key)
        if head is None:
            if len(_sample_series) >= _SERIES_CACHE_MAX:
                _sample_series.clear()
            head = series(SAMPLE, dict(base, point=s.point, unit=s.unit, role=s.role or ""))
            _sample_series[cache_key] = head
        v = s.value
        if isinstance(v, float) and math.isfinite(v):
            value = f"value={v!r},"  # the common case, without the general field formatter
        elif isinstance(v, str):
            value = f"value_str={format_field(v)},"
        elif isinstance(v, bool | int):
            value = f"value={float(v)!r},"
        else:
            value = ""
        extra_fields: dict[str, FieldValue | None] = {}
        if s.reason:
            extra_fields["reason"] = s.reason
        if s.source_ts is not None:
            extra_fields["source_ts"] = s.source_ts
        more = "," + fields_text(extra_fields) if extra_fields else ""
        yield f'{head} {value}quality="{s.quality.value}"{more} {timestamp(s.ts, precision)}'


def kpi_lines(msg: KpiMessage, precision: Precision) -> Iterator[str]:
    """A KPI's final and provisional values of one window are two series (tag ``state``): whatever order they
    arrive in (a live-first replay sends the fresh final value before the backlog's provisional ones) and whichever
    ingestor of the group writes them, the final value is never overwritten by a provisional one."""
    for k in msg.kpis:
        tags = {
            "site": msg.site,
            "gateway": msg.gateway,
            "scope": k.scope,
            "name": k.name,
            "window": k.window,
            "unit": k.unit,
            "state": "final" if k.final else "provisional",
        }
        fields: dict[str, FieldValue | None] = {
            "value": k.value,
            "coverage": float(k.coverage),
            "quality": k.quality.value,
            "window_start": float(k.window_start),
            "window_end": float(k.window_end),
            "final": k.final,  # false: the running value of an open window, provisional
        }
        if k.grade is not None:
            fields["grade"] = k.grade.value
            fields["grade_level"] = GRADE_LEVEL[k.grade.value]
            fields["distance"] = k.distance
            fields["grade_indicative"] = k.grade_indicative  # true: a window shorter than the grading periods
        if k.reason:
            fields["reason"] = k.reason
        if k.reference:
            fields["reference"] = k.reference
        for key, value in k.detail.items():
            fields[f"detail_{key}"] = float(value)
        text = line(KPI, tags, fields, timestamp(k.window_start, precision))
        if text is not None:
            yield text


def status_lines(msg: StatusMessage, precision: Precision, received_ts: float) -> Iterator[str]:
    """A status message without a ts (a bare Last Will) is stamped with the time it was received."""
    ts = timestamp(msg.ts or received_ts, precision)
    tags = {"site": msg.site, "gateway": msg.gateway}
    fields: dict[str, FieldValue | None] = {
        "state": msg.state,
        "online": 1 if msg.state == "online" else 0,
        "boot": msg.boot or None,
        "version": msg.version or None,
        "config_hash": msg.config_hash or None,
    }
    for key, value in msg.health.items():
        if key == "devices" and isinstance(value, dict):
            yield from _device_health(msg, value, ts)
        else:
            _flatten(fields, f"health_{key}", value)
    text = line(GATEWAY_STATUS, tags, fields, ts)
    if text is not None:
        yield text


def _device_health(msg: StatusMessage, devices: dict[str, Any], ts: int) -> Iterator[str]:
    """Only ``health["devices"]`` holds devices (``{name: {figure: value}}``); the agent's own figures (spool,
    sink, loop lag) stay with the gateway, so a device table never lists them."""
    for name, figures in devices.items():
        if not isinstance(figures, dict):
            continue
        fields: dict[str, FieldValue | None] = {}
        for k, v in figures.items():
            if k != "device":
                _flatten(fields, k, v)
        text = line(DEVICE_HEALTH, {"site": msg.site, "gateway": msg.gateway, "device": str(name)}, fields, ts)
        if text is not None:
            yield text


def _flatten(fields: dict[str, FieldValue | None], key: str, value: Any) -> None:
    """``{"spool": {"depth": 3}}`` -> ``spool_depth=3.0``; nested mappings join their keys with ``_``."""
    if isinstance(value, dict):
        for sub, inner in value.items():
            _flatten(fields, f"{key}_{sub}", inner)
    else:
        fields[key] = _scalar(value)


def gap_line(site: str, gateway: str, boot: str, first_seq: int, last_seq: int, ts: float, precision: Precision) -> str:
    text = line(
        GAP,
        {"site": site, "gateway": gateway},
        {"boot": boot, "first_seq": first_seq, "last_seq": last_seq, "missing": last_seq - first_seq + 1},
        timestamp(ts, precision),
    )
    assert text is not None  # four fields are always present
    return text


def _scalar(value: Any) -> FieldValue | None:
    """Health figures: numbers as floats (one field type forever), strings as strings, the rest left out."""
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        return value
    return None
