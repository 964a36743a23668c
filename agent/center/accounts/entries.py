"""Manual entries: deliveries, stock counts, laboratory heating values, output, invoices; CSV import and one-by-one.

CSV (UTF-8, a header line, columns in any order; ``carrier`` or ``product`` as the kind needs)::

    kind,date,carrier,product,quantity,unit,amount_cny,who,note
    delivery,2026-11-03,raw_coal,,1200.5,t,,Li Wei,weighbridge ticket 3342
    stock,2026-11-30,raw_coal,,350,t,,Li Wei,month-end count
    lhv,2026-11-15,raw_coal,,22.1,GJ/t,,Lab,sample 11-15
    output,2026-11-30,,clinker,95000,t,31000000,Wang Fang,
    invoice,2026-11-30,electricity,,12000000,kWh,7200000,Zhao Min,invoice 0042

Kinds: ``delivery`` and ``invoice`` (purchased quantity of a carrier), ``stock`` (quantity on hand at the end of
that day), ``lhv`` (measured low heating value, GJ per unit of the carrier, for that month), ``output`` (product
quantity and optional value in CNY). Every row is checked before anything is stored, and an import is one
transaction: one bad row and nothing of the file is kept. Errors are ``file:line:col: what, and how to fix it``.
Refused: an unknown kind, carrier or product (with a did-you-mean), a unit that is not the carrier's, a negative
quantity (stocks included) or a zero heating value, a date in the future or not YYYY-MM-DD, a row that repeats
another (same kind, date, carrier/product) in the file or in the database.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from pathlib import Path

from agent.center.accounts.coefficients import carrier_coefficient
from agent.center.accounts.config import UnitConfig
from agent.center.accounts.csvtable import column_of, near, open_table, read_csv_file
from agent.center.accounts.store import Store
from agent.errors import ConfigError, ConfigIssue

KINDS = ("delivery", "invoice", "stock", "lhv", "output")
COLUMNS = ("kind", "date", "carrier", "product", "quantity", "unit", "amount_cny", "who", "note")
REQUIRED = ("kind", "date", "quantity", "unit", "who")


@dataclass(frozen=True, slots=True)
class Entry:
    kind: str
    day: str
    carrier: str
    product: str
    quantity: float
    qty_unit: str
    amount_cny: float | None
    who: str
    note: str
    source: str  # file:line


def parse(text: str, display: str, unit: UnitConfig, store: Store, today: dt.date) -> list[Entry]:
    """Every row of a CSV checked; raise ConfigError listing every problem with its position."""
    issues: list[ConfigIssue] = []

    def err(line: int, column: str | None, message: str) -> None:
        col = 1
        if column is not None and 1 <= line <= len(lines):
            col = column_of(lines[line - 1], header.index(column) if column in header else 0)
        issues.append(ConfigIssue(display, line, col, column or "", message))

    lines, header, reader = open_table(text, display, list(COLUMNS), REQUIRED)
    carriers = [c.name for c in unit.carriers]
    products = [p.name for p in unit.products]
    out: list[Entry] = []
    seen: dict[tuple[str, str, str, str], int] = {}
    for row in reader:
        line = reader.line_num
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            err(line, None, f"{len(row)} fields, the header has {len(header)}")
            continue
        f = {h: cell.strip() for h, cell in zip(header, row, strict=True)}
        before = len(issues)
        kind = f["kind"]
        if kind not in KINDS:
            err(
                line,
                "kind",
                f"{kind!r} is not a kind of entry; use one of {', '.join(KINDS)}{near(kind, list(KINDS))}",
            )
            continue
        try:
            day = dt.date.fromisoformat(f["date"])
            if day > today:
                err(line, "date", f"{day} is in the future (today is {today}); enter what happened")
        except ValueError:
            err(line, "date", f"{f['date']!r} is not a date; write YYYY-MM-DD")
            day = today
        carrier, product = f.get("carrier", ""), f.get("product", "")
        want_unit = ""
        if kind == "output":
            if product not in products:
                err(
                    line,
                    "product",
                    f"{product!r} is not a product of unit {unit.name}; declared: "
                    f"{', '.join(products) or 'none'}{near(product, products)}",
                )
            else:
                want_unit = next(p.unit for p in unit.products if p.name == product)
        elif carrier not in carriers:
            err(
                line,
                "carrier",
                f"{carrier!r} is not a carrier of unit {unit.name}; declared: "
                f"{', '.join(carriers)}{near(carrier, carriers)}",
            )
        else:
            cu = carrier_coefficient(unit, unit.carrier(carrier)).unit
            want_unit = f"GJ/{cu}" if kind == "lhv" else cu
        if want_unit and f["unit"] != want_unit:
            err(line, "unit", f"{f['unit']!r}: {carrier or product} is entered in {want_unit}")
        try:
            qty = float(f["quantity"])
            if not math.isfinite(qty):
                raise ValueError
            if qty < 0:
                what = "a stock cannot be negative" if kind == "stock" else "enter a positive quantity"
                err(line, "quantity", f"{qty:g} is negative: {what} (a correction of a closed month is a restatement)")
            elif qty == 0 and kind == "lhv":
                err(line, "quantity", "a heating value of 0 is not a measurement")
        except ValueError:
            err(line, "quantity", f"{f['quantity']!r} is not a number")
            qty = 0.0
        amount: float | None = None
        if f.get("amount_cny"):
            try:
                amount = float(f["amount_cny"])
            except ValueError:
                err(line, "amount_cny", f"{f['amount_cny']!r} is not a number")
        if not f["who"]:
            err(line, "who", "say who entered it")
        key = (kind, day.isoformat(), carrier if kind != "output" else "", product if kind == "output" else "")
        stored = store.db.execute(
            "SELECT source FROM entries WHERE unit=? AND kind=? AND day=? AND carrier=? AND product=?",
            (unit.name, *key),
        ).fetchone()
        if key in seen:
            err(line, "date", f"repeats line {seen[key]} ({kind} of {key[2] or key[3]} on {key[1]}); one entry per day")
        elif stored is not None:
            err(line, "date", f"already entered ({stored[0]}); a change to a stored entry is a restatement")
        seen.setdefault(key, line)
        if len(issues) == before:
            out.append(
                Entry(
                    kind,
                    key[1],
                    key[2],
                    key[3],
                    qty,
                    f["unit"],
                    amount,
                    f["who"],
                    f.get("note", ""),
                    f"{display}:{line}",
                )
            )
    if issues:
        raise ConfigError(issues)
    return out


def store_entries(store: Store, unit: UnitConfig, entries: list[Entry], now: float) -> int:
    with store.transaction() as db:
        db.executemany(
            "INSERT INTO entries (unit, kind, day, carrier, product, quantity, qty_unit, amount_cny, who, note, "
            "source, entered_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    unit.name,
                    e.kind,
                    e.day,
                    e.carrier,
                    e.product,
                    e.quantity,
                    e.qty_unit,
                    e.amount_cny,
                    e.who,
                    e.note,
                    e.source,
                    now,
                )
                for e in entries
            ],
        )
    return len(entries)


def import_csv(path: str | Path, unit: UnitConfig, store: Store, now: float) -> int:
    """Check every row, then store all of them in one transaction (or none, raising ConfigError)."""
    text = read_csv_file(path)
    today = dt.datetime.fromtimestamp(now, unit.zone()).date()
    entries = parse(text, str(path), unit, store, today)
    return store_entries(store, unit, entries, now)
