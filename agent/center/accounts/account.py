"""The account of one unit: per carrier and period, the unit totals (GB/T 2589), products, dual control, CO2, quality.

Per carrier (physical units of its factor row):
    purchased      metered (meters with flow purchased) or, without such a meter, deliveries + invoices entered
    produced       metered (flow produced, e.g. on-site PV)
    exported       metered (flow exported)
    stock_change   closing - opening stock count entered (None when either count is missing)
    quantity       consumption: metered (flow consumed) or, without such a meter,
                   purchased + produced - exported - stock_change
    kgce           quantity x coefficient, electricity by both methods side by side: ``kgce_equivalent``
                   (当量值, 0.1229 kgce/kWh) and ``kgce_equal_value`` (等价值, the year's published supply coal
                   consumption; other carriers the same in both columns; None when the unit declares no figure)
    co2_t          quantity x tCO2 per unit (renewable electricity 0)
    metered_share  the part of the quantity that rests on metered data (the rest on entries)
    completeness   delivered / required 15-minute values of the carrier's metered series

Unit totals: comprehensive energy consumption = sum of every carrier's kgce; dual-control energy = the same without
renewable and feedstock carriers. Products: output (counter and/or entries), the energy of their meters (or the whole
unit's), unit consumption against the level row and its grade (a month's grade is an official grading period).
"""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from agent.center.accounts.coefficients import Coefficients, coefficients
from agent.center.accounts.config import UnitConfig
from agent.center.accounts.figures import derive, empty, flag, sum_known, year_to_date_figures
from agent.center.accounts.metered import SeriesReader, SeriesRef, series_quarters
from agent.center.accounts.periods import Period, day, days_of, month, months_of_year, year_to_date
from agent.center.accounts.restate import late_data, restate
from agent.center.accounts.store import Store

DELIVERED_COVERAGE = 0.9  # a 15-minute value counts as delivered when readings cover this much of it


