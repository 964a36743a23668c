"""What one gateway may put into InfluxDB: the centre's own limits, applied to each decoded message.

The wire schema already refuses what cannot be stored (non-finite numbers, 64-bit overflow, names that are not
names). :class:`Admission` applies the limits an operator sets in ``center.yaml`` (``limits``), which protect the
database and the other gateways from one gateway's bug, bad clock or hostility:

- ``max_items_per_message``: a samples message with more samples (kpi: more KPIs; status: more devices in its
  health) is refused whole.
- clock skew: a sample, KPI or status stamped more than ``max_past_s`` before or ``max_future_s`` after the centre's
  clock is refused (an agent whose clock says 1970 or 2099 would otherwise write silently into the wrong place).
  A samples or kpi message whose own ``ts`` is outside the window is refused whole. A KPI is judged by the time it
  was computed (its ``ts``), never by the start of its window: a year or rolling-12-month value published today
  starts up to a year back and is as current as a 15-minute one. Its window may not start after the centre's
  clock (plus ``max_future_s``) nor more than ``MAX_WINDOW_S`` (13 months) before its ``ts``.
- ``max_series_per_gateway``: every gateway may create that many series (distinct tag sets); samples and KPIs of
  new series beyond it are refused, the series the gateway already has keep flowing. InfluxDB's own limits
  (``max-values-per-tag``, ``max-series-per-database``) are per database: without this, one gateway inventing
  point names would lock every other gateway out of new series.

Refused items are returned with the reason; the ingestor writes the rest and quarantines the message (whole, in
the dead letter, with the reason) so nothing is lost. Known series are remembered in memory (a hash per series):
after a restart each gateway's series are learnt again from its traffic.

Not thread-safe; used from the ingestor's event loop only. The clock is injected (UNIX seconds).
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from dataclasses import dataclass, field

from agent.center.config import LimitsConfig
from agent.wire import KpiMessage, SamplesMessage, StatusMessage

Message = SamplesMessage | KpiMessage | StatusMessage
MAX_WINDOW_S = 397 * 86400.0  # the longest window (12 months, 366 days) and a month of reporting backlog


@dataclass(frozen=True, slots=True)
class Verdict:
    """``message``: what may be written (None: nothing); ``refused``: why the rest was not, one reason per kind."""

    message: Message | None
    refused: tuple[str, ...] = ()
    skewed: int = 0  # items refused for their timestamp
    over_limit: int = 0  # items refused by a size or series limit


@dataclass(slots=True)
class _Gateway:
    series: set[int] = field(default_factory=set)


class Admission:
    def __init__(self, limits: LimitsConfig, clock: Callable[[], float]) -> None:
        self.limits = limits
        self._clock = clock
        self._gateways: dict[tuple[str, str], _Gateway] = {}

    def believable(self, ts: float) -> bool:
        """``ts`` is inside the clock-skew window around the centre's clock now."""
        now = self._clock()
        return now - self.limits.max_past_s <= ts <= now + self.limits.max_future_s

    def series_count(self, site: str, gateway: str) -> int:
        gw = self._gateways.get((site, gateway))
        return len(gw.series) if gw is not None else 0

    def check(self, msg: Message) -> Verdict:
        now = self._clock()
        lo, hi = now - self.limits.max_past_s, now + self.limits.max_future_s
        if isinstance(msg, StatusMessage):
            return self._status(msg, lo, hi)
        items = len(msg.samples) if isinstance(msg, SamplesMessage) else len(msg.kpis)
        if items > self.limits.max_items_per_message:
            what = "samples" if isinstance(msg, SamplesMessage) else "KPIs"
            reason = f"{items} {what}, more than limits.max_items_per_message ({self.limits.max_items_per_message})"
            return Verdict(None, (reason,), 0, items)
        if not lo <= msg.ts <= hi:
            return Verdict(None, (_skew("message ts", msg.ts, now),), items, 0)
        if isinstance(msg, SamplesMessage):
            return self._samples(msg, now, lo, hi)
        return self._kpis(msg, now, lo, hi)

    def _samples(self, msg: SamplesMessage, now: float, lo: float, hi: float) -> Verdict:
        gw = self._gateways.setdefault((msg.site, msg.gateway), _Gateway())
        tags = tuple(sorted(msg.tags.items()))
        kept = []
        skewed: list[float] = []
        new_refused: list[str] = []
        for s in msg.samples:
            if not lo <= s.ts <= hi:
                skewed.append(s.ts)
                continue
            if not self._known(gw, hash(("sample", msg.device, s.point, s.unit, s.role, tags))):
                new_refused.append(s.point)
                continue
            kept.append(s)
        reasons = []
        if skewed:
            reasons.append(f"{len(skewed)} sample(s) refused: {_skew('ts', skewed[0], now)}")
        if new_refused:
            reasons.append(self._series_reason(len(new_refused), "sample", new_refused[:3]))
        if not reasons:
            return Verdict(msg)
        out = msg.model_copy(update={"samples": kept}) if kept else None
        return Verdict(out, tuple(reasons), len(skewed), len(new_refused))

    def _kpis(self, msg: KpiMessage, now: float, lo: float, hi: float) -> Verdict:
        gw = self._gateways.setdefault((msg.site, msg.gateway), _Gateway())
        kept = []
        skewed: list[float] = []
        new_refused: list[str] = []
        odd_windows: list[str] = []
        for k in msg.kpis:
            if not lo <= k.ts <= hi:
                skewed.append(k.ts)
                continue
            if not k.ts - MAX_WINDOW_S <= k.window_start <= hi:
                odd_windows.append(f"{k.scope}/{k.name}/{k.window}")
                continue
            if not self._known(gw, hash(("kpi", k.scope, k.name, k.window, k.unit))):
                new_refused.append(f"{k.scope}/{k.name}/{k.window}")
                continue
            kept.append(k)
        reasons = []
        if skewed:
            reasons.append(f"{len(skewed)} KPI(s) refused: {_skew('ts', skewed[0], now)}")
        if odd_windows:
            names = ", ".join(odd_windows[:3]) + (", ..." if len(odd_windows) > 3 else "")
            reasons.append(
                f"{len(odd_windows)} KPI(s) refused ({names}): window_start after the centre's clock or more than "
                "13 months before the KPI's ts"
            )
        if new_refused:
            reasons.append(self._series_reason(len(new_refused), "KPI", new_refused[:3]))
        if not reasons:
            return Verdict(msg)
        out = msg.model_copy(update={"kpis": kept}) if kept else None
        return Verdict(out, tuple(reasons), len(skewed) + len(odd_windows), len(new_refused))

    def _status(self, msg: StatusMessage, lo: float, hi: float) -> Verdict:
        now = self._clock()
        if msg.ts and not lo <= msg.ts <= hi:
            return Verdict(None, (_skew("status ts", msg.ts, now),), 1, 0)
        devices = msg.health.get("devices")
        count = len(devices) if isinstance(devices, dict) else 0
        if count > self.limits.max_items_per_message:
            reason = f"{count} devices in health, more than limits.max_items_per_message ({self.limits.max_items_per_message})"
            return Verdict(None, (reason,), 0, 1)
        if isinstance(devices, dict):
            gw = self._gateways.setdefault((msg.site, msg.gateway), _Gateway())
            new = [name for name in devices if not self._known(gw, hash(("health", name)))]
            if new:
                return Verdict(None, (self._series_reason(len(new), "device health", new[:3]),), 0, 1)
        return Verdict(msg)

    def _known(self, gw: _Gateway, key: int) -> bool:
        """True when the series is known or may still be created (then it is known from now on)."""
        if key in gw.series:
            return True
        if len(gw.series) >= self.limits.max_series_per_gateway:
            return False
        gw.series.add(key)
        return True

    def _series_reason(self, count: int, what: str, examples: list[str]) -> str:
        names = ", ".join(examples) + (", ..." if count > len(examples) else "")
        return (
            f"{count} {what}(s) of new series refused ({names}): the gateway already has "
            f"limits.max_series_per_gateway ({self.limits.max_series_per_gateway}) series"
        )


def _skew(what: str, ts: float, now: float) -> str:
    when = datetime.datetime.fromtimestamp(ts, datetime.UTC).strftime("%Y-%m-%d %H:%M:%S")
    ahead = ts - now
    how = f"{_span(ahead)} ahead of" if ahead > 0 else f"{_span(-ahead)} behind"
    return f"{what} {when} UTC is {how} the centre's clock (limits.max_past_s / max_future_s)"


def _span(seconds: float) -> str:
    for unit, size in (("years", 365.25 * 86400), ("days", 86400.0), ("h", 3600.0), ("min", 60.0)):
        if seconds >= 2 * size:
            return f"{seconds / size:.0f} {unit}"
    return f"{seconds:.0f} s"
