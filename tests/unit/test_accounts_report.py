"""The report and restatement commands: a restated month says so in the PDF, the CSV, the XLSX and a new upload
record; a flagged month says so; overdue calibrations are listed."""

from __future__ import annotations

import csv
import datetime as dt
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from openpyxl import load_workbook

from agent.center.accounts.service import AccountsService
from agent.center.cli import main
from tests.unit.accounts_unit import NOV1, CounterSource, accounts_config, unit_doc

DAY = 86400.0


def pdf_text(path: Path) -> str:
    if not shutil.which("pdftotext"):
        pytest.skip("pdftotext is not installed: run deploy/test.sh, which installs poppler-utils")
    return subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True, check=True).stdout


@pytest.mark.long(seconds=6)  # a month of accounts rendered as PDF, CSV and XLSX
def test_restated_and_flagged_month_in_every_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    state = tmp_path / "state"
    # the grid meter is silent for eight days: electricity is below 90 % complete for the month
    src = CounterSource(silent=[("E-GRID", NOV1 + 10 * DAY, NOV1 + 18 * DAY)])
    svc = AccountsService(accounts_config(str(state)), src, clock=lambda: NOV1)
    t = NOV1
    while t < NOV1 + 30 * DAY + 900:
        t += 3600
        svc.tick(t)
    svc.store.close()
    center = tmp_path / "center.yaml"
    center.write_text(
        json.dumps({"influx": {"database": "e"}, "dead_letter": {"file": "d"}, "accounts": unit_doc(str(state))})
    )
    now = dt.datetime.fromtimestamp(NOV1 + 31 * DAY, dt.UTC).isoformat()
    base = ["-c", str(center), "--now", now]
    assert (
        main(
            [
                "accounts",
                "restate",
                *base,
                "--month",
                "2026-11",
                "--carrier",
                "raw_coal",
                "--field",
                "quantity",
                "--value",
                "2700",
                "--who",
                "Li Wei",
                "--why",
                "weighbridge recalibration",
            ]
        )
        == 0
    )
    assert "revision 1; upload record cement-1/month/2026-11/r1 queued" in capsys.readouterr().out
    out = tmp_path / "out"
    assert main(["report", "month", "2026-11", "--out", str(out), *base]) == 0
    said = capsys.readouterr().out
    assert "RESTATED (revision 1)" in said and "QUALITY FLAGGED" in said
    stem = out / "energy-report-cement-1-2026-11"
    text = pdf_text(stem.with_suffix(".pdf"))
    assert "RESTATED (revision 1)" in text and "weighbridge recalibration" in text and "Li Wei" in text
    assert "QUALITY BELOW THRESHOLD" in text and "OVERDUE" in text  # E-PV was due 2026-10-31
    with stem.with_suffix(".csv").open(encoding="utf-8") as fh:
        rows = [(r["section"], r["item"], r["field"], r["value"]) for r in csv.DictReader(fh)]
    assert ("report", "cement-1", "status", "RESTATED (revision 1)") in rows
    assert ("report", "cement-1", "quality_flagged", "True") in rows
    assert ("restatements", "2026-11 r1 raw_coal.quantity", "new", "2700.0") in rows
    assert ("meters", "E-PV", "overdue", "True") in rows and ("meters", "E-GRID", "overdue", "False") in rows
    wb = load_workbook(stem.with_suffix(".xlsx"))
    xrows = {(r[0], r[1]): r[2] for r in wb["restatements"].iter_rows(min_row=2, values_only=True)}
    assert xrows[("2026-11 r1 raw_coal.quantity", "who")] == "Li Wei"
    assert ("cement-1", "status", "RESTATED (revision 1)") in set(
        wb["report"].iter_rows(min_row=2, max_col=3, values_only=True)
    )
    assert main(["outbox", "list", *base, "--kind", "month"]) == 0
    listed = capsys.readouterr().out
    assert "cement-1/month/2026-11/r0" in listed and "cement-1/month/2026-11/r1" in listed
    assert main(["meters", *base]) == 0
    assert "E-PV\tpv\tproduced\tclass 1.0\tdue 2026-10-31\tOVERDUE" in capsys.readouterr().out


def test_report_without_accounts_section_says_what_to_do(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    center = tmp_path / "center.yaml"
    center.write_text(json.dumps({"influx": {"database": "e"}, "dead_letter": {"file": "d"}}))
    assert main(["report", "month", "2026-11", "-c", str(center)]) == 78
    assert "no 'accounts' section" in capsys.readouterr().err


def test_same_month_last_year_gives_the_trend(tmp_path: Path) -> None:
    from agent.center.accounts.account import Ledger
    from agent.center.accounts.report import build
    from agent.center.accounts.store import open_store

    nov25 = dt.datetime(2025, 11, 1, tzinfo=dt.timezone(dt.timedelta(hours=8))).timestamp()
    cfg = accounts_config(str(tmp_path))
    led = Ledger(cfg.units[0], open_store(tmp_path))
    led.refresh(CounterSource(start=nov25 - 3600), nov25, nov25 + 30 * DAY)
    led.refresh(CounterSource(start=nov25 - 3600), NOV1, NOV1 + 30 * DAY)
    rep = build(led, "2026-11", NOV1 + 31 * DAY)
    assert rep.last_year is not None
    this, last = rep.figures["products"][0]["kgce_per_unit"], rep.last_year["products"][0]["kgce_per_unit"]
    assert this == pytest.approx(last)  # the same rates both years
    row = next(r for r in rep.rows if r[0] == "products" and r[2] == "same_month_last_year_kgce_per_unit")
    assert row[3] == pytest.approx(last)
    assert build(led, "2026-10", NOV1 + 31 * DAY).last_year is None  # no October 2025 data: no trend shown


def test_records_are_kept_six_months_and_pending_ones_forever(tmp_path: Path) -> None:
    from agent.center.accounts.config import AccountsConfig
    from agent.center.accounts.outbox import Outbox

    doc = unit_doc(str(tmp_path), receivers=[{"name": "p", "url": "https://127.0.0.1:9/u"}]) | {"keep_days": 183}
    cfg = AccountsConfig.model_validate(doc)
    svc = AccountsService(cfg, CounterSource(), clock=lambda: NOV1)
    for t in (NOV1 + 3660, NOV1 + 7260):
        svc.outboxes[0].produce(t)
    box: Outbox = svc.outboxes[0]
    svc.store.db.execute("UPDATE deliveries SET state='acked' WHERE record_id LIKE '%T00:%'")
    assert box.purge(NOV1 + 182 * DAY) == 0  # younger than six months: kept, queryable
    assert len(box.list(kind="15m")) == 8
    assert box.purge(NOV1 + 184 * DAY) == 4  # the acknowledged hour goes, the pending one stays
    assert {r["state"] for r in box.list()} == {"pending"}
