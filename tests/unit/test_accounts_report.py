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


@pytest.mark.long  # a month of accounts rendered as PDF, CSV and XLSX
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
