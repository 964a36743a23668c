"""The meter register (GB 17167) kept in accounts.sqlite beside the meters declared in center.yaml.

center.yaml declares the meters a gateway reads (device and role: the series the account is computed from) and may
declare manual instruments. The register in the database adds what changes without a config change: new manual
instruments (a weighbridge, a laboratory balance), a new calibration due date after a calibration, a new accuracy
class or description after a replacement. The effective register is the declared meters with the stored changes
applied, then the stored instruments that are not declared.

CSV (UTF-8, a header line, columns in any order)::

    id,carrier,flow,accuracy_class,calibration_due,measures,who,note
    WB-2,raw_coal,purchased,III,2027-05-31,second weighbridge,Li Wei,installed 2026-11-12
    E-001,electricity,purchased,0.2S,2027-11-30,110 kV intake,Li Wei,calibrated 2026-11-28, certificate 1187

A row whose id is already in the register (declared or stored) updates it; the previous values are kept in
``meter_changes`` with who, when and the file line. Refused, each with ``file:line:col``: a missing column, an unknown
carrier or flow (with a did-you-mean), an empty accuracy class or one longer than 16 characters, a due date that is
not YYYY-MM-DD, an id that is not a name or repeats another row of the file, and a row that changes the carrier or
flow of a meter a gateway reads (that binding is center.yaml's: change it there). An import is all or nothing.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.center.accounts.config import MeterConfig, UnitConfig
from agent.center.accounts.csvtable import column_of, near, open_table, read_csv_file
from agent.center.accounts.store import Store
from agent.errors import ConfigError, ConfigIssue

COLUMNS = ("id", "carrier", "flow", "accuracy_class", "calibration_due", "measures", "who", "note")
REQUIRED = ("id", "who")
FLOWS = ("consumed", "purchased", "produced", "exported")
EDITABLE = ("carrier", "flow", "accuracy_class", "calibration_due", "measures")
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass(frozen=True, slots=True)
class MeterRow:
    id: str
    values: dict[str, str]  # only the columns given (an update may give only a new due date)
    who: str
    note: str
    source: str  # file:line


def effective(unit: UnitConfig, store: Store) -> list[tuple[MeterConfig, str]]:
    """(meter, where its entry comes from): the declared meters with stored changes, then stored instruments."""
    stored = {
        r["id"]: r
        for r in store.db.execute("SELECT * FROM meter_register WHERE unit=? ORDER BY id", (unit.name,)).fetchall()
    }
    out: list[tuple[MeterConfig, str]] = []
    for m in unit.meters:
        r = stored.pop(m.id, None)
        if r is None:
            out.append((m, "center.yaml"))
            continue
        out.append((m.model_copy(update=_fields(r)), f"center.yaml, changed by {r['who']} ({r['source']})"))
    for r in stored.values():
        meter = MeterConfig.model_validate({"id": r["id"], **_fields(r)})
        out.append((meter, f"register, {r['who']} ({r['source']})"))
    return out


def _fields(r: Any) -> dict[str, Any]:
    return {
        "carrier": r["carrier"],
        "flow": r["flow"],
        "accuracy_class": r["accuracy_class"],
        "calibration_due": dt.date.fromisoformat(r["calibration_due"]),
        "measures": r["measures"],
    }


def parse(text: str, display: str, unit: UnitConfig, store: Store) -> list[MeterRow]:
    """Every row checked; ConfigError lists every problem with its position."""
    issues: list[ConfigIssue] = []
    lines, header, reader = open_table(text, display, list(COLUMNS), REQUIRED)
    known = {m.id: m for m, _ in effective(unit, store)}
    declared = {m.id: m for m in unit.meters}
    carriers = [c.name for c in unit.carriers]
    out: list[MeterRow] = []
    seen: dict[str, int] = {}
    for row in reader:
        line = reader.line_num
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            issues.append(ConfigIssue(display, line, 1, "", f"{len(row)} fields, the header has {len(header)}"))
            continue
        f = {h: cell.strip() for h, cell in zip(header, row, strict=True)}
        before = len(issues)

        def err(column: str, message: str, line: int = line) -> None:
            issues.append(ConfigIssue(display, line, column_of(lines[line - 1], header.index(column)), column, message))

        mid = f["id"]
        if not _ID.match(mid):
            err("id", f"{mid!r} is not a meter id; use letters, digits, '-', '_' or '.'")
        elif mid in seen:
            err("id", f"meter {mid} repeats line {seen[mid]}; one row per meter")
        seen.setdefault(mid, line)
        values = {k: f[k] for k in EDITABLE if f.get(k, "")}
        old = known.get(mid)
        if old is None:
            for k in ("carrier", "accuracy_class", "calibration_due"):
                if k not in values:
                    where = k if k in header else "id"
                    err(where, f"meter {mid} is new to the register: give its {k}")
        if "carrier" in values and values["carrier"] not in carriers:
            c = values["carrier"]
            err(
                "carrier",
                f"{c!r} is not a carrier of unit {unit.name}; declared: {', '.join(carriers)}{near(c, carriers)}",
            )
        if "flow" in values and values["flow"] not in FLOWS:
            fl = values["flow"]
            err("flow", f"{fl!r} is not a flow; use one of {', '.join(FLOWS)}{near(fl, list(FLOWS))}")
        if "accuracy_class" in values and len(values["accuracy_class"]) > 16:
            err("accuracy_class", "an accuracy class is at most 16 characters (e.g. 0.5S, 1.0, III)")
        if "calibration_due" in values:
            try:
                dt.date.fromisoformat(values["calibration_due"])
            except ValueError:
                err("calibration_due", f"{values['calibration_due']!r} is not a date; write YYYY-MM-DD")
        dm = declared.get(mid)
        if dm is not None and dm.device is not None:
            for k in ("carrier", "flow"):
                if k in values and values[k] != getattr(dm, k):
                    err(
                        k,
                        f"meter {mid} is read from {dm.device} as {k} {getattr(dm, k)!r} in center.yaml; "
                        "change that binding there, not in the register",
                    )
        if old is not None and all(values.get(k) == _text(getattr(old, k)) for k in values) and values:
            err("id", f"meter {mid}: nothing changes (the register already says so)")
        if not f["who"]:
            err("who", "say who changed the register")
        if len(issues) == before:
            out.append(MeterRow(mid, values, f["who"], f.get("note", ""), f"{display}:{line}"))
    if issues:
        raise ConfigError(issues)
    return out


def _text(v: Any) -> str:
    return v.isoformat() if isinstance(v, dt.date) else str(v)


def store_rows(store: Store, unit: UnitConfig, rows: list[MeterRow], now: float) -> int:
    """One transaction: each row's meter written whole (the previous entry, if any, kept in meter_changes)."""
    current = {m.id: m for m, _ in effective(unit, store)}
    with store.transaction() as db:
        for r in rows:
            old = current.get(r.id)
            base = (
                {k: _text(getattr(old, k)) for k in EDITABLE}
                if old is not None
                else {"flow": "consumed", "measures": ""}
            )
            new = base | r.values
            db.execute(
                "INSERT OR REPLACE INTO meter_register (unit, id, carrier, flow, accuracy_class, calibration_due, "
                "measures, who, note, source, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    unit.name,
                    r.id,
                    new["carrier"],
                    new["flow"],
                    new["accuracy_class"],
                    new["calibration_due"],
                    new["measures"],
                    r.who,
                    r.note,
                    r.source,
                    now,
                ),
            )
            db.execute(
                "INSERT INTO meter_changes (unit, id, previous, new, who, note, source, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    unit.name,
                    r.id,
                    None if old is None else json.dumps(base, sort_keys=True),
                    json.dumps(new, sort_keys=True),
                    r.who,
                    r.note,
                    r.source,
                    now,
                ),
            )
    return len(rows)


def import_csv(path: str | Path, unit: UnitConfig, store: Store, now: float) -> int:
    text = read_csv_file(path)
    return store_rows(store, unit, parse(text, str(path), unit, store), now)


def changes(unit: UnitConfig, store: Store, meter: str | None = None) -> list[dict[str, Any]]:
    q = "SELECT * FROM meter_changes WHERE unit=?" + (" AND id=?" if meter else "") + " ORDER BY at, seq"
    args = [unit.name, meter] if meter else [unit.name]
    return [dict(r) for r in store.db.execute(q, args)]
