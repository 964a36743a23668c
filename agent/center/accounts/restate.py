"""Restatements of a closed day or month, and late data noticed after a period closed.

A restatement is a new revision of the closed figures with one value changed, derived figures recomputed with the
period's own coefficients; the previous value, who, when and why are kept in ``restatements``. What can be restated:
a carrier's ``quantity``, ``purchased``, ``produced``, ``exported``, ``stock_change``, its laboratory heating value
(``lhv_gj_per_unit``: the coefficient and CO2 change, the quantity does not), or a product's ``output`` quantity
(its unit consumption and grade change). A restated day does not change its month (a month correction is the
month's own restatement); a restated month changes that month and the year to date, nothing else.

Late data: when the quarters of a closed period, as stored now, sum to something else than when it closed (readings
that reached InfluxDB after the closing), the figures stay as closed and the quality section lists each series with
the closed and the current quantity; a restatement is how the late data enters the account.
"""

from __future__ import annotations

import json
from typing import Any, Protocol

from agent.center.accounts.coefficients import Coefficients, carrier_coefficient
from agent.center.accounts.config import UnitConfig
from agent.center.accounts.figures import FIELDS, corrected, derive, flag
from agent.center.accounts.store import Store
from agent.center.accounts.tables import kj_per_kgce


class Ledger(Protocol):  # agent.center.accounts.account.Ledger (which imports this module)
    unit: UnitConfig
    store: Store

    def latest(self, kind: str, label: str) -> tuple[int, dict[str, Any], Coefficients, Any] | None: ...


LHV = "lhv_gj_per_unit"
OUTPUT = "output"  # a product's output quantity
LATE_REL = 1e-9  # a quarter sum differing by more than this (relative, and 1e-6 absolute) is late data


def restate(
    ledger: Ledger, kind: str, label: str, item: str, field: str, value: float, who: str, why: str, now: float
) -> tuple[int, dict[str, Any]]:
    """A correction of a closed day or month (``item``: a carrier, or a product for ``output``)."""
    if kind not in ("day", "month"):
        raise ValueError(f"restate a day or a month, not {kind!r}")
    if field not in (*FIELDS, LHV, OUTPUT):
        raise ValueError(f"field {field!r}: restate one of {', '.join((*FIELDS, LHV, OUTPUT))}")
    if not who.strip() or not why.strip():
        raise ValueError("a restatement needs who and why")
    unit = ledger.unit
    have = ledger.latest(kind, label)
    if have is None:
        raise ValueError(f"{kind} {label} of unit {unit.name} is not closed: enter the correction instead")
    rev, figures, coeffs, _row = have
    if field == OUTPUT:
        prod = next((p for p in figures["products"] if p["product"] == item), None)
        if prod is None:
            raise ValueError(f"product {item!r} is not in the account of {unit.name}")
        if value < 0:
            raise ValueError("an output quantity cannot be negative")
        old = prod["output"]
        prod["output"] = value
        derive(figures, coeffs)
    else:
        row = next((c for c in figures["carriers"] if c["carrier"] == item), None)
        if row is None:
            raise ValueError(f"carrier {item!r} is not in the account of {unit.name}")
        if field == LHV:  # a laboratory heating value: the carrier's coefficients change, its quantity does not
            before = coeffs.carriers[item]
            old = before.kgce_per_unit / (1e6 / kj_per_kgce())
            after = carrier_coefficient(unit, unit.carrier(item), value, f"restated LHV {value:g} GJ/unit")
            coeffs.carriers[item] = after
            row["kgce_per_unit"], row["tco2_per_unit"] = after.kgce_per_unit, after.tco2_per_unit
            row["kgce_per_unit_equal_value"] = (
                after.kgce_per_unit if before.kgce_per_unit_equal is None else (row["kgce_per_unit_equal_value"])
            )
            row["coefficient_source"] = after.source
            corrected(figures, coeffs, row, "quantity", row["quantity"], True)
        else:
            consumed = any(m.carrier == item and m.flow == "consumed" for m in unit.meters)
            old = corrected(figures, coeffs, row, field, value, consumed)
    figures["quality"] = flag(figures["quality"], unit)
    with ledger.store.transaction() as db:
        db.execute(
            "INSERT INTO closed VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (unit.name, kind, label, rev + 1, json.dumps(figures), json.dumps(coeffs.to_json()), now, who, why),
        )
        db.execute(
            "INSERT INTO restatements (unit, kind, period, revision, carrier, field, old, new, who, at, why) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (unit.name, kind, label, rev + 1, item, field, old, value, who, now, why),
        )
    return rev + 1, figures


def late_data(closed: dict[str, Any], now: dict[str, tuple[float, int, int]]) -> list[dict[str, Any]]:
    """Series whose stored quantity differs from the one the period was closed with."""
    then: dict[str, float] = closed.get("metered_series") or {}
    out = []
    for series in sorted(set(then) | set(now)):
        a, b = then.get(series, 0.0), now.get(series, (0.0, 0, 0))[0]
        if abs(b - a) > max(1e-6, LATE_REL * abs(a)):
            out.append({"series": series, "closed": a, "stored_now": b, "difference": b - a})
    return out
