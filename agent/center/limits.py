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
the dead letter, with the reason) so nothing is lost. Known series are remembered in a file (:class:`SeriesFile`,
``limits.series_file``; by default ``series-quota.txt`` beside the dead-letter file): one line per series, a
stable 64-bit digest per gateway, appended and fsynced before the message that created it is acknowledged and read
back at start, so a restart does not give a gateway a fresh quota (the field report: 100,000 series in 5
restarts, after which InfluxDB refused every other gateway's new points). Without a file the quota is kept in
memory only and the ingestor says so at start.

Not thread-safe; used from the ingestor's event loop only. The clock is injected (UNIX seconds).
"""

from __future__ import annotations

import datetime
import hashlib
import os
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from pathlib import Path

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
    seen: set[int] = field(default_factory=set)  # hash() of the series met in this process (the fast path)
    stored: set[int] = field(default_factory=set)  # stable digests of every series of the gateway (the quota)


class SeriesFile:
    """The series quota on disk: lines ``site gateway digest`` (hex), appended; a torn last line is skipped.

    Blocking and small: read once at start, appended only when a gateway creates new series."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._pending: list[str] = []
        self._torn = False  # the file ends inside a line: the next append starts a new one

    def load(self) -> dict[tuple[str, str], set[int]]:
        out: dict[tuple[str, str], set[int]] = {}
        try:
            text = self.path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return out
        self._torn = bool(text) and not text.endswith("\n")
        for line in text.splitlines():
            parts = line.split(" ")
            if len(parts) != 3 or len(parts[2]) != 16:
                continue
            try:
                digest = int(parts[2], 16)
            except ValueError:
                continue
            out.setdefault((parts[0], parts[1]), set()).add(digest)
        return out

    def add(self, site: str, gateway: str, digest: int) -> None:
        self._pending.append(f"{site} {gateway} {digest:016x}\n")

    def sync(self) -> None:
        """Append and fsync what was added since the last sync (raises OSError)."""
        if not self._pending:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as f:
            f.write("\n" * self._torn + "".join(self._pending))
            f.flush()
            os.fsync(f.fileno())
        self._pending.clear()
        self._torn = False


def _digest(key: tuple[Hashable, ...]) -> int:
    """A digest of a series key that is the same in every process (``hash()`` of a str is not)."""
    return int.from_bytes(hashlib.blake2b(repr(key).encode(), digest_size=8).digest(), "big")


class Admission:
    def __init__(self, limits: LimitsConfig, clock: Callable[[], float], store: SeriesFile | None = None) -> None:
        self.limits = limits
        self._clock = clock
        self._store = store
        self._gateways: dict[tuple[str, str], _Gateway] = {}
        if store is not None:
            for key, digests in store.load().items():
                self._gateways[key] = _Gateway(stored=digests)

    def save(self) -> None:
        """Persist the series created since the last save (before their message is acknowledged)."""
        if self._store is not None:
            self._store.sync()

    def believable(self, ts: float) -> bool:
        """``ts`` is inside the clock-skew window around the centre's clock now."""
        now = self._clock()
        return now - self.limits.max_past_s <= ts <= now + self.limits.max_future_s

    def series_count(self, site: str, gateway: str) -> int:
        gw = self._gateways.get((site, gateway))
        return len(gw.stored) if gw is not None else 0

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
            if not self._known(msg, gw, ("sample", msg.device, s.point, s.unit, s.role, tags)):
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
            if not self._known(msg, gw, ("kpi", k.scope, k.name, k.window, k.unit)):
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
            new = [name for name in devices if not self._known(msg, gw, ("health", name))]
            if new:
                return Verdict(None, (self._series_reason(len(new), "device health", new[:3]),), 0, 1)
        return Verdict(msg)

    def _known(self, msg: Message, gw: _Gateway, key: tuple[Hashable, ...]) -> bool:
        """True when the series is known or may still be created (then it is known from now on, also on disk)."""
        fast = hash(key)
        if fast in gw.seen:
            return True
        digest = _digest(key)
        if digest in gw.stored:
            gw.seen.add(fast)
            return True
        if len(gw.stored) >= self.limits.max_series_per_gateway:
            return False
        gw.stored.add(digest)
        gw.seen.add(fast)
        if self._store is not None:
            self._store.add(msg.site, msg.gateway, digest)
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
