"""The monthly report's figures, gathered once, and written as CSV and XLSX (report_pdf.py writes the PDF).

Every output is made from one :class:`Report`, so the PDF, the CSV and the XLSX carry the same numbers. The CSV is
one table ``section,item,field,value,unit``; the XLSX has one sheet per section with the same rows and values.
A provisional (open) month, a restated month (revision > 0) and a flagged quality are stated in every output.
"""

from __future__ import annotations

import csv
import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.center.accounts.account import Ledger
from agent.center.accounts.periods import days_of, same_month_last_year
from agent.center.accounts.register import effective

CARRIER_FIELDS = (
    ("code", ""),
    ("quantity", "unit"),
    ("purchased", "unit"),
    ("produced", "unit"),
    ("exported", "unit"),
    ("stock_change", "unit"),
    ("kgce_per_unit", "kgce/unit"),
    ("kgce_equivalent", "kgce"),
    ("kgce_per_unit_equal_value", "kgce/unit"),
    ("kgce_equal_value", "kgce"),
    ("co2_t", "tCO2"),
    ("metered_share", "1"),
    ("completeness", "1"),
    ("coefficient_source", ""),
)
PRODUCT_FIELDS = (
    ("output", "unit"),
    ("output_value_cny", "CNY"),
    ("energy_kgce", "kgce"),
    ("kgce_per_unit", "kgce/unit"),
    ("benchmark", "kgce/unit"),
    ("baseline", "kgce/unit"),
    ("grade", ""),
    ("same_month_last_year_kgce_per_unit", "kgce/unit"),
)


@dataclass
class Report:
    unit: str
    title: str
    code: str
    month: str
    generated_at: str
    figures: dict[str, Any]
    ytd: dict[str, Any]
    last_year: dict[str, Any] | None
    days: list[dict[str, Any]]
    restatements: list[dict[str, Any]]
    meters: list[dict[str, Any]]
    status: str  # provisional / closed / restated (revision n)
    rows: list[tuple[str, str, str, Any, str]] = field(default_factory=list)
    late: list[dict[str, Any]] = field(default_factory=list)  # data stored after the month or a day closed


def build(ledger: Ledger, label: str, now: float) -> Report:
    unit = ledger.unit
    zone = unit.zone()
    p = ledger.period("month", label)
    figures = ledger.figures(p)
    ytd = ledger.figures(ledger.period("ytd", label))
    prev_p = ledger.period("month", same_month_last_year(label))
    prev = ledger.figures(prev_p)
    has_prev = prev["quality"]["delivered"] > 0 or any(c["quantity"] for c in prev["carriers"])
    days = [ledger.figures(d) for d in days_of(p, zone) if d.start < now]
    today = dt.datetime.fromtimestamp(now, zone).date()
    month_end = dt.datetime.fromtimestamp(p.end, zone).date()
    meters = [
        {
            "id": m.id,
            "carrier": m.carrier,
            "flow": m.flow,
            "measures": m.measures,
            "accuracy_class": m.accuracy_class,
            "calibration_due": m.calibration_due.isoformat(),
            "source": "gateway" if m.device else "manual",
            "overdue": m.calibration_due < min(today, month_end),
            "register": where,
        }
        for m, where in effective(unit, ledger.store)
    ]
    if figures["provisional"]:
        status = "PROVISIONAL (month not closed)"
    elif figures.get("revision", 0) > 0:
        status = f"RESTATED (revision {figures['revision']})"
    else:
        status = "closed"
    rep = Report(
        unit.name,
        unit.title,
        unit.code,
        p.label,
        dt.datetime.fromtimestamp(now, zone).isoformat(timespec="seconds"),
        figures,
        ytd,
        prev if has_prev else None,
        days,
        ledger.restatements(p.label),
        meters,
        status,
    )
    for fig in [figures, *days]:
        rep.late += [dict(x, period=fig["period"]) for x in fig["quality"].get("late_data", [])]
    rep.rows = rows(rep)
    return rep