@dataclass
class Ledger:
    unit: UnitConfig
    store: Store

    # --- series and metered data -------------------------------------------------------------------------------

    def series(self) -> list[SeriesRef]:
        gw = self.unit.gateways[0]
        out = [
            SeriesRef(m.id, m.site or gw.site, m.gateway or gw.gateway, m.device, m.role)
            for m in self.unit.meters
            if m.device is not None
        ]
        for p in self.unit.products:
            if p.output is not None:
                o = p.output
                out.append(SeriesRef(f"output:{p.name}", o.site or gw.site, o.gateway or gw.gateway, o.device, o.role))
        return out

    def refresh(self, reader: SeriesReader, t0: float, t1: float) -> int:
        """Recompute the quarters of [t0, t1) from the database (late data included); returns the rows written."""
        rows: list[tuple[str, str, float, float, float, str]] = []
        for ref in self.series():
            for q in series_quarters(reader, ref, t0, t1, self.unit.max_sample_gap_s):
                rows.append((self.unit.name, ref.key, q.start, q.quantity, q.coverage, q.cause))
        with self.store.transaction() as db:
            db.executemany("INSERT OR REPLACE INTO quarter VALUES (?, ?, ?, ?, ?, ?)", rows)
        return len(rows)

    def _metered(self, p: Period) -> dict[str, tuple[float, int, int]]:
        """series -> (quantity, delivered quarters, quarters stored)."""
        rows = self.store.db.execute(
            "SELECT series, SUM(quantity), SUM(coverage >= ?), COUNT(*) FROM quarter "
            "WHERE unit=? AND start_ts >= ? AND start_ts < ? GROUP BY series",
            (DELIVERED_COVERAGE, self.unit.name, p.start, p.end),
        ).fetchall()
        return {r[0]: (float(r[1]), int(r[2]), int(r[3])) for r in rows}

    def gaps(self, p: Period) -> list[dict[str, Any]]:
        """Runs of quarters not delivered, per series, with their cause (merged while the cause stays the same)."""
        rows = self.store.db.execute(
            "SELECT series, start_ts, cause FROM quarter WHERE unit=? AND start_ts >= ? AND start_ts < ? "
            "AND coverage < ? ORDER BY series, start_ts",
            (self.unit.name, p.start, p.end, DELIVERED_COVERAGE),
        ).fetchall()
        stored = {
            r[0]
            for r in self.store.db.execute(
                "SELECT DISTINCT series FROM quarter INDEXED BY quarter_time WHERE unit=? AND start_ts >= ? AND start_ts < ?",
                (self.unit.name, p.start, p.end),
            )
        }
        out: list[dict[str, Any]] = []
        for series, start, cause in rows:
            last = out[-1] if out else None
            if last and last["series"] == series and last["cause"] == cause and last["to_ts"] == start:
                last["to_ts"] = start + 900.0
            else:
                out.append({"series": series, "from_ts": start, "to_ts": start + 900.0, "cause": cause})
        for ref in self.series():
            if ref.key not in stored:
                out.append({"series": ref.key, "from_ts": p.start, "to_ts": p.end, "cause": "not computed yet"})
        zone = self.unit.zone()
        for g in out:
            g["from"] = dt.datetime.fromtimestamp(g["from_ts"], zone).isoformat(timespec="minutes")
            g["to"] = dt.datetime.fromtimestamp(g["to_ts"], zone).isoformat(timespec="minutes")
        return out

    # --- entries ----------------------------------------------------------------------------------------------

    def _entries(self, p: Period, kind: str) -> list[Any]:
        """Entries dated inside ``p`` (entries are per day: a 15-minute period has none)."""
        if p.kind == "15m":
            return []
        zone = self.unit.zone()
        a = dt.datetime.fromtimestamp(p.start, zone).date().isoformat()
        b = dt.datetime.fromtimestamp(p.end, zone).date().isoformat()
        return self.store.db.execute(
            "SELECT * FROM entries WHERE unit=? AND kind=? AND day >= ? AND day < ? ORDER BY day",
            (self.unit.name, kind, a, b),
        ).fetchall()

    def _stock(self, carrier: str, before: str) -> float | None:
        row = self.store.db.execute(
            "SELECT quantity FROM entries WHERE unit=? AND kind='stock' AND carrier=? AND day < ? "
            "ORDER BY day DESC LIMIT 1",
            (self.unit.name, carrier, before),
        ).fetchone()
        return None if row is None else float(row[0])

    def coefficients_for(self, p: Period) -> Coefficients:
        """Today's tables, with the laboratory LHV entered for the period (their mean) where there is one."""
        lhv: dict[str, list[float]] = defaultdict(list)
        for e in self._entries(p, "lhv"):
            lhv[e["carrier"]].append(float(e["quantity"]))
        return coefficients(
            self.unit,
            {
                c: (
                    sum(v) / len(v),
                    f"laboratory LHV, mean of {len(v)} entr{'y' if len(v) == 1 else 'ies'}: "
                    f"{sum(v) / len(v):g} GJ/unit",
                )
                for c, v in lhv.items()
            },
        )

    # --- figures ----------------------------------------------------------------------------------------------

    def compute(self, p: Period, coeffs: Coefficients | None = None) -> dict[str, Any]:
        """The figures of period ``p`` from what is stored now (not saved: see close())."""
        coeffs = coeffs or self.coefficients_for(p)
        metered = self._metered(p)
        zone = self.unit.zone()
        first_day = dt.datetime.fromtimestamp(p.start, zone).date().isoformat()
        end_day = dt.datetime.fromtimestamp(p.end, zone).date().isoformat()
        entered: dict[tuple[str, str], float] = defaultdict(float)
        for kind in ("delivery", "invoice"):
            for e in self._entries(p, kind):
                entered[("purchased", e["carrier"])] += float(e["quantity"])
        carriers = []
        delivered_all = required_all = 0
        for c in self.unit.carriers:
            flows: dict[str, float] = defaultdict(float)
            has: set[str] = set()
            delivered = required = 0
            for m in self.unit.meters:
                if m.carrier != c.name or m.device is None:
                    continue
                has.add(m.flow)
                qty, ok, _n = metered.get(m.id, (0.0, 0, 0))
                flows[m.flow] += qty
                delivered += ok
                required += p.quarters()
            purchased: float | None = flows["purchased"] if "purchased" in has else entered.get(("purchased", c.name))
            produced = flows["produced"] if "produced" in has else None
            exported = flows["exported"] if "exported" in has else None
            opening, closing = self._stock(c.name, first_day), self._stock(c.name, end_day)
            stock_change = None if p.kind == "15m" or opening is None or closing is None else closing - opening
            if "consumed" in has:
                quantity = flows["consumed"]
                metered_share = 1.0
            else:
                quantity = (purchased or 0.0) + (produced or 0.0) - (exported or 0.0) - (stock_change or 0.0)
                metered_part = sum(flows[f] * (-1 if f == "exported" else 1) for f in has)
                metered_share = min(1.0, max(0.0, metered_part / quantity)) if quantity > 0 else 0.0
            k = coeffs.carriers[c.name]
            equal = k.kgce_per_unit_equal if (k.kgce_per_unit_equal is not None and not c.renewable) else None
            carriers.append(
                {
                    "carrier": c.name,
                    "code": c.code,
                    "unit": k.unit,
                    "renewable": c.renewable,
                    "feedstock": c.feedstock,
                    "quantity": quantity,
                    "purchased": purchased,
                    "produced": produced,
                    "exported": exported,
                    "stock_change": stock_change,
                    "kgce_per_unit": k.kgce_per_unit,
                    "kgce_per_unit_equal_value": equal if equal is not None else k.kgce_per_unit,
                    "tco2_per_unit": k.tco2_per_unit,
                    "coefficient_source": k.source,
                    "metered_share": metered_share,
                    "completeness": delivered / required if required else None,
                }
            )
            delivered_all += delivered
            required_all += required
        figures: dict[str, Any] = {
            "unit": self.unit.name,
            "kind": p.kind,
            "period": p.label,
            "start": dt.datetime.fromtimestamp(p.start, zone).isoformat(),
            "end": dt.datetime.fromtimestamp(p.end, zone).isoformat(),
            "timezone": self.unit.timezone,
            "carriers": carriers,
            "products": self._products(p, metered, coeffs),
            "quality": {
                "delivered": delivered_all,
                "required": required_all,
                "gaps": self.gaps(p),
                "items": {c["carrier"]: c["completeness"] for c in carriers if c["completeness"] is not None},
            },
            "equal_value_declared": self.unit.electricity_equal_value_kgce_per_kwh is not None,
            "metered_series": {k: v[0] for k, v in sorted(metered.items())},  # at closing: late data is measured on it
        }
        derive(figures, coeffs)
        return figures

    def _products(self, p: Period, metered: dict[str, tuple[float, int, int]], coeffs: Coefficients) -> list[Any]:
        out = []
        for prod in self.unit.products:
            output = metered.get(f"output:{prod.name}", (0.0, 0, 0))[0] if prod.output else 0.0
            value = None
            rows = [e for e in self._entries(p, "output") if e["product"] == prod.name]
            if rows:
                output += sum(float(e["quantity"]) for e in rows) if prod.output is None else 0.0
                value = sum_known([e["amount_cny"] for e in rows])
            shares: dict[str, float] = defaultdict(float)
            for m in self.unit.meters:
                if m.id in prod.meters and m.device is not None:
                    sign = -1.0 if m.flow == "exported" else 1.0
                    shares[m.carrier] += sign * metered.get(m.id, (0.0, 0, 0))[0]
            lv = coeffs.levels.get(prod.name)
            out.append(
                {
                    "product": prod.name,
                    "unit": prod.unit,
                    "output": output,
                    "output_value_cny": value,
                    "carrier_quantities": dict(shares) if prod.meters else None,
                    "level": None
                    if lv is None
                    else {
                        "benchmark": lv.benchmark,
                        "baseline": lv.baseline,
                        "unit": lv.unit,
                        "standard": lv.standard,
                        "edition": lv.edition,
                        "status": lv.status,
                        "product": lv.product,
                    },
                }
            )
        return out

    # --- closing, restating, reading --------------------------------------------------------------------------

    def latest(self, kind: str, label: str) -> tuple[int, dict[str, Any], Coefficients, Any] | None:
        row = self.store.db.execute(
            "SELECT * FROM closed WHERE unit=? AND kind=? AND period=? ORDER BY revision DESC LIMIT 1",
            (self.unit.name, kind, label),
        ).fetchone()
        if row is None:
            return None
        return (
            int(row["revision"]),
            json.loads(row["figures"]),
            Coefficients.from_json(json.loads(row["coefficients"])),
            row,
        )

    def close(self, p: Period, now: float) -> tuple[int, dict[str, Any], bool]:
        """Close ``p`` (day or month) once: its figures and coefficients are kept as revision 0. Returns
        (revision, figures, newly closed)."""
        have = self.latest(p.kind, p.label)
        if have is not None:
            return have[0], have[1], False
        coeffs = self.coefficients_for(p)
        figures = self.compute(p, coeffs)
        if p.kind == "month":
            figures["quality"]["consistency"] = self._consistency(p, figures)
        figures["quality"] = flag(figures["quality"], self.unit)
        with self.store.transaction() as db:
            db.execute(
                "INSERT INTO closed VALUES (?, ?, ?, 0, ?, ?, ?, 'energy-center', 'period closed')",
                (self.unit.name, p.kind, p.label, json.dumps(figures), json.dumps(coeffs.to_json()), now),
            )
        return 0, figures, True

    def figures(self, p: Period) -> dict[str, Any]:
        """Closed figures (latest revision, marked restated when > 0) or the open period computed now."""
        if p.kind == "ytd":
            return self._ytd(p)
        have = self.latest(p.kind, p.label)
        if have is not None:
            rev, figures, _c, row = have
            figures["revision"], figures["closed_at"] = rev, float(row["at"])
            figures["provisional"] = False
            if "metered_series" in figures:  # closed by this version: late data is measured against it
                late = late_data(figures, self._metered(p))
                figures["quality"]["late_data"], figures["quality"]["late_data_count"] = late, len(late)
            return figures
        figures = self.compute(p)
        if p.kind == "month":
            figures["quality"]["consistency"] = self._consistency(p, figures)
        figures["quality"] = flag(figures["quality"], self.unit)
        figures["revision"], figures["provisional"] = 0, True
        return figures

    def _consistency(self, p: Period, month_figures: dict[str, Any]) -> list[dict[str, Any]]:
        """Per carrier: the sum of the day values against the month value (the platform allows 5 %)."""
        zone = self.unit.zone()
        sums: dict[str, float] = defaultdict(float)
        for d in days_of(p, zone):
            for c in self.figures(d)["carriers"]:
                sums[c["carrier"]] += c["quantity"]
        out = []
        for c in month_figures["carriers"]:
            m = c["quantity"]
            dev = abs(sums[c["carrier"]] - m) / abs(m) if m else (0.0 if not sums[c["carrier"]] else 1.0)
            out.append({"carrier": c["carrier"], "days_sum": sums[c["carrier"]], "month": m, "deviation": dev})
        return out

    def _ytd(self, p: Period) -> dict[str, Any]:
        zone = self.unit.zone()
        every = [self.figures(m) for m in months_of_year(p.label, zone)]
        # months before the unit's data began (nothing metered, nothing entered, never closed) are not in the YTD
        months = [m for m in every[:-1] if not empty(m)] + every[-1:]
        return year_to_date_figures(months, self.unit, p.label, dt.datetime.fromtimestamp(p.start, zone).isoformat())

    def restate(
        self, label: str, item: str, field: str, value: float, who: str, why: str, now: float, kind: str = "month"
    ) -> tuple[int, dict[str, Any]]:
        """A correction of a closed month (or day): agent.center.accounts.restate."""
        return restate(self, kind, label, item, field, value, who, why, now)

    def restatements(self, label: str | None = None) -> list[dict[str, Any]]:
        q = "SELECT * FROM restatements WHERE unit=?"
        args: list[Any] = [self.unit.name]
        if label is not None:
            q += " AND (period=? OR period LIKE ?)"
            args += [label, label[:4] + "-%"]
        return [dict(r) for r in self.store.db.execute(q + " ORDER BY at, id", args)]

    def period(self, kind: str, label: str) -> Period:
        zone = self.unit.zone()
        return {"day": day, "month": month, "ytd": year_to_date}[kind](label, zone)
