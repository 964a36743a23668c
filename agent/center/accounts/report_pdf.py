"""The monthly report as a PDF an energy manager signs (fpdf2; a CJK font for the Chinese terms and names).

Sections: header (unit, month, status: provisional / closed / restated, quality flag), carriers (physical quantity,
purchased, produced, exported, stock change, kgce by both electricity methods side by side, CO2, metered share,
completeness), unit totals (comprehensive energy GB/T 2589, dual-control energy, CO2; month and year to date), a bar
chart of each carrier's share and of the daily energy, products against benchmark and baseline with the official
monthly grade and the same month of last year, quality (completeness, daily vs monthly, gaps with causes),
restatements (who, when, why, previous value), meter calibration status (GB 17167), and a signature block.

The font: ``font_file`` if given, else the first of FONT_PATHS present (Debian's fonts-wqy-microhei, installed by
deploy/test.sh; fonts-noto-cjk works too). Without one the report is refused with the package to install.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from agent.center.accounts.report import Report

FONT_PATHS = (
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
)
GRADE_TEXT = {
    "benchmark": "at benchmark 标杆",
    "between": "between benchmark and baseline",
    "below_baseline": "BELOW BASELINE 未达基准",
    None: "not graded",
}


class FontMissing(RuntimeError):
    pass


def find_font(font_file: str | None = None) -> str:
    for path in (font_file, *FONT_PATHS):
        if path and Path(path).is_file():
            return path
    raise FontMissing(
        "no CJK font for the report: install Debian's fonts-wqy-microhei (apt-get install fonts-wqy-microhei) "
        "or give --font FILE"
    )


def _n(v: Any, digits: int = 0) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int | float):
        return f"{v:,.{digits}f}"
    return str(v)


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{v * 100:.1f} %"


def write_pdf(rep: Report, path: Path, font_file: str | None = None) -> None:
    from fpdf import FPDF
    from fpdf.enums import XPos, YPos

    pdf = FPDF(orientation="L", unit="mm", format="A4")
    pdf.set_auto_page_break(auto=True, margin=14)
    font = find_font(font_file)
    pdf.add_font("cjk", "", font)
    pdf.add_font("cjk", "B", font)  # table headings: the same face (the CJK fonts ship no bold)
    pdf.set_title(f"Energy report {rep.unit} {rep.month}")
    pdf.set_creator("energy-center")
    f = rep.figures
    flagged = f["quality"]["flagged"]

    def footer() -> None:
        pdf.set_y(-10)
        pdf.set_font("cjk", size=7)
        pdf.cell(0, 4, f"{rep.unit} {rep.month} · {rep.status} · generated {rep.generated_at} · page {pdf.page_no()}")

    pdf.footer = footer  # type: ignore[method-assign]
    pdf.add_page()

    def heading(text: str) -> None:
        pdf.ln(2)
        pdf.set_font("cjk", size=11)
        pdf.set_text_color(0, 51, 102)
        pdf.cell(0, 7, text, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        pdf.set_text_color(0, 0, 0)
        pdf.set_font("cjk", size=7.5)

    def table(head: list[str], body: list[list[str]], widths: list[float] | None = None) -> None:
        pdf.set_font("cjk", size=7.5)
        pdf.set_fill_color(255, 255, 255)
        align = ("LEFT", *(["RIGHT"] * (len(head) - 1)))
        with pdf.table(
            col_widths=widths, text_align=align, line_height=4.2, first_row_as_headings=True, padding=0.8
        ) as t:
            for row in [head, *body]:
                r = t.row()
                for cell in row:
                    r.cell(cell)

    pdf.set_font("cjk", size=15)
    pdf.cell(0, 9, f"Monthly energy report 能源统计月报 — {rep.month}", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font("cjk", size=9)
    pdf.cell(
        0,
        5,
        f"{rep.title or rep.unit}   unit {rep.unit}   code {rep.code or '-'}   time zone "
        f"{f['timezone']}   period {f['start'][:16]} .. {f['end'][:16]}",
        new_x=XPos.LMARGIN,
        new_y=YPos.NEXT,
    )
    status = f"Status: {rep.status}"
    if flagged:
        status += "   QUALITY BELOW THRESHOLD 数据质量不达标: " + "; ".join(f["quality"]["reasons"])[:220]
    pdf.set_text_color(180, 0, 0) if (flagged or rep.status != "closed") else pdf.set_text_color(0, 110, 0)
    pdf.multi_cell(0, 5, status, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_text_color(0, 0, 0)

    heading("1. Energy carriers 分品种能源消费 (month)")
    eq = (
        "equal-value 等价值"
        if f.get("equal_value_declared")
        else "equal-value 等价值 (no figure declared: = equivalent)"
    )
    head = [
        "carrier 品种",
        "code",
        "unit",
        "consumption 消费量",
        "purchased 购入",
        "produced 自产",
        "exported 外供",
        "stock chg 库存变化",
        "kgce equivalent 当量值",
        f"kgce {eq}",
        "tCO2",
        "metered 计量",
        "complete 完整率",
    ]
    body = [
        [
            c["carrier"] + (" (renewable)" if c["renewable"] else "") + (" (feedstock)" if c["feedstock"] else ""),
            c["code"],
            c["unit"],
            _n(c["quantity"], 1),
            _n(c["purchased"], 1),
            _n(c["produced"], 1),
            _n(c["exported"], 1),
            _n(c["stock_change"], 1),
            _n(c["kgce_equivalent"]),
            _n(c["kgce_equal_value"]),
            _n(c["co2_t"], 1),
            _pct(c["metered_share"]),
            _pct(c["completeness"]),
        ]
        for c in f["carriers"]
    ]
    table(head, body, [34, 14, 10, 24, 22, 20, 20, 20, 26, 30, 18, 15, 17])

    heading("2. Unit totals 综合能耗 (GB/T 2589), dual control 能耗双控, CO2")
    t, y = f["totals"], rep.ytd["totals"]

    def tce(v: float | None) -> str:
        return "-" if v is None else f"{v / 1000:,.2f}"

    table(
        ["figure", "month (tce)", "year to date (tce)"],
        [
            [
                "comprehensive energy, equivalent value 综合能耗(当量值)",
                tce(t["comprehensive_kgce_equivalent"]),
                tce(y["comprehensive_kgce_equivalent"]),
            ],
            [
                "comprehensive energy, equal-value 综合能耗(等价值)",
                tce(t["comprehensive_kgce_equal_value"]),
                tce(y["comprehensive_kgce_equal_value"]),
            ],
            [
                "dual-control energy (renewables and feedstock out), equivalent 双控能耗",
                tce(t["dual_control_kgce_equivalent"]),
                tce(y["dual_control_kgce_equivalent"]),
            ],
            [
                "dual-control energy, equal-value",
                tce(t["dual_control_kgce_equal_value"]),
                tce(y["dual_control_kgce_equal_value"]),
            ],
            ["CO2 (t) 二氧化碳排放", _n(t["co2_t"], 1), _n(y["co2_t"], 1)],
        ],
        [150, 50, 50],
    )
    if rep.ytd.get("restated_months"):
        pdf.cell(
            0,
            5,
            "Year to date includes restated months: " + ", ".join(rep.ytd["restated_months"]),
            new_x=XPos.LMARGIN,
            new_y=YPos.NEXT,
        )
    _bars(
        pdf,
        "Share of comprehensive energy by carrier (kgce, equivalent)",
        [(c["carrier"], c["kgce_equivalent"] or 0.0) for c in f["carriers"]],
    )
    _bars(
        pdf,
        "Daily comprehensive energy (kgce, equivalent)",
        [(d["period"][8:], d["totals"]["comprehensive_kgce_equivalent"]) for d in rep.days],
        vertical=True,
    )

    heading("3. Products: unit consumption 单位产品综合能耗 against benchmark 标杆 and baseline 基准")
    last = {p["product"]: p for p in rep.last_year["products"]} if rep.last_year else {}
    body = []
    for p in f["products"]:
        lv = p.get("level") or {}
        prev = last.get(p["product"], {}).get("kgce_per_unit")
        trend = "-" if prev is None or p["kgce_per_unit"] is None else f"{(p['kgce_per_unit'] / prev - 1) * 100:+.1f} %"
        body.append(
            [
                p["product"],
                _n(p["output"], 1) + f" {p['unit']}",
                _n(p["output_value_cny"]),
                _n(p["energy_kgce"]),
                _n(p["kgce_per_unit"], 2),
                _n(lv.get("benchmark"), 1),
                _n(lv.get("baseline"), 1),
                GRADE_TEXT.get(p["grade"], str(p["grade"])),
                _n(prev, 2),
                trend,
                f"{lv.get('standard', '')} {lv.get('edition', '')} ({lv.get('status', '')})" if lv else "-",
            ]
        )
    table(
        [
            "product",
            "output 产量",
            "value CNY 产值",
            "energy kgce",
            "kgce/unit",
            "benchmark",
            "baseline",
            "official monthly grade",
            "same month last year",
            "trend",
            "level source",
        ],
        body,
        [22, 26, 22, 24, 18, 18, 18, 42, 22, 16, 49],
    )

    heading("4. Data quality 数据质量")
    q = f["quality"]
    pdf.multi_cell(
        0,
        4.5,
        f"Completeness 完整率: {_pct(q.get('completeness'))} ({q.get('delivered')} of "
        f"{q.get('required')} 15-minute values delivered; threshold 90 %). "
        + ("FLAGGED: " + "; ".join(q["reasons"]) if q["flagged"] else "Within thresholds."),
        new_x=XPos.LMARGIN,
        new_y=YPos.NEXT,
    )
    if q.get("consistency"):
        table(
            ["carrier", "sum of days 日累计", "month 月值", "deviation 偏差 (max 5 %)"],
            [[c["carrier"], _n(c["days_sum"], 1), _n(c["month"], 1), _pct(c["deviation"])] for c in q["consistency"]],
            [60, 50, 50, 50],
        )
    gaps = q.get("gaps", [])
    if gaps:
        pdf.ln(1)
        table(
            ["series", "from", "to", "cause 原因"],
            [[g["series"], g["from"], g["to"], g["cause"]] for g in gaps[:25]],
            [40, 45, 45, 140],
        )
        if len(gaps) > 25:
            pdf.cell(
                0, 5, f"... and {len(gaps) - 25} more gaps (all in the CSV/XLSX)", new_x=XPos.LMARGIN, new_y=YPos.NEXT
            )
    else:
        pdf.cell(0, 5, "No gaps.", new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    heading("5. Restatements 更正记录")
    if rep.restatements:
        table(
            ["period", "revision", "carrier", "field", "previous 原值", "new 新值", "who", "when (UTC)", "why 原因"],
            [
                [
                    r["period"],
                    str(r["revision"]),
                    r["carrier"],
                    r["field"],
                    _n(r["old"], 2),
                    _n(r["new"], 2),
                    r["who"],
                    dt.datetime.fromtimestamp(r["at"], dt.UTC).strftime("%Y-%m-%d %H:%M"),
                    r["why"],
                ]
                for r in rep.restatements
            ],
            [16, 14, 22, 20, 24, 24, 24, 28, 98],
        )
    else:
        pdf.cell(0, 5, "None.", new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    heading("6. Measuring instruments 计量器具 (GB 17167) and metered vs entered")
    table(
        ["meter", "carrier", "flow", "measures", "class", "calibration due", "source", "status"],
        [
            [
                m["id"],
                m["carrier"],
                m["flow"],
                m["measures"],
                m["accuracy_class"],
                m["calibration_due"],
                m["source"],
                "OVERDUE 超期" if m["overdue"] else "in date",
            ]
            for m in rep.meters
        ],
        [24, 28, 22, 80, 16, 30, 20, 30],
    )
    pdf.ln(1)
    pdf.multi_cell(
        0,
        4.5,
        "Metered share of each carrier's quantity: "
        + ", ".join(
            f"{c['carrier']} {_pct(c['metered_share'])} metered / {_pct(1 - c['metered_share'])} entered"
            for c in f["carriers"]
        ),
        new_x=XPos.LMARGIN,
        new_y=YPos.NEXT,
    )

    if pdf.get_y() > pdf.h - pdf.b_margin - 50:  # the signature block stays on one page
        pdf.add_page()
    heading("7. Sign-off 审核签字")
    pdf.set_font("cjk", size=9)
    for role in ("Prepared by 填报人", "Reviewed by 审核人", "Energy manager 能源管理负责人"):
        pdf.cell(90, 12, f"{role}: ____________________", border=0)
        pdf.cell(60, 12, "Date 日期: ____________", border=0)
        pdf.cell(0, 12, "Seal 盖章:", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.output(str(path))


def _bars(pdf: Any, title: str, items: list[tuple[str, float]], vertical: bool = False) -> None:
    """A plain bar chart drawn with rectangles (no plotting library)."""
    from fpdf.enums import XPos, YPos

    if not items:
        return
    pdf.ln(1)
    pdf.set_font("cjk", size=8)
    pdf.cell(0, 5, title, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    top = max((v for _l, v in items), default=0.0) or 1.0
    x0, y0 = pdf.l_margin, pdf.get_y()
    pdf.set_fill_color(40, 90, 160)
    if vertical:
        h, w = 28.0, min(8.0, (pdf.w - 2 * pdf.l_margin) / max(1, len(items)))
        if y0 + h + 8 > pdf.h - pdf.b_margin:
            pdf.add_page()
            y0 = pdf.get_y()
        for i, (label, v) in enumerate(items):
            bh = h * max(0.0, v) / top
            pdf.rect(x0 + i * w + 0.5, y0 + h - bh, w - 1, bh, style="F")
            pdf.set_font("cjk", size=5.5)
            pdf.text(x0 + i * w + 0.8, y0 + h + 3, label)
        pdf.set_y(y0 + h + 5)
        return
    for label, v in items:
        pdf.set_font("cjk", size=7)
        pdf.cell(40, 4.5, label)
        bw = 150 * max(0.0, v) / top
        pdf.rect(x0 + 41, pdf.get_y() + 0.8, max(bw, 0.2), 3, style="F")
        pdf.set_x(x0 + 195)
        pdf.cell(0, 4.5, f"{v / 1000:,.1f} tce", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
