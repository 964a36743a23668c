"""Figures arithmetic, pure: kgce by both methods, CO2, totals, product unit consumption and grade, quality flags,
the year to date as a sum of months, and a restated value carried through a closed month's figures."""

from __future__ import annotations

import json
from typing import Any

from agent.center.accounts.coefficients import Coefficients, Level, grade
from agent.center.accounts.config import UnitConfig

FIELDS = ("quantity", "purchased", "produced", "exported", "stock_change")


def sum_known(values: list[float | None]) -> float | None:
    nums = [v for v in values if v is not None]
    return sum(nums) if nums else None


def empty(figures: dict[str, Any]) -> bool:
    return (
        bool(figures.get("provisional"))
        and figures["quality"]["delivered"] == 0
        and not any(c["quantity"] or c["purchased"] for c in figures["carriers"])
        and not any(p["output"] for p in figures["products"])
    )


def derive(figures: dict[str, Any], coeffs: Coefficients) -> None:
    """kgce (both methods), CO2, totals and product unit consumption from quantities and coefficients."""
    tot = {
        "comprehensive_kgce_equivalent": 0.0,
        "comprehensive_kgce_equal_value": 0.0,
        "dual_control_kgce_equivalent": 0.0,
        "dual_control_kgce_equal_value": 0.0,
        "co2_t": 0.0,
    }
    per_unit: dict[str, tuple[float, float]] = {}
    for c in figures["carriers"]:
        q = c["quantity"]
        c["kgce_equivalent"] = q * c["kgce_per_unit"]
        c["kgce_equal_value"] = q * c["kgce_per_unit_equal_value"]
        c["co2_t"] = q * c["tco2_per_unit"]
        per_unit[c["carrier"]] = (c["kgce_per_unit"], c["kgce_per_unit_equal_value"])
        tot["comprehensive_kgce_equivalent"] += c["kgce_equivalent"]
        tot["comprehensive_kgce_equal_value"] += c["kgce_equal_value"]
        tot["co2_t"] += c["co2_t"]
        if not (c["renewable"] or c["feedstock"]):
            tot["dual_control_kgce_equivalent"] += c["kgce_equivalent"]
            tot["dual_control_kgce_equal_value"] += c["kgce_equal_value"]
    if not figures.get("equal_value_declared", True):
        tot["comprehensive_kgce_equal_value"] = tot["dual_control_kgce_equal_value"] = None  # type: ignore[assignment]
    figures["totals"] = tot
    for prod in figures["products"]:
        q = prod.get("carrier_quantities")
        if q is None:
            energy = tot["comprehensive_kgce_equivalent"]
        else:
            energy = sum(qty * per_unit[c][0] for c, qty in q.items() if c in per_unit)
        prod["energy_kgce"] = energy
        prod["kgce_per_unit"] = energy / prod["output"] if prod["output"] else None
        prod["grade"] = grade_of(prod)
    del coeffs


def grade_of(prod: dict[str, Any]) -> str | None:
    lv = prod.get("level")
    if lv is None or prod.get("kgce_per_unit") is None:
        return None
    return grade(prod["kgce_per_unit"], Level("", "", "", lv["unit"], lv["benchmark"], lv["baseline"], "", "", ""))


def flag(quality: dict[str, Any], unit: UnitConfig) -> dict[str, Any]:
    """Completeness and consistency against the unit's thresholds; a flagged period says why."""
    q = dict(quality)
    required = q.get("required", 0)
    q["completeness"] = q.get("delivered", 0) / required if required else None
    reasons = []
    if q["completeness"] is not None and q["completeness"] < unit.completeness_min:
        reasons.append(
            f"completeness {q['completeness']:.1%} below {unit.completeness_min:.0%} ({q['delivered']} of {required} "
            "15-minute values delivered)"
        )
    for item, share in q.get("items", {}).items():
        if share < unit.completeness_min:
            reasons.append(f"{item}: completeness {share:.1%} below {unit.completeness_min:.0%}")
    for c in q.get("consistency", []):
        if c["deviation"] > unit.consistency_max:
            reasons.append(
                f"{c['carrier']}: daily sum {c['days_sum']:.6g} deviates {c['deviation']:.1%} from the month "
                f"{c['month']:.6g} (more than {unit.consistency_max:.0%})"
            )
    q["reasons"] = reasons
    q["flagged"] = bool(reasons)
    return q


def year_to_date_figures(months: list[dict[str, Any]], unit: UnitConfig, label: str, start: str) -> dict[str, Any]:
    """January .. the month of ``label`` summed; restated months and flagged months named."""
    base: dict[str, Any] = json.loads(json.dumps(months[-1]))
    base["months_included"] = [m["period"] for m in months]
    base["kind"], base["period"], base["start"] = "ytd", label, start
    base["restated_months"] = [m["period"] for m in months if m.get("revision", 0) > 0]
    base["provisional"] = any(m["provisional"] for m in months)
    for i, c in enumerate(base["carriers"]):
        for f in (*FIELDS, "kgce_equivalent", "kgce_equal_value", "co2_t"):
            c[f] = sum_known([m["carriers"][i][f] for m in months])
    for i, prod in enumerate(base["products"]):
        for f in ("output", "output_value_cny", "energy_kgce"):
            prod[f] = sum_known([m["products"][i].get(f) for m in months])
        prod["kgce_per_unit"] = prod["energy_kgce"] / prod["output"] if prod["output"] else None
        prod["grade"] = grade_of(prod)
    for f in base["totals"]:
        base["totals"][f] = sum_known([m["totals"][f] for m in months])
    q = {
        "delivered": sum(m["quality"]["delivered"] for m in months),
        "required": sum(m["quality"]["required"] for m in months),
    }
    base["quality"] = flag(q, unit)
    base["quality"]["flagged_months"] = [m["period"] for m in months if m["quality"]["flagged"]]
    if base["quality"]["flagged_months"]:
        base["quality"]["flagged"] = True
        base["quality"]["reasons"].append("flagged months: " + ", ".join(base["quality"]["flagged_months"]))
    return base


def corrected(
    figures: dict[str, Any], coeffs: Coefficients, row: dict[str, Any], field: str, value: float, consumed: bool
) -> Any:
    """Set ``row[field]`` to ``value`` and carry it through (consumption of an unmetered carrier, products,
    totals, consistency) with the month's own coefficients; return the previous value."""
    carrier = row["carrier"]
    old = row[field]
    if field == "quantity":
        for prod in figures["products"]:
            q = prod.get("carrier_quantities")
            if q and carrier in q and row["quantity"]:
                q[carrier] *= value / row["quantity"]
    row[field] = value
    if field != "quantity" and not consumed:
        row["quantity"] = (
            (row["purchased"] or 0.0)
            + (row["produced"] or 0.0)
            - (row["exported"] or 0.0)
            - (row["stock_change"] or 0.0)
        )
    derive(figures, coeffs)
    months = {c["carrier"]: c["quantity"] for c in figures["carriers"]}
    for c in figures["quality"].get("consistency", []):
        c["month"] = m = months[c["carrier"]]
        c["deviation"] = abs(c["days_sum"] - m) / abs(m) if m else (0.0 if not c["days_sum"] else 1.0)
    return old
