"""The KPI engine's state as a snapshot: what a restart needs to go on where the engine stopped.

Pure: ``capture`` turns an engine into JSON-ready data, ``encode``/``decode`` turn that into bytes and back, and
``restore`` takes it over into a freshly built engine. The runtime writes the bytes atomically to the state
directory (agent.runtime.kpistate).

What is kept: per input (channel) the readings the next delta needs (last counter reading, an undecided reset
chain, the last rate) and its open and recently closed window periods, with the calendar months its month, year
and rolling-12-month sums are built from (at most ``LEDGER_MONTHS`` per input); per KPI and window the start of the
next period to report; demand maxima; fitted baselines and their CUSUM; clock steps. All times are wall-clock.

Compatibility: a snapshot has a ``version`` and the hash of the KPI section it was taken with. The same hash:
everything is restored. Another hash: inputs are matched by their key (device, point or role, kind, scale,
maximum rate, counter width), KPIs by scope and name, demand and baselines by their declaration; what does not
match starts afresh. Another time zone or other shift times change every period: only counter readings are kept.

Restart semantics. A counter delta that spans the downtime is real energy: it is counted (within
``max_rate_per_h`` over the downtime, like any delta) and spread uniformly over the downtime, which counts as
covered only up to ``counter_bridge_max_s`` (as for any outage), so a long downtime shows as lost coverage while the
energy total stays exact. Rates and levels are not bridged over a gap longer than ``max_gap_s``. Restored inputs
close no period until their first reading after the restart (or ``settle_s``), so the downtime's periods receive
that delta before they become final. A snapshot taken later than ``now`` (the clock went back over the restart)
keeps the windows but not the readings.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import orjson

from agent.config.kpi import KpiSectionConfig
from agent.kpi.baseline import BaselineKpi, Model
from agent.kpi.channels import Channel
from agent.kpi.clock import ClockWatch
from agent.kpi.custom import CustomKpi
from agent.kpi.demand import DemandKpi
from agent.kpi.indicators import Indicator, TermKpi

FORMAT = "energy-agent-kpi-state"
VERSION = 1
CLOCK_BACK_TOLERANCE_S = 60.0


class KpiEngine(Protocol):
    """What a snapshot reads of the engine and a restore writes into it (agent.kpi.engine.KpiEngine, whose own
    parts these are: this module does not import the engine, the engine calls it)."""

    config: KpiSectionConfig
    tz: str
    _channels: dict[str, Channel]
    _reported: dict[tuple[int, str], float]
    _watch: ClockWatch | None
    _indicators: list[Indicator]
    _customs: list[CustomKpi]

    def hold(self, channels: Mapping[str, float], until: float) -> None: ...

    def coefficients(self) -> dict[str, object]: ...

    def carry_coefficients(self, saved: Mapping[str, Any], now: float) -> list[str]: ...


class StateError(Exception):
    """The data is not a KPI state snapshot this agent can read (corrupt, another format or version)."""


def encode(snapshot: dict[str, object]) -> bytes:
    return orjson.dumps(snapshot)


def decode(payload: bytes) -> object:
    try:
        return orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise StateError(f"not JSON: {exc}") from None


def config_hash(engine: KpiEngine) -> str:
    text = engine.config.model_dump_json() + "|" + engine.tz
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def frame_hash(engine: KpiEngine) -> str:
    """What every period depends on: the zone and the shift times."""
    text = f"{engine.tz}|{sorted(engine.config.shifts)}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def capture(engine: KpiEngine, now: float) -> dict[str, object]:
    indicators = _indicators(engine)
    reported: dict[str, dict[str, float]] = {}
    for (idx, window), start in engine._reported.items():
        reported.setdefault(indicators[idx][0], {})[window] = start
    kept: dict[str, object] = {}
    for ident, ind in indicators:
        fp = _fingerprint(ind)
        if fp is not None:
            kept[ident] = {"fingerprint": fp, "state": _dump_indicator(ind)}
    return {
        "format": FORMAT,
        "version": VERSION,
        "saved_at": now,
        "config": config_hash(engine),
        "frame": frame_hash(engine),
        "channels": {key: ch.dump() for key, ch in engine._channels.items()},
        "reported": reported,
        "indicators": kept,
        "clock_steps": engine._watch.dump() if engine._watch is not None else [],
        "coefficients": engine.coefficients(),
    }


def restore(engine: KpiEngine, data: object, now: float) -> str:
    """Take ``data`` over into ``engine`` (freshly built); one line for the log. Raises StateError; the engine may
    then hold part of the snapshot: build a fresh one."""
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise StateError("not a KPI state snapshot")
    if data.get("version") != VERSION:
        raise StateError(f"snapshot version {data.get('version')!r}, this agent reads version {VERSION}")
    try:
        return _restore(engine, data, now)
    except (KeyError, IndexError, TypeError, ValueError, AttributeError, OverflowError) as exc:
        raise StateError(f"malformed snapshot: {type(exc).__name__}: {exc}") from None


def _restore(engine: KpiEngine, data: dict[str, Any], now: float) -> str:
    same_config = data["config"] == config_hash(engine)
    same_frame = data["frame"] == frame_hash(engine)
    saved_at = float(data["saved_at"])
    clock_back = saved_at > now + CLOCK_BACK_TOLERANCE_S
    channels: dict[str, Any] = data["channels"]
    held: dict[str, float] = {}
    for key, ch in engine._channels.items():
        saved = channels.get(key)
        if saved is None:
            continue
        ch.load(saved, windows=same_frame)
        if clock_back:
            ch.tracker.forget_readings()
        last = ch.tracker.last_ts
        if last is not None:
            held[key] = last
    n_reported = 0
    kept: dict[str, Any] = data["indicators"]
    reported: dict[str, Any] = data["reported"]
    for idx, (ident, ind) in enumerate(_indicators(engine)):
        marks = reported.get(ident, {}) if same_frame else {}
        for spec in ind.windows:
            if spec.name in marks:
                engine._reported[(idx, spec.name)] = float(marks[spec.name])
                n_reported += 1
        saved = kept.get(ident)
        if same_frame and saved is not None and saved["fingerprint"] == _fingerprint(ind):
            _load_indicator(ind, saved["state"])
    if engine._watch is not None:
        engine._watch.load(data["clock_steps"])
    engine.hold(held, now + engine.config.settle_s)
    when = datetime.fromtimestamp(saved_at, ZoneInfo(engine.tz)).isoformat(timespec="seconds")
    restored = sum(1 for k in engine._channels if k in channels)
    line = f"kpi: state of {when} restored: {restored} of {len(engine._channels)} inputs, {n_reported} windows"
    if not same_config:
        dropped = len(set(channels) - set(engine._channels))
        line += f"; the KPI config changed since: {dropped} saved inputs no longer used were discarded"
        if not same_frame:
            line += ", and the time zone or shifts changed: only counter readings were kept"
    if clock_back:
        line += f"; the clock is {saved_at - now:.0f} s behind the snapshot: counter readings start afresh"
    carried = data.get("coefficients")
    if isinstance(carried, dict) and same_frame:
        for note in engine.carry_coefficients(carried, now):
            line += f"; {note}"
    return line


def _indicators(engine: KpiEngine) -> list[tuple[str, Indicator]]:
    """Every KPI of the engine with an identity that survives a restart (and most config edits)."""
    out: list[tuple[str, Indicator]] = []
    seen: dict[str, int] = {}
    for ind in [*engine._indicators, *engine._customs]:
        if isinstance(ind, TermKpi):
            name = ind.name
        elif isinstance(ind, CustomKpi):
            name = ind.cfg.name
        else:
            name = type(ind).__name__
        ident = f"{ind.scope}.{name}"
        n = seen[ident] = seen.get(ident, 0) + 1
        out.append((ident if n == 1 else f"{ident}#{n}", ind))
    return out


def _fingerprint(ind: Indicator) -> str | None:
    """What an indicator's own state depends on; None for indicators without state of their own."""
    if isinstance(ind, DemandKpi):
        text = ind.cfg.model_dump_json()
    elif isinstance(ind, BaselineKpi):
        keys = [ch.key for t in (ind.energy, *ind.variables) for ch in t.channels()]
        text = ind.cfg.model_dump_json() + repr(keys)
    else:
        return None
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _dump_indicator(ind: Indicator) -> dict[str, object]:
    if isinstance(ind, DemandKpi):
        return {
            "fixed": ind.fixed.done_until,
            "sliding": ind.sliding.done_until,
            "recent": list(ind._recent),
            "max": [[kind, window, start, kw, at] for (kind, window, start), (kw, at) in ind._max.items()],
            "skipped": ind.skipped,
        }
    assert isinstance(ind, BaselineKpi)
    m = ind.model
    return {
        "model": None if m is None else [list(m.coefficients), m.r2, m.n],
        "cusum": ind.cusum,
        "train_x": ind._train_x,
        "train_y": ind._train_y,
    }


def _load_indicator(ind: Indicator, data: dict[str, Any]) -> None:
    if isinstance(ind, DemandKpi):
        ind.fixed.done_until = _finite(data["fixed"])
        ind.sliding.done_until = _finite(data["sliding"])
        ind._recent.clear()
        ind._recent.extend(None if x is None else _finite(x) for x in data["recent"])
        ind._max = {(str(k), str(w), _finite(s)): (_finite(kw), _finite(at)) for k, w, s, kw, at in data["max"]}
        ind.skipped = int(data["skipped"])
    elif isinstance(ind, BaselineKpi):
        m = data["model"]
        if m is not None:
            coef, r2, n = m
            ind.model = Model(tuple(_finite(c) for c in coef), None if r2 is None else _finite(r2), int(n))
        ind.cusum = _finite(data["cusum"])
        ind._train_x = [[_finite(v) for v in row] for row in data["train_x"]]
        ind._train_y = [_finite(v) for v in data["train_y"]]


def _finite(x: object) -> float:
    v = float(x)  # type: ignore[arg-type]  # reason: float() raises on what it cannot convert
    if not math.isfinite(v):
        raise ValueError(f"not a finite number: {x!r}")
    return v
