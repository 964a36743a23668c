# size: building, ingest, evaluate and the restart and history hooks share the engine's tables (channels, routes)
"""KpiEngine: good samples in, KPI values per window out. Pure and synchronous; time comes from the samples and
from the ``now`` given to ``evaluate`` (the injected clock only sets where the first windows start).

Lifecycle: build once from the site's ``kpi`` section (``KpiEngine.from_site``), call ``ingest`` for every poll
result (O(1) per sample: a dict lookup and one tracker update per channel that reads the point) and ``evaluate``
every ``kpi.publish_interval_s``. Not thread-safe: one task owns it.

``evaluate(now)`` returns, for every KPI and window, each period that became final since the last call (once,
``final`` True) and, with ``emit_running``, the value of the open period so far (``final`` False: provisional, its
coverage of the whole window so far). Grades against the national levels (annual figures) are issued on the line's
``grade_windows`` (month, year, rolling 12 months by default; the graded KPI is computed in them too); in the other
windows a grade is marked ``grade_indicative`` or left out (``shorter_grades``).

``snapshot(now)`` and ``restore(data, now)`` (agent.kpi.state) carry the engine's state over a restart; with a
``monotonic`` clock, wall-clock steps are detected and handled (agent.kpi.clock).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from agent.config.kpi import KpiSectionConfig, PointRefConfig
from agent.kpi.baseline import BaselineKpi
from agent.kpi.benchmarks import LevelTable, site_levels
from agent.kpi.channels import Channel, DerivedChannel, TimeFrame
from agent.kpi.clock import ClockWatch, ungraded
from agent.kpi.coefficients import carry
from agent.kpi.counters import CounterTracker, LevelIntegrator, RateIntegrator
from agent.kpi.custom import CustomKpi, in_dependency_order
from agent.kpi.demand import DemandKpi
from agent.kpi.devices import DeviceInfo as DeviceInfo
from agent.kpi.devices import counter_modulus
from agent.kpi.electrical import balance_kpis, power_factor_kpi, renewable_kpi
from agent.kpi.equipment import equipment_kpis
from agent.kpi.history import HistoryError, MonthRow, seed_line
from agent.kpi.indicators import Context, Indicator, TermKpi, make_context
from agent.kpi.lines import line_kpis
from agent.kpi.park import park_kpis
from agent.kpi.state import capture, restore
from agent.kpi.windows import WindowedSum, WindowSpec, parse_hhmm
from agent.model import GoodReads, KpiValue, Quality, ReadLayout, Role, Sample

if TYPE_CHECKING:
    from agent.config.profile import ProfileConfig
    from agent.config.site import SiteConfig

MAX_BACKLOG_S = 40 * 86400.0  # final periods older than this are not emitted (covers a month window)
# A backlog of final periods (after a restart's downtime, or a clock jump) drains this many periods per KPI and
# window per evaluation, so one KPI message stays within a few times its usual size (the centre refuses huge ones).
MAX_FINALS_PER_EVALUATE = 4
Feed = Callable[[float, float], None]


class KpiEngine:
    def __init__(
        self,
        config: KpiSectionConfig,
        devices: Mapping[str, DeviceInfo],
        tz: str,
        clock: Callable[[], float],
        levels: LevelTable | None = None,
        monotonic: Callable[[], float] | None = None,
    ) -> None:
        """``monotonic`` (time.monotonic in the agent) turns on clock-step handling; without it sample times are
        trusted as they are (simulations and tests drive the engine with sample times only)."""
        self.config = config
        self.devices = devices
        self.tz = tz
        self._t0 = clock()
        self._frame = TimeFrame()
        self._watch = None if monotonic is None else ClockWatch(self._frame, clock, monotonic, tz)
        self._grading: dict[int, tuple[frozenset[str], bool]] = {}  # id(TermKpi) -> (grade windows, indicative)
        self._held: dict[str, float] = {}  # restored channel -> its last reading: not finalized until a new one
        self._held_until = float("-inf")
        self._shifts = tuple(sorted(parse_hhmm(s) for s in config.shifts))
        self._channels: dict[str, Channel] = {}
        self._selectors: dict[str, list[tuple[str, str, Feed, Channel]]] = {}  # device -> (sel kind, sel, feed, ch)
        self._routes: dict[tuple[str, str], list[Feed]] = {}
        # per layout of a device's good polls: how many of its values are strings, and (value index, request
        # index, feeds) for each point that feeds something (ingest_good); keyed by identity, see ReadLayout
        self._vectors: dict[ReadLayout, tuple[int, list[tuple[int, int, list[Feed]]]]] = {}
        self._indicators: list[Indicator] = []
        self._customs: list[CustomKpi] = []
        self._reported: dict[tuple[int, str], float] = {}
        self._store: dict[tuple[str, str, float, bool], KpiValue] = {}
        self._by_name: dict[str, Indicator] = {}
        self.ignored = 0  # samples not good or not numeric
        table = site_levels(config.levels, levels)
        self._build(table)

    @classmethod
    def from_site(
        cls,
        site: SiteConfig,
        profiles: Mapping[str, ProfileConfig],
        clock: Callable[[], float],
        monotonic: Callable[[], float] | None = None,
    ) -> KpiEngine:
        """Build from a loaded site and its profiles (by profile name)."""
        if site.kpi is None:
            raise ValueError("the site file has no kpi section")
        devices = {
            d.name: DeviceInfo.from_config(d, profiles.get(str(getattr(d, "profile", "")))) for d in site.devices
        }
        return cls(site.kpi, devices, site.timezone, clock, monotonic=monotonic)

    # --- building -----------------------------------------------------------------------------------------------

    def _build(self, table: LevelTable) -> None:
        cfg = self.config
        renewable = frozenset(n for n, d in self.devices.items() if d.renewable)
        windows = tuple(WindowSpec(n, self.tz, self._shifts) for n in cfg.windows)
        ctx = make_context(cfg, self, windows, self.tz, self._shifts, renewable, table)
        self._ctx = ctx
        for line in cfg.lines:
            kpis = line_kpis(line, ctx)
            self._grade_on(line.grade_windows, line.shorter_grades == "indicative", kpis, ctx)
            self._indicators.extend(kpis)
            if line.baseline is not None:
                by = {k.name: k for k in kpis}
                energy = by.get(line.baseline.energy)
                if energy is not None:
                    prod = by["production"].terms["p"]
                    self._indicators.append(BaselineKpi.build(line, line.baseline, ctx, energy.terms["e"], prod))
        for eq in cfg.equipment:
            self._indicators.extend(equipment_kpis(eq, ctx))
        for d in cfg.demand:
            self._indicators.append(DemandKpi.build(d, ctx, self._t0))
        for pf in cfg.power_factor:
            self._indicators.append(power_factor_kpi(pf, ctx))
        default_ren = [
            PointRefConfig.model_validate({"device": n, "role": Role.ENERGY_IMPORT_KWH}) for n in sorted(renewable)
        ]
        for r in cfg.renewable:
            self._indicators.append(renewable_kpi(r, ctx, default_ren))
        for b in cfg.balance:
            self._indicators.extend(balance_kpis(b, ctx))
        if cfg.park is not None:  # after the lines: the park sums their terms
            self._indicators.extend(park_kpis(cfg.park, ctx))
        for ind in self._indicators:
            for name in _names(ind):
                self._by_name[f"{ind.scope}.{name}"] = ind
        for c in in_dependency_order(cfg.custom):
            ck = CustomKpi.build(c, ctx, self._role_of, self._lookup, self._kpi_final_until)
            self._customs.append(ck)
            self._by_name[f"{c.scope}.{c.name}"] = ck

    def _grade_on(self, names: Sequence[str], indicative: bool, kpis: Sequence[Indicator], ctx: Context) -> None:
        """The graded KPI of a line is also computed in its grading windows; its grades elsewhere are indicative."""
        specs = ctx.specs(names) if names else ()
        for k in kpis:
            if not isinstance(k, TermKpi) or k.level is None:
                continue
            have = {w.name for w in k.windows}
            extra = tuple(w for w in specs if w.name not in have)
            k.windows = (*k.windows, *extra)
            for ch in (c for t in k.terms.values() for c in t.channels()):
                for w in extra:
                    ch.use_window(w)
            self._grading[id(k)] = (frozenset(names), indicative)

    def channel(self, ref: PointRefConfig, windows: Sequence[WindowSpec]) -> Channel:
        kind = ref.resolved_kind
        sel_kind, sel = ("point", ref.point) if ref.point is not None else ("role", str(ref.role))
        key = f"{ref.device}|{sel_kind}:{sel}|{kind}|{ref.scale}|{ref.max_rate_per_h}|{ref.counter_bits}"
        ch = self._channels.get(key)
        if ch is None:
            c = self.config
            tracker: CounterTracker | RateIntegrator | LevelIntegrator
            if kind == "counter":  # the modulus is set when the channel binds to a point (_route)
                tracker = CounterTracker(None, ref.max_rate_per_h, c.counter_bridge_max_s)
            elif kind == "rate":
                tracker = RateIntegrator(c.max_gap_s)
            else:
                tracker = LevelIntegrator(c.max_gap_s)
            ch = Channel(
                key, ref.device, kind, tracker, ref.scale, c.settle_s, counter_bits=ref.counter_bits, frame=self._frame
            )
            self._channels[key] = ch
            self._selectors.setdefault(ref.device, []).append((sel_kind, sel, ch.feed, ch))
        for w in windows:
            ch.use_window(w)
        return ch

    def derived(
        self,
        key: str,
        inputs: Sequence[PointRefConfig],
        fn: Callable[[Sequence[float]], float | None],
        windows: Sequence[WindowSpec],
    ) -> Channel:
        c = self.config
        ch = DerivedChannel(
            key,
            inputs[0].device,
            "rate",
            RateIntegrator(c.max_gap_s),
            1.0,
            c.settle_s,
            inputs=tuple(str(i.point or i.role) for i in inputs),
            fn=fn,
            max_age_s=c.max_gap_s,
            frame=self._frame,
        )
        self._channels[key] = ch
        latest: list[tuple[float, float] | None] = [None] * len(inputs)

        def feeder(i: int) -> Feed:
            def feed(ts: float, value: float) -> None:
                latest[i] = (ts, value * inputs[i].scale)
                if i != 0:
                    return
                vals = [x for x in latest if x is not None and ts - x[0] <= ch.max_age_s]
                if len(vals) == len(inputs):
                    rate = fn([v for _, v in vals])
                    if rate is not None and math.isfinite(rate):
                        ch.feed(ts, rate)

            return feed

        for i, ref in enumerate(inputs):
            sel_kind, sel = ("point", ref.point) if ref.point is not None else ("role", str(ref.role))
            self._selectors.setdefault(ref.device, []).append((sel_kind, str(sel), feeder(i), ch))
        for w in windows:
            ch.use_window(w)
        return ch

    def has_role(self, device: str, role: Role) -> bool:
        info = self.devices.get(device)
        return info is not None and role in info.roles.values()

    def _role_of(self, device: str, point: str) -> Role | None:
        info = self.devices.get(device)
        return None if info is None else info.roles.get(point)

    # --- ingest -------------------------------------------------------------------------------------------------

    def _steady(self) -> Callable[[float], float] | None:
        """After a wall-clock step: what makes sample times steady (None while there was none)."""
        if self._watch is None:
            return None
        self._watch.check()
        return self._watch.steady if self._frame.shift else None

    def ingest(self, samples: Iterable[Sample]) -> None:
        steady = self._steady()
        routes = self._routes
        for s in samples:
            if s.quality is not Quality.GOOD or s.value is None or isinstance(s.value, str):
                self.ignored += 1
                continue
            feeds = routes.get((s.device, s.point))
            if feeds is None:
                feeds = self._route(s)
            if feeds:
                value, ts = float(s.value), s.ts if steady is None else steady(s.ts)
                for feed in feeds:
                    feed(ts, value)

    def ingest_good(self, reads: GoodReads) -> None:
        """``ingest(reads.samples())`` without building the Samples: a poll that read every point good feeds the
        routed points straight from its columns (the unrouted ones cost nothing)."""
        steady = self._steady()
        vector = self._vectors.get(reads.layout)
        if vector is None:
            vector = self._vector(reads)
        strings, entries = vector
        self.ignored += strings
        values, stamps = reads.values, reads.stamps
        for i, r, feeds in entries:
            value, ts = float(values[i]), stamps[r] if steady is None else steady(stamps[r])  # type: ignore[arg-type]
            for feed in feeds:
                feed(ts, value)

    def _vector(self, reads: GoodReads) -> tuple[int, list[tuple[int, int, list[Feed]]]]:
        """Route each point of the layout in plan order, as ``ingest`` would on the first good poll."""
        if len(self._vectors) > 4096:  # layouts of split requests come and go
            self._vectors.clear()
        lay, routes = reads.layout, self._routes
        strings, entries = 0, []
        for i in lay.order:
            if isinstance(reads.values[i], str):
                strings += 1
                continue
            feeds = routes.get((lay.device, lay.points[i]))
            r = lay.request_of[i]
            if feeds is None:
                feeds = self._route(
                    Sample(lay.device, lay.points[i], reads.values[i], lay.units[i], Quality.GOOD, reads.stamps[r],
                           role=lay.roles[i])
                )  # fmt: skip
            if feeds:
                entries.append((i, r, feeds))
        vector = (strings, entries)
        self._vectors[lay] = vector
        return vector

    def _route(self, s: Sample) -> list[Feed]:
        """Which feeds read this device point; computed once per point and cached. A role selector binds to the
        first point of the device seen with that role (the point's role comes from the sample or the profile)."""
        role = s.role or self._role_of(s.device, s.point)
        feeds: list[Feed] = []
        info = self.devices.get(s.device)
        for sel_kind, sel, feed, ch in self._selectors.get(s.device, []):
            if sel_kind == "point" and sel != s.point:
                continue
            if sel_kind == "role" and (role is None or sel != str(role)):
                continue
            if not isinstance(ch, DerivedChannel):
                if ch.point is not None and ch.point != s.point:
                    continue
                ch.point = s.point
                tracker = ch.tracker
                if isinstance(tracker, CounterTracker):
                    tracker.modulus = counter_modulus(ch.counter_bits, s.point, info)
            feeds.append(feed)
        self._routes[(s.device, s.point)] = feeds
        return feeds

    # --- evaluate -----------------------------------------------------------------------------------------------

    def evaluate(self, now: float) -> list[KpiValue]:
        self._prune(now)
        if self._watch is not None:
            self._watch.prune(now)
        if self._held:
            self._release(now)
        unreported: dict[str, float] = {}  # per window, the oldest period not reported yet: its sums are kept
        for (_, window), start in self._reported.items():
            if start < unreported.get(window, float("inf")):
                unreported[window] = start
        for key, ch in self._channels.items():
            if key not in self._held:
                ch.finalize(now, unreported)
        out: list[KpiValue] = []
        for idx, ind in enumerate([*self._indicators, *self._customs]):
            ind.update(now)
            for spec in ind.windows:
                out.extend(self._evaluate_one(idx, ind, spec, now))
        return out

    def _evaluate_one(self, idx: int, ind: Indicator, spec: WindowSpec, now: float) -> list[KpiValue]:
        out: list[KpiValue] = []
        key = (idx, spec.name)
        reported = self._reported.get(key)  # where the next period to report begins (its anchor)
        if reported is None:
            reported = spec.anchor(self._t0)
        if reported < now - MAX_BACKLOG_S:  # a clock that jumped far ahead: do not emit every period in between
            reported = max(reported, spec.anchor(now - MAX_BACKLOG_S))
        until = min(ind.final_until(spec.name), now)
        for _ in range(MAX_FINALS_PER_EVALUATE):
            start, end = spec.bounds(reported)
            if end > until:
                break
            out.extend(self._keep(self._finish(ind, spec, ind.values(spec, start, end, now, True)), True))
            reported = end
        self._reported[key] = reported
        if self.config.emit_running:
            start, end = spec.bounds(now)
            if spec.anchor(now) >= reported and now > start:
                out.extend(self._keep(self._finish(ind, spec, ind.values(spec, start, end, now, False)), False))
        return out

    def _finish(self, ind: Indicator, spec: WindowSpec, values: list[KpiValue]) -> list[KpiValue]:
        """Grades outside the grading windows marked indicative (or dropped); clock steps flagged."""
        policy = self._grading.get(id(ind))
        if policy is not None and spec.name not in policy[0]:
            indicative = policy[1]
            values = [
                v if v.grade is None else replace(v, grade_indicative=True) if indicative else ungraded(v)
                for v in values
            ]
        watch = self._watch
        if watch is not None and watch.steps:
            cov = float(getattr(ind, "coverage_min", self.config.coverage_min))
            values = [watch.flag(v, cov) for v in values]
        return values

    def _keep(self, values: list[KpiValue], final: bool) -> list[KpiValue]:
        for v in values:
            self._store[(f"{v.scope}.{v.name}", v.window, v.window_start, final)] = v
        return values

    def _lookup(self, name: str, window: str, start: float, final: bool) -> KpiValue | None:
        return self._store.get((name, window, start, final))

    def _kpi_final_until(self, name: str, window: str) -> float:
        ind = self._by_name.get(name)
        if ind is None or window not in {w.name for w in ind.windows}:
            return float("-inf")
        return ind.final_until(window)

    def _prune(self, now: float) -> None:
        """Running values live for one evaluation; final ones as long as a custom KPI may still need them."""
        horizon = 2 * self.config.settle_s + 2 * self.config.publish_interval_s
        for k in [k for k, v in self._store.items() if not k[3] or v.window_end + horizon < now]:
            del self._store[k]

    # --- state over restarts (agent.kpi.state) -------------------------------------------------------------------

    def snapshot(self, now: float) -> dict[str, object]:
        """The engine's state as JSON-ready data: counter readings, open windows, the calendar months, reported
        periods, demand maxima and baselines. Take it right after ``evaluate``."""
        return capture(self, now)

    def restore(self, data: object, now: float) -> str:
        """Take over a snapshot (parts that fit this configuration); returns one line saying what was kept.
        Raises ``agent.kpi.state.StateError`` for data that is not a snapshot of this format."""
        return restore(self, data, now)

    def coefficients(self) -> dict[str, object]:
        """The fuels' coefficients now (GJ per unit, by channel) and their history, for the snapshot."""
        return {
            "now": dict(self._ctx.fuel_coefficients),
            "history": {k: [[u, r] for u, r in v] for k, v in self._ctx.fuel_history.items()},
        }

    def carry_coefficients(self, saved: Mapping[str, Any], now: float) -> list[str]:
        """After a restart: closed months keep the coefficients they had (agent.kpi.coefficients.carry)."""
        month = WindowSpec("month", self.tz, self._shifts)
        return carry(self._ctx, saved, month, now, restate=self.config.restate_closed_periods)

    def seed_history(self, line: str, rows: Sequence[MonthRow], where: str = "history") -> str:
        """Seed the calendar months of a line's inputs from its history rows (agent.kpi.history): only months that
        ended before the engine started, never a month measured. One line for the log; HistoryError on a misfit."""
        cfg = next((x for x in self.config.lines if x.name == line), None)
        if cfg is None:
            raise HistoryError(f"{where}: no line '{line}'")
        month = WindowSpec("month", self.tz, self._shifts)

        def seed(ref: PointRefConfig, year: int, mon: int, amount: float) -> bool:
            start = month.anchor(datetime(year, mon, 15, tzinfo=ZoneInfo(self.tz)).timestamp())
            if month.bounds(start)[1] > self._t0:
                raise HistoryError(f"{where}: month {year}-{mon:02d} has not ended before the agent started")
            days = self.channel(ref, ()).sums.get("day")
            if not isinstance(days, WindowedSum) or days.ledger is None:
                raise HistoryError(f"{where}: line '{line}' has no month, year or 12mo window to seed")
            return days.ledger.seed(start, amount)

        done, skipped = seed_line(cfg, rows, seed, where)
        return f"kpi: line {line}: {done} month(s) seeded from {where}, {skipped} kept as measured"

    def hold(self, channels: Mapping[str, float], until: float) -> None:
        """Restored channels do not close periods until their next reading (the delta across the downtime) or
        ``until``: the periods of the downtime wait for it instead of closing empty at the first evaluation."""
        self._held = dict(channels)
        self._held_until = until

    def _release(self, now: float) -> None:
        for key, last in list(self._held.items()):
            ch = self._channels.get(key)
            if ch is None or now >= self._held_until or ch.tracker.last_ts != last:
                del self._held[key]

    def notices(self) -> list[str]:
        """Lines to log once (clock steps), oldest first; each is returned once."""
        if self._watch is None or not self._watch.notices:
            return []
        out, self._watch.notices = self._watch.notices, []
        return out

    # --- introspection ------------------------------------------------------------------------------------------

    def kpi_names(self) -> list[str]:
        """Every ``scope.kpi`` this engine computes."""
        return sorted(self._by_name)

    def counter_stats(self) -> dict[str, object]:
        return {k: ch.tracker.stats for k, ch in self._channels.items() if isinstance(ch.tracker, CounterTracker)}


def _names(ind: Indicator) -> list[str]:
    if isinstance(ind, TermKpi):
        return [ind.name]
    if isinstance(ind, DemandKpi):
        return ["max_demand_kw", "max_demand_sliding_kw"]
    if isinstance(ind, BaselineKpi):
        return ["baseline_expected", "baseline_actual", "baseline_cusum"]
    return []
