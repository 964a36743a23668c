"""Fuel coefficients over time: a closed period keeps the coefficient it was computed with.

A fuel's coefficient (its measured ``lhv_gj_per_unit``) values its quantities in kgce, CO2 and heat. Quantities are
kept per calendar month; the terms that value them read, per month, the ratio of the coefficient that month had
to the one now (``Term.history``: channel key -> [(until, ratio)]). Declared changes (``lhv_history``) are built
in; an undeclared change found at a restart (the snapshot holds the coefficients in use) applies from the month of
the restart, and the months before keep theirs, unless ``restate_closed_periods`` asks to revalue them: either way
one log line says so.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from agent.kpi.indicators import Context
from agent.kpi.windows import WindowSpec


def carry(ctx: Context, saved: Mapping[str, Any], month: WindowSpec, now: float, *, restate: bool) -> list[str]:
    """Take the snapshot's coefficients (``KpiEngine.coefficients``) over into ``ctx``; the log lines of changes."""
    notes: list[str] = []
    before: Mapping[str, float] = saved.get("now", {})
    history: Mapping[str, list[list[float]]] = saved.get("history", {})
    start = month.anchor(now)
    when = datetime.fromtimestamp(start, ZoneInfo(month.tz)).strftime("%Y-%m")
    for key, gj in ctx.fuel_coefficients.items():
        old = before.get(key)
        if key in ctx.declared_history or old is None:
            continue
        prev = [(float(u), float(r)) for u, r in history.get(key, [])]
        if math.isclose(float(old), gj, rel_tol=1e-12):
            if prev:
                ctx.fuel_history[key] = prev
            continue
        name = ctx.fuel_names[key]
        if restate:
            notes.append(f"kpi: {name}: {old:g} -> {gj:g} GJ/unit, closed months restated (restate_closed_periods)")
            continue
        scale = float(old) / gj
        ctx.fuel_history[key] = [(u, r * scale) for u, r in prev] + [(start, scale)]
        notes.append(
            f"kpi: {name}: {old:g} -> {gj:g} GJ/unit applies from {when}; closed months keep {old:g} (declare "
            "lhv_history, or set restate_closed_periods: true to revalue them)"
        )
    return notes
