"""The meter register (GB 17167) in accounts.sqlite: a CSV import and commands add, update, list, history; bad rows
refused with file:line:col and nothing stored; every change keeps the previous entry; the report lists the
effective register (center.yaml's meters with the stored changes, then the stored instruments)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from agent.center.accounts.account import Ledger
from agent.center.accounts.register import changes, effective, import_csv
from agent.center.accounts.report import build
from agent.center.accounts.store import SCHEMA_VERSION, open_store
from agent.center.cli import main
from agent.errors import EX_CONFIG, ConfigError
from tests.unit.accounts_unit import NOV1, accounts_config, unit_doc

NOW = NOV1 + 29 * 86400.0  # 2026-11-30
HEADER = "id,carrier,flow,accuracy_class,calibration_due,measures,who,note\n"


def registered(tmp_path: Path) -> int:
    return int(open_store(tmp_path).db.execute("SELECT COUNT(*) FROM meter_register").fetchone()[0])


def test_a_csv_adds_an_instrument_and_recalibrates_a_declared_meter_keeping_the_previous_entry(
    tmp_path: Path,
) -> None:
    cfg = accounts_config(str(tmp_path))
    unit, store = cfg.units[0], open_store(tmp_path)
    path = tmp_path / "meters.csv"
    path.write_text(
        HEADER + "WB-2,raw_coal,purchased,III,2027-05-31,second weighbridge,Li Wei,installed 2026-11-12\n"
        "E-PV,,,,2027-11-15,,Li Wei,calibrated 2026-11-16 certificate 1187\n"
    )
    assert import_csv(path, unit, store, NOW) == 2
    meters = {m.id: (m, where) for m, where in effective(unit, store)}
    pv, where = meters["E-PV"]
    assert pv.calibration_due == dt.date(2027, 11, 15) and pv.device == "pv-meter" and pv.carrier == "pv"
    assert where == f"center.yaml, changed by Li Wei ({path}:3)"
    wb2, where = meters["WB-2"]
    assert (wb2.carrier, wb2.flow, wb2.accuracy_class, wb2.device) == ("raw_coal", "purchased", "III", None)
    assert where == f"register, Li Wei ({path}:2)"
    hist = changes(unit, store, "E-PV")
    assert json.loads(hist[0]["previous"])["calibration_due"] == "2026-10-31"  # the declared value is kept
    assert json.loads(hist[0]["new"])["calibration_due"] == "2027-11-15"
    # the report's register: E-PV was overdue on the 1st of the month (due 2026-10-31) and is no more
    rep = build(Ledger(unit, store), "2026-11", NOW)
    listed = {m["id"]: m for m in rep.meters}
    assert listed["E-PV"]["overdue"] is False and listed["WB-2"]["calibration_due"] == "2027-05-31"
    assert ("meters", "WB-2", "register", f"register, Li Wei ({path}:2)", "") in rep.rows


def test_bad_register_rows_are_positioned_and_nothing_is_stored(tmp_path: Path) -> None:
    cfg = accounts_config(str(tmp_path))
    path = tmp_path / "bad.csv"
    path.write_text(
        HEADER + "WB-3,raw_col,purchased,III,2027-05-31,,Li,\n"  # unknown carrier
        "WB-4,raw_coal,bought,III,2027-05-31,,Li,\n"  # unknown flow
        "WB-5,raw_coal,purchased,III,31.05.2027,,Li,\n"  # not a date
        "E-GRID,raw_coal,,,,,Li,\n"  # a gateway meter's carrier is center.yaml's
        "WB-6,raw_coal,purchased,,,,Li,\n"  # new, without class and due date
        "WB-3,raw_coal,purchased,III,2027-05-31,,Li,\n"  # repeats line 2
        "WB-7,raw_coal,purchased,III,2027-05-31,,,\n"  # no who
    )
    store = open_store(tmp_path)
    with pytest.raises(ConfigError) as err:
        import_csv(path, cfg.units[0], store, NOW)
    assert [str(i) for i in err.value.issues] == [
        f"{path}:2:6: carrier: 'raw_col' is not a carrier of unit cement-1; declared: electricity, pv, raw_coal, "
        "diesel (did you mean 'raw_coal'?)",
        f"{path}:3:15: flow: 'bought' is not a flow; use one of consumed, purchased, produced, exported",
        f"{path}:4:29: calibration_due: '31.05.2027' is not a date; write YYYY-MM-DD",
        f"{path}:5:8: carrier: meter E-GRID is read from main-meter as carrier 'electricity' in center.yaml; change "
        "that binding there, not in the register",
        f"{path}:6:25: accuracy_class: meter WB-6 is new to the register: give its accuracy_class",
        f"{path}:6:26: calibration_due: meter WB-6 is new to the register: give its calibration_due",
        f"{path}:7:1: id: meter WB-3 repeats line 2; one row per meter",
        f"{path}:8:41: who: say who changed the register",
    ]
    assert registered(tmp_path) == 0


def test_meters_commands_add_update_list_and_history(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    center = tmp_path / "center.yaml"
    center.write_text(
        json.dumps({"influx": {"database": "e"}, "dead_letter": {"file": "d"}, "accounts": unit_doc(str(tmp_path))})
    )
    now = dt.datetime.fromtimestamp(NOW, dt.UTC).isoformat()
    base = ["-c", str(center), "--now", now]
    add = ["meters", "add", *base, "--id", "LAB-1", "--carrier", "raw_coal", "--accuracy-class", "I"]
    assert main([*add, "--calibration-due", "2026-13-01", "--who", "Lab"]) == EX_CONFIG  # month 13
    assert "<command line>:2:" in capsys.readouterr().err and registered(tmp_path) == 0
    assert main([*add, "--calibration-due", "2027-02-01", "--who", "Lab", "--measures", "calorimeter"]) == 0
    assert main([*add, "--calibration-due", "2027-02-01", "--who", "Lab"]) == 1  # already there: update it
    assert "use meters update" in capsys.readouterr().err
    assert main(["meters", "update", *base, "--id", "LAB-1", "--calibration-due", "2026-11-20", "--who", "Zhao"]) == 0
    capsys.readouterr()
    assert main(["meters", *base]) == 0
    out = capsys.readouterr().out
    lab = next(line for line in out.splitlines() if line.startswith("LAB-1\t"))
    assert "due 2026-11-20\tOVERDUE\tmanual\tcalorimeter\tregister, Zhao (<command line>:2)" in lab
    assert main(["meters", "history", *base, "--id", "LAB-1"]) == 0
    hist = capsys.readouterr().out.splitlines()
    assert len(hist) == 2 and "previous -" in hist[0] and '"calibration_due": "2027-02-01"' in hist[1].split("new")[0]


def test_a_version_1_file_gets_the_register_tables(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    store.db.execute("DROP TABLE meter_register")
    store.db.execute("UPDATE meta SET value='1' WHERE key='schema_version'")
    store.close()
    again = open_store(tmp_path)
    assert again.schema_version() == SCHEMA_VERSION == 2
    assert again.db.execute("SELECT COUNT(*) FROM meter_register").fetchone()[0] == 0


def test_the_shipped_example_register_csv_imports(tmp_path: Path) -> None:
    from tests.e2e.test_center_harness import REPO

    cfg = accounts_config(str(tmp_path))
    assert import_csv(REPO / "deploy/center/meters.example.csv", cfg.units[0], open_store(tmp_path), NOW) == 1
