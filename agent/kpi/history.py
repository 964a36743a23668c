"""History seeding: a line's past monthly totals, from a CSV the plant keeps, folded into the calendar months of
its inputs so year-to-date, same-month-last-year and rolling-12-month values (and their grades) exist from the
first day. Pure: text in, months seeded; the runtime reads the file (``kpi.lines[].history_csv``).

Format (UTF-8, comma-separated, a header row, one row per local calendar month, ``#`` comments allowed)::

    month,production,electricity_kwh,raw_coal
    2025-01,152000,9120000,27500
    2025-02,139000,8410000,25300

``month`` is YYYY-MM; ``production`` the month's production in the line's ``production_unit`` (equivalent
production); ``electricity_kwh`` the electricity of the line's meters; every other column a carrier of one of the
line's fuels (its quantity in the fuel point's unit) or ``credit:<carrier>`` for a credit. A column the line has no
input for, a bad number or a bad month is an error naming its row and column. Each value goes to the line's first
input of that kind; the months are marked seeded: every KPI value whose period includes one says so in ``detail``
(``seeded_months``) and ``reason``. Months the agent measured itself are never overwritten, so seeding again after a
restart changes nothing.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from agent.config.kpi import LineConfig, PointRefConfig

_MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


class HistoryError(ValueError):
    """The history file does not fit the line: the message names the row and column."""


@dataclass(frozen=True, slots=True)
class MonthRow:
    year: int
    month: int
    values: Mapping[str, float]  # column -> quantity


def parse_history(text: str, where: str = "history") -> list[MonthRow]:
    """The rows of a history CSV; HistoryError for a bad month or number (``where`` names the file)."""
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    reader = csv.reader(io.StringIO("\n".join(lines)))
    header = [h.strip() for h in next(reader, [])]
    if not header or header[0] != "month":
        raise HistoryError(f"{where}: the first column must be 'month' (YYYY-MM), then production and carriers")
    rows: list[MonthRow] = []
    seen: set[tuple[int, int]] = set()
    for n, row in enumerate(reader, start=2):
        m = _MONTH.match(row[0].strip()) if row else None
        if m is None:
            raise HistoryError(f"{where}: row {n}: month {row[0] if row else ''!r} is not YYYY-MM")
        key = (int(m.group(1)), int(m.group(2)))
        if key in seen:
            raise HistoryError(f"{where}: row {n}: month {row[0]} is given twice")
        seen.add(key)
        values: dict[str, float] = {}
        for col, cell in zip(header[1:], row[1:], strict=False):
            if not cell.strip():
                continue
            try:
                values[col] = float(cell)
            except ValueError:
                raise HistoryError(f"{where}: row {n}, column {col}: {cell!r} is not a number") from None
        rows.append(MonthRow(key[0], key[1], values))
    return rows


def history_refs(
    line: LineConfig, columns: Sequence[str], where: str = "history"
) -> dict[str, tuple[PointRefConfig, float]]:
    """Which input each column seeds, with the factor from the column's quantity to the input's amount."""
    out: dict[str, tuple[PointRefConfig, float]] = {}
    for col in columns:
        if col == "production":
            p = line.production[0]
            out[col] = (p, 1.0 / p.equivalent_factor)
        elif col == "electricity_kwh" and line.electricity:
            out[col] = (line.electricity[0], 1.0)
        elif col.startswith("credit:") and (c := next((c for c in line.credits if c.carrier == col[7:]), None)):
            out[col] = (c, 1.0)
        elif f := next((f for f in line.fuels if f.carrier == col), None):
            out[col] = (f, 1.0)
        else:
            raise HistoryError(
                f"{where}: column {col!r}: line '{line.name}' has no such input (production, electricity_kwh, the "
                "carrier of one of its fuels, or credit:<carrier>)"
            )
    return out


Seed = Callable[[PointRefConfig, int, int, float], bool]  # (input, year, month, amount) -> seeded (not measured)


def seed_line(line: LineConfig, rows: Sequence[MonthRow], seed: Seed, where: str = "history") -> tuple[int, int]:
    """Seed every row's quantities through ``seed``; (months seeded, months skipped because measured)."""
    columns = sorted({c for r in rows for c in r.values})
    refs = history_refs(line, columns, where)
    done = skipped = 0
    for r in rows:
        results = [seed(refs[c][0], r.year, r.month, v * refs[c][1]) for c, v in r.values.items()]
        done += any(results)
        skipped += not all(results)
    return done, skipped
