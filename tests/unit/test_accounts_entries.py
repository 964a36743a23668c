"""Manual entries: a bad CSV is refused with file:line:col errors and changes nothing; the config names unknown
carriers, factors and adapters with positions; a centre without accounts loads as before."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from agent.center.accounts.entries import import_csv
from agent.center.accounts.store import open_store
from agent.center.cli import main
from agent.center.config import load
from agent.errors import EX_CONFIG, ConfigError
from tests.unit.accounts_unit import NOV1, accounts_config, unit_doc

NOW = NOV1 + 20 * 86400.0  # 2026-11-21

GOOD = """kind,date,carrier,product,quantity,unit,amount_cny,who,note
delivery,2026-11-03,raw_coal,,1200.5,t,,Li Wei,ticket 3342
stock,2026-11-10,raw_coal,,350,t,,Li Wei,
lhv,2026-11-15,raw_coal,,22.1,GJ/t,,Lab,
output,2026-11-20,,clinker,95000,t,31000000,Wang Fang,
"""


def count(tmp_path: Path) -> int:
    return int(open_store(tmp_path).db.execute("SELECT COUNT(*) FROM entries").fetchone()[0])


def test_good_entries_are_stored_once(tmp_path: Path) -> None:
    cfg = accounts_config(str(tmp_path))
    path = tmp_path / "ok.csv"
    path.write_text(GOOD)
    assert import_csv(path, cfg.units[0], open_store(tmp_path), NOW) == 4
    assert count(tmp_path) == 4
    with pytest.raises(ConfigError) as err:  # the same file again: every row is a duplicate of a stored one
        import_csv(path, cfg.units[0], open_store(tmp_path), NOW)
    assert str(err.value.issues[0]).startswith(f"{path}:2:")
    assert "already entered" in str(err.value) and count(tmp_path) == 4


def test_bad_entries_are_refused_positioned_and_nothing_is_stored(tmp_path: Path) -> None:
    cfg = accounts_config(str(tmp_path))
    path = tmp_path / "bad.csv"
    path.write_text(
        "kind,date,carrier,product,quantity,unit,amount_cny,who,note\n"
        "delivery,2026-11-03,raw_coal,,100,t,,Li,\n"  # fine, but the file as a whole is refused
        "delivery,2026-11-04,raw_col,,100,t,,Li,\n"  # wrong carrier
        "stock,2026-11-05,raw_coal,,-3,t,,Li,\n"  # negative stock
        "delivery,2026-12-24,raw_coal,,100,t,,Li,\n"  # future date
        "delivery,2026-11-03,raw_coal,,100,t,,Li,\n"  # duplicate of line 2
        "delivery,2026-11-06,raw_coal,,100,kg,,Li,\n"  # unit not the carrier's
    )
    with pytest.raises(ConfigError) as err:
        import_csv(path, cfg.units[0], open_store(tmp_path), NOW)
    lines = [str(i) for i in err.value.issues]
    assert lines == [
        f"{path}:3:21: carrier: 'raw_col' is not a carrier of unit cement-1; declared: electricity, pv, raw_coal, "
        "diesel (did you mean 'raw_coal'?)",
        f"{path}:4:28: quantity: -3 is negative: a stock cannot be negative (a correction of a closed month is a "
        "restatement)",
        f"{path}:5:10: date: 2026-12-24 is in the future (today is 2026-11-21); enter what happened",
        f"{path}:6:10: date: repeats line 2 (delivery of raw_coal on 2026-11-03); one entry per day",
        f"{path}:7:35: unit: 'kg': raw_coal is entered in t",
    ]
    assert count(tmp_path) == 0


def test_entries_cli_exits_78_and_stores_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    center = tmp_path / "center.yaml"
    center.write_text(
        json.dumps(
            {"influx": {"database": "e"}, "dead_letter": {"file": "d.jsonl"}, "accounts": unit_doc(str(tmp_path))}
        )
    )
    bad = tmp_path / "bad.csv"
    bad.write_text("kind,date,carrier,quantity,unit,who\nstock,2026-11-05,raw_coal,-1,t,Li\n")
    now = dt.datetime.fromtimestamp(NOW, dt.UTC).isoformat()
    assert main(["entries", "import", str(bad), "-c", str(center), "--now", now]) == EX_CONFIG
    err = capsys.readouterr().err
    assert f"{bad}:2:27: quantity: -1 is negative" in err and "nothing was stored" in err
    assert count(tmp_path) == 0
    args = [
        "entries",
        "add",
        "-c",
        str(center),
        "--now",
        now,
        "--kind",
        "delivery",
        "--date",
        "2026-11-07",
        "--carrier",
        "raw_coal",
        "--quantity",
        "42",
        "--qty-unit",
        "t",
        "--who",
        "Li",
    ]
    assert main(args) == 0 and count(tmp_path) == 1


def test_config_refuses_unknown_adapter_factor_and_grid_with_positions(tmp_path: Path) -> None:
    doc = unit_doc(str(tmp_path), receivers=[{"name": "p", "url": "https://x.example/u", "adapter": "neimenggu"}])
    doc["units"][0]["carriers"][2]["factor"] = "raw_cole"
    center = tmp_path / "center.yaml"
    center.write_text(
        json.dumps({"influx": {"database": "e"}, "dead_letter": {"file": "d"}, "accounts": doc}, indent=1)
    )
    with pytest.raises(ConfigError) as err:
        load(center)
    text = str(err.value)
    assert "accounts.units[0].receivers[0].adapter: 'neimenggu' is not an upload adapter; use one of generic" in text
    assert "accounts.units[0].carriers[2].factor: 'raw_cole' is not a carrier of energy_factors.yaml" in text
    assert "(did you mean 'raw_coal'?)" in text
    assert all(f"{center}:" in line and line.split(":")[1].isdigit() for line in text.splitlines())
    assert main(["validate", str(center)]) == EX_CONFIG


def test_a_centre_without_accounts_loads_as_before(tmp_path: Path) -> None:
    center = tmp_path / "center.yaml"
    center.write_text(json.dumps({"influx": {"database": "e"}, "dead_letter": {"file": "d"}}))
    assert load(center).accounts is None


def test_the_shipped_example_csv_imports(tmp_path: Path) -> None:
    from tests.e2e.test_center_harness import REPO

    cfg = accounts_config(str(tmp_path))
    n = import_csv(REPO / "deploy/center/entries.example.csv", cfg.units[0], open_store(tmp_path), NOV1 + 35 * 86400.0)
    assert n == 6


def test_the_documented_example_section_validates(tmp_path: Path) -> None:
    import agent.center.accounts.config as accounts_config_module

    doc = accounts_config_module.__doc__ or ""
    example = doc[doc.index("    accounts:") : doc.index("Carrier ``factor``")]
    center = tmp_path / "center.yaml"
    center.write_text(
        "influx: {database: e}\ndead_letter: {file: d}\n" + "\n".join(line[4:] for line in example.splitlines())
    )
    cfg = load(center).accounts
    assert cfg is not None and cfg.units[0].receivers[0].adapter == "generic"