def rows(rep: Report) -> list[tuple[str, str, str, Any, str]]:
    """Every figure of the report as (section, item, field, value, unit)."""
    out: list[tuple[str, str, str, Any, str]] = [
        ("report", rep.unit, "month", rep.month, ""),
        ("report", rep.unit, "status", rep.status, ""),
        ("report", rep.unit, "generated_at", rep.generated_at, ""),
        ("report", rep.unit, "quality_flagged", rep.figures["quality"]["flagged"], ""),
    ]
    for section, fig in (("carriers", rep.figures), ("carriers_ytd", rep.ytd)):
        for c in fig["carriers"]:
            for name, unit in CARRIER_FIELDS:
                u = c["unit"] if unit == "unit" else unit.replace("unit", c["unit"])
                out.append((section, c["carrier"], name, c.get(name), u))
    for section, fig in (("totals", rep.figures), ("totals_ytd", rep.ytd)):
        for name, value in fig["totals"].items():
            out.append((section, rep.unit, name, value, "tCO2" if name == "co2_t" else "kgce"))
    last = {p["product"]: p for p in rep.last_year["products"]} if rep.last_year else {}
    for section, fig in (("products", rep.figures), ("products_ytd", rep.ytd)):
        for prod in fig["products"]:
            lv = prod.get("level") or {}
            values = dict(prod, benchmark=lv.get("benchmark"), baseline=lv.get("baseline"))
            if section == "products":
                values["same_month_last_year_kgce_per_unit"] = last.get(prod["product"], {}).get("kgce_per_unit")
            for name, unit in PRODUCT_FIELDS:
                if name in values:
                    out.append((section, prod["product"], name, values.get(name), unit.replace("unit", prod["unit"])))
    for d in rep.days:
        out.append(
            (
                "daily",
                d["period"],
                "comprehensive_kgce_equivalent",
                d["totals"]["comprehensive_kgce_equivalent"],
                "kgce",
            )
        )
        out.append(("daily", d["period"], "completeness", d["quality"].get("completeness"), "1"))
        out.append(("daily", d["period"], "revision", d.get("revision", 0), ""))
    q = rep.figures["quality"]
    out += [
        ("quality", rep.unit, "completeness", q.get("completeness"), "1"),
        ("quality", rep.unit, "delivered", q.get("delivered"), "15-min values"),
        ("quality", rep.unit, "required", q.get("required"), "15-min values"),
        ("quality", rep.unit, "flagged", q.get("flagged"), ""),
    ]
    out += [("quality", rep.unit, "reason", r, "") for r in q.get("reasons", [])]
    out.append(("quality", rep.unit, "late_data_count", len(rep.late), "series x periods"))
    for x in rep.late:
        item = f"{x['period']} {x['series']}"
        out.append(("late_data", item, "closed", x["closed"], ""))
        out.append(("late_data", item, "stored_now", x["stored_now"], ""))
        out.append(("late_data", item, "difference", x["difference"], ""))
    for c in q.get("consistency", []):
        out.append(("consistency", c["carrier"], "days_sum", c["days_sum"], ""))
        out.append(("consistency", c["carrier"], "month", c["month"], ""))
        out.append(("consistency", c["carrier"], "deviation", c["deviation"], "1"))
    for g in q.get("gaps", []):
        out.append(("gaps", g["series"], f"{g['from']} .. {g['to']}", g["cause"], ""))
    for r in rep.restatements:
        when = dt.datetime.fromtimestamp(r["at"], dt.UTC).isoformat(timespec="seconds")
        item = f"{r['period']} r{r['revision']} {r['carrier']}.{r['field']}"
        out += [
            ("restatements", item, "previous", r["old"], ""),
            ("restatements", item, "new", r["new"], ""),
            ("restatements", item, "who", r["who"], ""),
            ("restatements", item, "when", when, ""),
            ("restatements", item, "why", r["why"], ""),
        ]
    for m in rep.meters:
        for name in (
            "carrier",
            "flow",
            "measures",
            "accuracy_class",
            "calibration_due",
            "source",
            "overdue",
            "register",
        ):
            out.append(("meters", m["id"], name, m[name], ""))
    for c in rep.figures["carriers"]:
        out.append(("metered_vs_entered", c["carrier"], "metered_share", c["metered_share"], "1"))
        out.append(("metered_vs_entered", c["carrier"], "entered_share", 1.0 - c["metered_share"], "1"))
    return out


def write_csv(rep: Report, path: Path) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["section", "item", "field", "value", "unit"])
        for r in rep.rows:
            w.writerow(["" if v is None else v for v in r])


def write_xlsx(rep: Report, path: Path) -> None:
    from openpyxl import Workbook

    wb = Workbook()
    wb.remove(wb.worksheets[0])
    sheets: dict[str, Any] = {}
    for section, item, name, value, unit in rep.rows:
        ws = sheets.get(section)
        if ws is None:
            ws = wb.create_sheet()
            ws.title = section[:31]
            ws.append(["item", "field", "value", "unit"])
            sheets[section] = ws
        ws.append([item, name, value, unit])
    wb.save(path)
