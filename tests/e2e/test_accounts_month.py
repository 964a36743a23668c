"""A simulated month through MQTT, the centre and InfluxDB into the accounts: totals match the simulator's ground
truth within 0.5 % (with a meter replacement and a two-hour controller outage inside the month), the gaps carry
the cause the gateway published, every upload record reaches the HTTPS receiver once, and the report's PDF, CSV
and XLSX carry the same figures. What is real and what is simulated: tests/e2e/accounts_month.py."""

from __future__ import annotations

import csv
import shutil
import subprocess
from pathlib import Path

import pytest
from openpyxl import load_workbook

from agent.center.cli import main
from tests.e2e.accounts_month import run_month

pytestmark = pytest.mark.e2e


@pytest.mark.long(seconds=25)  # a simulated month through MQTT, the centre and InfluxDB
def test_a_simulated_month_matches_ground_truth_and_is_reported_and_uploaded(tmp_path: Path) -> None:
    result = run_month(tmp_path, poll_s=300.0)
    assert main(["validate", str(tmp_path / "center.yaml")]) == 0  # the README's follow-on commands take it
    got, want = result["account"], result["truth"]
    for key, true in want.items():
        assert got[key] == pytest.approx(true, rel=0.005, abs=1e-6), key
    rep = result["report"]
    f = rep.figures
    assert f["provisional"] is False and f["revision"] == 0  # closed on December 1st by the outbox round
    gaps = f["quality"]["gaps"]
    kiln = [g for g in gaps if g["series"] in ("C-KILN", "output:clinker")]
    assert kiln and {g["cause"] for g in kiln} == {"device kiln1 bad: timeout after 1000 ms"}
    assert all(g["from"].startswith("2026-11-10T0") for g in kiln)
    assert 0.99 < f["quality"]["completeness"] < 1.0 and not f["quality"]["flagged"]
    # every record once at the receiver: 2880 quarters of November + the first of December, 30 days, 1 month
    assert result["outbox"] == {"15m": 2881, "day": 30, "month": 1}
    assert len(result["received"]) == 2912 and max(result["received"].values()) == 1
    # the same figures in CSV, XLSX and PDF
    stem: Path = result["stem"]
    with stem.with_suffix(".csv").open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    total = next(r for r in rows if r["section"] == "totals" and r["field"] == "comprehensive_kgce_equivalent")
    assert float(total["value"]) == pytest.approx(f["totals"]["comprehensive_kgce_equivalent"], rel=1e-12)
    ws = load_workbook(stem.with_suffix(".xlsx"))["totals"]
    xlsx = {r[1]: r[2] for r in ws.iter_rows(min_row=2, values_only=True)}
    assert xlsx["comprehensive_kgce_equivalent"] == pytest.approx(float(total["value"]), rel=1e-14)
    assert len(rows) == sum(
        load_workbook(stem.with_suffix(".xlsx"))[s].max_row - 1 for s in {r["section"] for r in rows}
    )
    if shutil.which("pdftotext"):
        text = subprocess.run(
            ["pdftotext", "-layout", str(stem.with_suffix(".pdf")), "-"], capture_output=True, text=True, check=True
        ).stdout
        tce = f"{f['totals']['comprehensive_kgce_equivalent'] / 1000:,.2f}"
        assert tce in text and "Sign-off" in text and "OVERDUE" in text  # PV-01 calibration was due 2026-10-31
