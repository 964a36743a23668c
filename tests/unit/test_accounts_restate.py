"""Restating a closed day and a product's output (not only a month's carrier field), with who, when, why and the
previous value kept and shown in every output; data that reaches the database after a period closed is listed in
the quality section (counted, closed figures kept) instead of being silently ignored."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from agent.center.accounts.account import Ledger
from agent.center.accounts.outbox import Outbox
from agent.center.accounts.periods import day, month
from agent.center.accounts.report import build
from agent.center.accounts.report_pdf import write_pdf
from agent.center.accounts.store import open_store
from agent.center.cli import main
from tests.unit.accounts_unit import NOV1, RATES, CounterSource, accounts_config, unit_doc

DAY = 86400.0
ZONE = ZoneInfo("Asia/Shanghai")
NOV = month("2026-11", ZONE)
DEC2 = NOV.end + DAY


def ledger_for(tmp_path: Path, source: CounterSource, t1: float) -> Ledger:
    cfg = accounts_config(str(tmp_path))
    led = Ledger(cfg.units[0], open_store(tmp_path))
    led.refresh(source, NOV1 - 2 * DAY, t1)
    return led


def pdf_text(path: Path) -> str:
    if not shutil.which("pdftotext"):
        pytest.skip("pdftotext is not installed: run deploy/test.sh, which installs poppler-utils")
    return subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True, check=True).stdout


def coal(figures: dict[str, Any]) -> dict[str, Any]:
    return next(c for c in figures["carriers"] if c["carrier"] == "raw_coal")


def test_a_restated_day_changes_that_day_only_and_says_so_everywhere(tmp_path: Path) -> None:
    led = ledger_for(tmp_path, CounterSource(), NOV.end)
    d3, d4 = day("2026-11-03", ZONE), day("2026-11-04", ZONE)
    for p in (d3, d4, NOV):
        led.close(p, NOV.end + 60)
    keys = (("day", "2026-11-04"), ("month", "2026-11"), ("ytd", "2026-11"))
    before = {k: led.figures(led.period(*k)) for k in keys}
    old = coal(led.figures(d3))["quantity"]
    rev, figures = led.restate("2026-11-03", "raw_coal", "quantity", old * 1.1, "Li Wei", "weighbridge", DEC2, "day")
    assert rev == 1 and coal(figures)["quantity"] == pytest.approx(old * 1.1)
    restated = led.figures(d3)
    assert restated["revision"] == 1 and coal(restated)["quantity"] == pytest.approx(old * 1.1)
    assert {k: led.figures(led.period(*k)) for k in keys} == before  # the month is the month's own restatement
    (r,) = led.restatements("2026-11")
    assert (r["kind"], r["period"], r["carrier"], r["field"], r["old"], r["who"], r["why"]) == (
        "day",
        "2026-11-03",
        "raw_coal",
        "quantity",
        old,
        "Li Wei",
        "weighbridge",
    )
    # the upload: a new record for the day, naming the one it restates
    box = Outbox(led.unit, led.store)
    rid = box.enqueue_restated("2026-11-03", rev, figures, DEC2, "day")
    (body,) = led.store.db.execute("SELECT body FROM outbox WHERE record_id=?", (rid,)).fetchone()
    rec = json.loads(body)
    assert rid == "cement-1/day/2026-11-03/r1" and rec["restates"] == "cement-1/day/2026-11-03/r0"
    # the report: CSV/XLSX rows (one list) and the PDF
    rep = build(led, "2026-11", DEC2)
    item = "2026-11-03 r1 raw_coal.quantity"
    assert ("restatements", item, "previous", old, "") in rep.rows
    assert ("restatements", item, "who", "Li Wei", "") in rep.rows
    assert ("daily", "2026-11-03", "revision", 1, "") in rep.rows
    assert ("daily", "2026-11-04", "revision", 0, "") in rep.rows
    write_pdf(rep, tmp_path / "r.pdf")
    text = pdf_text(tmp_path / "r.pdf")
    assert "2026-11-03" in text and "weighbridge" in text and "Li Wei" in text


def test_a_product_output_is_restated_with_its_unit_consumption_and_ytd(tmp_path: Path) -> None:
    led = ledger_for(tmp_path, CounterSource(), NOV.end)
    led.close(NOV, NOV.end + 60)
    prod = led.figures(NOV)["products"][0]
    ytd_before = led.figures(led.period("ytd", "2026-11"))["products"][0]
    assert prod["output"] == pytest.approx(RATES["output:clinker"] * (NOV.end - NOV.start), rel=1e-9)
    with pytest.raises(ValueError, match="product 'klinker' is not in the account"):
        led.restate("2026-11", "klinker", "output", 1.0, "Wang", "recount", DEC2)
    with pytest.raises(ValueError, match="is not closed"):
        led.restate("2026-11-05", "clinker", "output", 1.0, "Wang", "recount", DEC2, "day")
    new = prod["output"] * 0.98
    rev, _f = led.restate("2026-11", "clinker", "output", new, "Wang Fang", "dispatch recount", DEC2)
    after = led.figures(NOV)["products"][0]
    assert rev == 1 and after["output"] == new
    assert after["energy_kgce"] == prod["energy_kgce"]  # energy unchanged, unit consumption up
    assert after["kgce_per_unit"] == pytest.approx(prod["energy_kgce"] / new)
    ytd = led.figures(led.period("ytd", "2026-11"))["products"][0]
    assert ytd["output"] == pytest.approx(ytd_before["output"] - prod["output"] + new)
    (r,) = led.restatements("2026-11")
    assert (r["carrier"], r["field"], r["old"], r["new"]) == ("clinker", "output", prod["output"], new)


def test_restate_command_takes_a_day_and_a_product(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    led = ledger_for(tmp_path, CounterSource(), NOV.end)
    led.close(day("2026-11-07", ZONE), NOV.end)
    led.store.close()
    center = tmp_path / "center.yaml"
    center.write_text(
        json.dumps({"influx": {"database": "e"}, "dead_letter": {"file": "d"}, "accounts": unit_doc(str(tmp_path))})
    )
    now = dt.datetime.fromtimestamp(DEC2, dt.UTC).isoformat()
    args = ["accounts", "restate", "-c", str(center), "--now", now, "--day", "2026-11-07", "--product", "clinker"]
    assert main([*args, "--field", "quantity", "--value", "800", "--who", "W", "--why", "x"]) == 1  # output only
    assert main([*args, "--field", "output", "--value", "800", "--who", "Wang", "--why", "recount"]) == 0
    assert (
        "2026-11-07 restated as revision 1; upload record cement-1/day/2026-11-07/r1 queued" in capsys.readouterr().out
    )
    again = Ledger(accounts_config(str(tmp_path)).units[0], open_store(tmp_path))
    assert again.figures(day("2026-11-07", ZONE))["products"][0]["output"] == 800.0


def test_late_data_after_a_day_closed_is_counted_and_listed_not_absorbed(tmp_path: Path) -> None:
    d = day("2026-11-12", ZONE)
    # the kiln's coal readings of the day's last 20 minutes are not in the database when the day closes
    late = CounterSource(silent=[("C-KILN", d.end - 1200, d.end + 3600)])
    led = ledger_for(tmp_path, late, d.end + 60)
    led.close(d, d.end + 60)
    closed = led.figures(d)
    assert closed["quality"]["late_data"] == [] and closed["quality"]["late_data_count"] == 0
    led.refresh(CounterSource(), d.start - 3600, d.end + 3600)  # they arrive; the round re-reads the quarters
    now = led.figures(d)
    assert coal(now)["quantity"] == coal(closed)["quantity"]  # the closed figures are kept
    (x,) = now["quality"]["late_data"]
    assert x["series"] == "C-KILN" and now["quality"]["late_data_count"] == 1
    assert x["difference"] == pytest.approx(RATES["C-KILN"] * 1260, rel=1e-6)  # last reading was at -21 min
    assert x["stored_now"] == pytest.approx(x["closed"] + x["difference"])
    rep = build(led, "2026-11", d.end + 2 * DAY)
    assert ("quality", "cement-1", "late_data_count", 1, "series x periods") in rep.rows
    assert ("late_data", "2026-11-12 C-KILN", "difference", x["difference"], "") in rep.rows
    write_pdf(rep, tmp_path / "late.pdf")
    assert "Late data after closing" in pdf_text(tmp_path / "late.pdf")
