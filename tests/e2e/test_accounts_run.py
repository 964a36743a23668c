"""``energy-center run`` with a declared unit runs the accounts round beside the ingestor: it opens accounts.sqlite,
reads the stored counters from InfluxDB, and stops cleanly with the ingestor."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

import pytest

from tests.e2e.test_center_harness import CenterProcess, center_config, wait_until
from tests.servers.influx import influxd
from tests.servers.mosquitto import mosquitto
from tests.unit.accounts_unit import unit_doc

pytestmark = pytest.mark.e2e


def test_run_starts_the_accounts_round(tmp_path: Path) -> None:
    with mosquitto(tmp_path / "mq") as broker, influxd(tmp_path / "db") as db:
        db.create_database("energy")
        cfg = center_config(broker.port, {"kind": "v1", "url": db.url, "database": "energy"})
        cfg["accounts"] = unit_doc(str(tmp_path / "state"))
        with CenterProcess(tmp_path / "c", cfg) as center:
            center.wait_log("accounts: 1 unit(s), state in")
            path = tmp_path / "state" / "accounts.sqlite"
            wait_until(path.exists, 30, "accounts.sqlite")

            def read_influx() -> bool:  # the round recomputes the last hour's quarters from InfluxDB (empty here)
                with contextlib.closing(sqlite3.connect(path)) as conn:
                    return int(conn.execute("SELECT COUNT(*) FROM quarter").fetchone()[0]) > 0

            wait_until(read_influx, 30, "the first round")
            assert center.stop() == 0
        assert "accounts: a round failed" not in center.log(whole=True)
