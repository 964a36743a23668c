"""``energy-center`` commands of the accounts (the config: ``-c FILE``, else $ENERGY_CENTER_CONFIG, else
/etc/energy-center/center.yaml):

    report month 2026-11 --unit NAME [--out DIR] [--font FILE]   PDF + CSV + XLSX of the month
    entries import FILE.csv --unit NAME                           check every row, store all or nothing
    entries add --unit NAME --kind delivery --date 2026-11-03 --carrier raw_coal --quantity 1200 --qty-unit t --who X
    entries list --unit NAME [--month 2026-11]
    meters [list] --unit NAME                                     the register, overdue calibrations flagged
    meters import FILE.csv --unit NAME                            add/update instruments (all or nothing)
    meters add|update --id ID [--carrier C --flow F --accuracy-class K --calibration-due D --measures T] --who W
    meters history [--id ID]                                      every register change, previous value kept
    accounts show --unit NAME (day|month|ytd) LABEL               the figures as JSON
    accounts tick [--now ISO]                                     one round: refresh, produce, send
    accounts restate --unit NAME (--month 2026-11|--day 2026-11-03) (--carrier C|--product P) --field F --value V
                     --who W --why TEXT                           a closed period corrected: new revision, record
    accounts refresh (day|month) LABEL                            re-read its quarters from InfluxDB (late data)
    outbox list --unit NAME [--kind K] [--state S] [--since DATE]
    outbox retry --unit NAME --receiver R                         re-queue what R refused

Exit codes: 0 done, 78 bad config or bad entries (every problem listed, nothing changed), 1 anything else.
``--now`` (ISO time) replaces the clock, for replaying a simulated month.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from agent.center.accounts.account import Ledger
from agent.center.accounts.config import AccountsConfig, UnitConfig
from agent.center.accounts.csvtable import command_line_table
from agent.center.accounts.entries import COLUMNS, import_csv, parse, store_entries
from agent.center.accounts.outbox import Outbox
from agent.center.accounts.store import open_store
from agent.config.refuse import refuse
from agent.errors import EX_CONFIG, ConfigError

COMMANDS = ("report", "entries", "meters", "accounts", "outbox")
DEFAULT_CONFIG = "/etc/energy-center/center.yaml"


def add_parsers(sub: Any) -> None:
    def common(p: argparse.ArgumentParser, unit: bool = True) -> None:
        p.add_argument("-c", "--config", default=os.environ.get("ENERGY_CENTER_CONFIG", DEFAULT_CONFIG))
        if unit:
            p.add_argument("--unit", required=False, help="the unit (default: the only one declared)")
        p.add_argument("--now", help="ISO time instead of the clock (replays)")

    rep = sub.add_parser("report", help="the monthly energy report (PDF, CSV, XLSX)")
    rep.add_argument("period", choices=["month"])
    rep.add_argument("label", help="YYYY-MM")
    rep.add_argument("--out", default=".", help="folder for the files")
    rep.add_argument("--font", help="TTF/TTC font with CJK glyphs")
    common(rep)

    ent = sub.add_parser("entries", help="manual entries: import a CSV, add one, list")
    ent.add_argument("action", choices=["import", "add", "list"])
    ent.add_argument("file", nargs="?", help="CSV file (import)")
    for col in ("kind", "date", "carrier", "product", "quantity", "qty-unit", "amount-cny", "who", "note"):
        ent.add_argument(f"--{col}", default="")
    ent.add_argument("--month", help="list: only this month")
    common(ent)

    met = sub.add_parser("meters", help="the meter register (GB 17167): list, import a CSV, add, update, history")
    met.add_argument("action", nargs="?", default="list", choices=["list", "import", "add", "update", "history"])
    met.add_argument("file", nargs="?", help="CSV file (import)")
    for col in ("id", "carrier", "flow", "accuracy-class", "calibration-due", "measures", "who", "note"):
        met.add_argument(f"--{col}", default="")
    common(met)

    acc = sub.add_parser("accounts", help="figures, a production round, restatements")
    acc.add_argument("action", choices=["show", "tick", "restate", "refresh"])
    acc.add_argument("kind", nargs="?", choices=["day", "month", "ytd"])
    acc.add_argument("label", nargs="?")
    for opt in ("month", "day", "carrier", "product", "field", "value", "who", "why"):
        acc.add_argument(f"--{opt}", default="")
    common(acc)

    out = sub.add_parser("outbox", help="upload records and their deliveries")
    out.add_argument("action", choices=["list", "retry"])
    out.add_argument("--kind", choices=["15m", "day", "month"])
    out.add_argument("--state", choices=["pending", "acked", "refused"])
    out.add_argument("--since", help="YYYY-MM-DD")
    out.add_argument("--receiver")
    common(out)


def _accounts(path: str) -> AccountsConfig:
    from agent.center.config import load

    config = load(path)
    if config.accounts is None:
        raise ConfigError([])
    return config.accounts


def _unit(cfg: AccountsConfig, name: str | None) -> UnitConfig:
    if name:
        return cfg.unit(name)
    if len(cfg.units) == 1:
        return cfg.units[0]
    raise KeyError(f"say which unit (--unit): {', '.join(u.name for u in cfg.units)}")


def main(args: argparse.Namespace) -> int:
    try:
        cfg = _accounts(args.config)
    except ConfigError as exc:
        if not exc.issues:
            print(
                f"{args.config}: no 'accounts' section: declare a unit first (README, Energy accounts)", file=sys.stderr
            )
            return EX_CONFIG
        return refuse(exc)
    now = dt.datetime.fromisoformat(args.now).timestamp() if args.now else time.time()
    try:
        return _run(args, cfg, now)
    except BrokenPipeError:  # `... | head`: the reader has enough
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except ConfigError as exc:
        refuse(exc)
        print("nothing was stored", file=sys.stderr)
        return EX_CONFIG
    except (KeyError, ValueError) as exc:
        print(f"energy-center: {exc.args[0] if exc.args else exc}", file=sys.stderr)
        return 1


def _run(args: argparse.Namespace, cfg: AccountsConfig, now: float) -> int:
    store = open_store(cfg.state_dir)
    if args.command == "accounts" and args.action == "tick":
        from agent.center.accounts.metered import InfluxReader
        from agent.center.accounts.service import AccountsService
        from agent.center.config import load

        reader = InfluxReader(load(args.config).influx)
        service = AccountsService(cfg, reader, store=store, clock=lambda: now)
        print(json.dumps(service.tick(now)))
        return 0
    unit = _unit(cfg, args.unit)
    ledger = Ledger(unit, store)
    if args.command == "report":
        from agent.center.accounts.report import build, write_csv, write_xlsx
        from agent.center.accounts.report_pdf import write_pdf

        rep = build(ledger, args.label, now)
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        stem = out / f"energy-report-{unit.name}-{rep.month}"
        write_pdf(rep, stem.with_suffix(".pdf"), args.font)
        write_csv(rep, stem.with_suffix(".csv"))
        write_xlsx(rep, stem.with_suffix(".xlsx"))
        flag = " QUALITY FLAGGED" if rep.figures["quality"]["flagged"] else ""
        print(f"{stem}.pdf, .csv, .xlsx written ({rep.status}{flag})")
        return 0
    if args.command == "entries":
        return _entries(args, unit, ledger, now)
    if args.command == "meters":
        return _meters(args, unit, ledger, now)
    if args.command == "accounts":
        if args.action == "show":
            print(json.dumps(ledger.figures(ledger.period(args.kind, args.label)), indent=1, ensure_ascii=False))
            return 0
        if args.action == "refresh":
            from agent.center.accounts.metered import InfluxReader
            from agent.center.config import load

            p = ledger.period(args.kind, args.label)
            reader = InfluxReader(load(args.config).influx)
            try:
                n = ledger.refresh(reader, p.start, p.end)
            finally:
                reader.close()
            late = ledger.figures(p)["quality"].get("late_data", [])
            print(f"{n} quarter values re-read for {p.label}; late data after closing: {len(late)} series")
            for x in late:
                print(f"  {x['series']}: closed {x['closed']:g}, stored now {x['stored_now']:g}")
            return 0
        if bool(args.month) == bool(args.day) or bool(args.carrier) == bool(args.product):
            raise ValueError("restate: give --month or --day, and --carrier or --product")
        kind, label = ("month", args.month) if args.month else ("day", args.day)
        item = args.carrier or args.product
        if args.product and args.field != "output":
            raise ValueError("a product's restatable field is output")
        rev, figures = ledger.restate(label, item, args.field, float(args.value), args.who, args.why, now, kind)
        box = Outbox(unit, store, cfg.settle_s, cfg.keep_days)
        rid = box.enqueue_restated(label, rev, figures, now, kind)
        print(f"{unit.name} {label} restated as revision {rev}; upload record {rid} queued")
        return 0
    box = Outbox(unit, store, cfg.settle_s, cfg.keep_days)
    if args.action == "retry":
        print(f"{box.retry_refused(args.receiver)} record(s) queued again for {args.receiver}")
        return 0
    since = dt.datetime.fromisoformat(args.since).replace(tzinfo=unit.zone()).timestamp() if args.since else 0.0
    for r in box.list(since, args.kind, args.state):
        made = dt.datetime.fromtimestamp(r["created_at"], unit.zone()).isoformat(timespec="seconds")
        print(
            f"{r['record_id']}\t{made}\t{r['receiver'] or '-'}\t{r['state'] or 'no receiver'}\t"
            f"attempts {r['attempts'] or 0}\t{(r['answer'] or '')[:80]}"
        )
    return 0


def _entries(args: argparse.Namespace, unit: UnitConfig, ledger: Ledger, now: float) -> int:
    store = ledger.store
    if args.action == "import":
        if not args.file:
            raise ValueError("entries import needs the CSV file")
        n = import_csv(args.file, unit, store, now)
        print(f"{n} entries stored for {unit.name}")
        return 0
    if args.action == "add":
        given = [args.kind, args.date, args.carrier, args.product, args.quantity, args.qty_unit, args.amount_cny]
        table = command_line_table(COLUMNS, [*given, args.who, args.note])
        today = dt.datetime.fromtimestamp(now, unit.zone()).date()
        entries = parse(table, "<command line>", unit, store, today)
        store_entries(store, unit, entries, now)
        print(
            f"stored: {entries[0].kind} {entries[0].day} {entries[0].carrier or entries[0].product} "
            f"{entries[0].quantity:g} {entries[0].qty_unit}"
        )
        return 0
    q = "SELECT * FROM entries WHERE unit=?"
    params: list[Any] = [unit.name]
    if args.month:
        q += " AND day LIKE ?"
        params.append(args.month + "-%")
    for e in store.db.execute(q + " ORDER BY day, kind", params):
        print(
            f"{e['day']}\t{e['kind']}\t{e['carrier'] or e['product']}\t{e['quantity']:g} {e['qty_unit']}\t"
            f"{'' if e['amount_cny'] is None else e['amount_cny']}\t{e['who']}\t{e['source']}\t{e['note']}"
        )
    return 0


def _meters(args: argparse.Namespace, unit: UnitConfig, ledger: Ledger, now: float) -> int:
    from agent.center.accounts import register

    store = ledger.store
    if args.action == "import":
        if not args.file:
            raise ValueError("meters import needs the CSV file")
        print(f"{register.import_csv(args.file, unit, store, now)} meter(s) stored in the register of {unit.name}")
        return 0
    if args.action in ("add", "update"):
        table = command_line_table(register.COLUMNS, [getattr(args, c) for c in register.COLUMNS])
        exists = args.id in {m.id for m, _ in register.effective(unit, store)}
        if exists != (args.action == "update"):
            what = "is already in the register: use meters update" if exists else "is not in the register: meters add"
            raise ValueError(f"meter {args.id} {what}")
        rows = register.parse(table, "<command line>", unit, store)
        register.store_rows(store, unit, rows, now)
        print(f"meter {args.id} stored in the register of {unit.name}")
        return 0
    if args.action == "history":
        for c in register.changes(unit, store, args.id or None):
            at = dt.datetime.fromtimestamp(c["at"], unit.zone()).isoformat(timespec="seconds")
            print(f"{at}\t{c['id']}\t{c['who']}\t{c['source']}\tprevious {c['previous'] or '-'}\tnew {c['new']}")
        return 0
    today = dt.datetime.fromtimestamp(now, unit.zone()).date()
    for m, where in register.effective(unit, store):
        state = "OVERDUE" if m.calibration_due < today else "in date"
        print(
            f"{m.id}\t{m.carrier}\t{m.flow}\tclass {m.accuracy_class}\tdue {m.calibration_due}\t{state}\t"
            f"{'gateway ' + m.device if m.device else 'manual'}\t{m.measures}\t{where}"
        )
    return 0
