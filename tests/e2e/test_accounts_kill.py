"""kill -9 of the centre while it uploads: nothing is lost, and no record reaches the receiver as two records.

Three days of records are queued while the receiver is down (in-process service, injected clock, counters from
tests/unit/accounts_unit.py). Then ``energy-center accounts tick`` (the same round ``energy-center run`` does every
few seconds: refresh from a real InfluxDB, produce, send) runs as a process against a slow HTTPS receiver and is
killed with SIGKILL mid-upload; run again, it sends the rest. The receiver keeps what it was sent, keyed by the
record ID (Idempotency-Key): every record arrives, each ID with one body, and at most the one record in flight at
the kill is sent twice on the wire (same ID, same body, so the receiver keeps one record).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from agent.center.accounts.service import AccountsService
from agent.center.accounts.store import open_store
from tests.e2e.test_center_harness import REPO, wait_until
from tests.servers.https_receiver import HttpsReceiver
from tests.servers.influx import influxd
from tests.servers.mqtt_tls import make_pki
from tests.servers.process import free_port
from tests.unit.accounts_unit import NOV1, CounterSource, unit_doc

pytestmark = pytest.mark.e2e


def test_kill_9_during_upload_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    pki = make_pki(tmp_path / "pki")
    port = free_port()
    receiver = {
        "name": "province",
        "url": f"https://127.0.0.1:{port}/upload",
        "ca_file": str(pki.ca),
        "retry_initial_s": 60,
        "retry_max_s": 600,
    }
    doc = unit_doc(str(tmp_path / "state"), [receiver])
    with influxd(tmp_path / "db") as db:
        db.create_database("energy")
        center = tmp_path / "center.yaml"
        center.write_text(
            json.dumps(
                {
                    "influx": {"database": "energy", "url": db.url},
                    "dead_letter": {"file": str(tmp_path / "dead.jsonl")},
                    "accounts": doc,
                }
            )
        )
        from agent.center.accounts.config import AccountsConfig

        cfg = AccountsConfig.model_validate(doc)
        svc = AccountsService(cfg, CounterSource(), clock=lambda: NOV1)
        t = NOV1
        while t < NOV1 + 3 * 86400:  # three days queued, the receiver down
            t += 900
            svc.tick(t)
        svc.store.close()
        now = dt.datetime.fromtimestamp(t + 900, dt.UTC).isoformat()
        cmd = [sys.executable, "-m", "agent.center.cli", "accounts", "tick", "-c", str(center), "--now", now]
        with HttpsReceiver(pki, port=port, delay_s=0.03) as rec:
            with (tmp_path / "tick.log").open("wb") as log:
                proc = subprocess.Popen(cmd, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
                try:
                    wait_until(lambda: len(rec.posts) >= 60, 120, "the upload to be under way")
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(10)
                finally:
                    if proc.poll() is None:
                        os.killpg(proc.pid, signal.SIGKILL)
                        proc.wait(10)
            at_kill = len(rec.posts)
            store = open_store(tmp_path / "state")
            total = store.db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]
            assert 60 <= at_kill < total, "killed mid-upload"
            store.close()
            again = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
            assert again.returncode == 0, again.stdout + again.stderr
        store = open_store(tmp_path / "state")
        ids = {r[0] for r in store.db.execute("SELECT record_id FROM outbox")}
        states = dict(store.db.execute("SELECT state, COUNT(*) FROM deliveries GROUP BY state").fetchall())
    got = rec.ids()
    assert set(got) == ids, "nothing lost"
    assert states == {"acked": len(ids)}
    assert sum(got.values()) - len(got) <= 1, "at most the record in flight at the kill went out twice"
    assert all(len({json.dumps(b, sort_keys=True) for b in bodies}) == 1 for bodies in rec.bodies().values())
