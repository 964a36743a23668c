"""The upload outbox against real HTTPS receivers (test CA, token, client certificate), on an injected clock:
records produced on time, a receiver down for a simulated week gets every record exactly once afterwards, a
receiver refusing with 4xx does not hold up one that accepts, a restart loses nothing, records stay queryable."""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path
from typing import Any

import pytest

from agent.center.accounts.adapters import get_adapter
from agent.center.accounts.outbox import HttpsPoster, record
from agent.center.accounts.service import AccountsService
from agent.center.accounts.store import open_store
from tests.servers.https_receiver import HttpsReceiver, write_token
from tests.servers.mqtt_tls import make_pki
from tests.unit.accounts_unit import NOV1, CounterSource, accounts_config

pytestmark = pytest.mark.e2e
DAY = 86400.0
ZONE = dt.timezone(dt.timedelta(hours=8))


def receiver_doc(name: str, rec: HttpsReceiver, ca: Path, **extra: Any) -> dict[str, Any]:
    return {"name": name, "url": rec.url, "ca_file": str(ca), "retry_initial_s": 60, "retry_max_s": 3600} | extra


def run(service: AccountsService, t0: float, t1: float, step_s: float = 60.0) -> None:
    t = t0
    while t <= t1:
        service.tick(t)
        t += step_s


def expected_ids(t0: float, t1: float, settle: float = 30.0) -> set[str]:
    """Every record due between the service start t0 and t1 (15-minute, day, month)."""
    ids = set()
    q = t0 - t0 % 900
    while q + 900 <= t1 - settle:
        ids.add(f"cement-1/15m/{dt.datetime.fromtimestamp(q, ZONE).isoformat(timespec='minutes')}/r0")
        q += 900
    d = dt.datetime.fromtimestamp(t0, ZONE).date()
    while dt.datetime.combine(d + dt.timedelta(days=1), dt.time(), ZONE).timestamp() <= t1 - settle:
        ids.add(f"cement-1/day/{d.isoformat()}/r0")
        d += dt.timedelta(days=1)
    return ids


def test_a_week_of_receiver_outage_then_every_record_exactly_once(tmp_path: Path) -> None:
    pki = make_pki(tmp_path / "pki")
    token = write_token(tmp_path, "s3cret-token")
    with HttpsReceiver(pki, token="s3cret-token") as rec:
        cfg = accounts_config(str(tmp_path / "state"), [receiver_doc("province", rec, pki.ca, token_file=str(token))])
        start = NOV1 + 3 * DAY + 10
        svc = AccountsService(cfg, CounterSource(), clock=lambda: start)
        run(svc, start, start + DAY + 60, step_s=20)  # a day with the receiver up, ticking every 20 s
        day1 = expected_ids(start, start + DAY + 60)
        assert set(rec.ids()) == day1 and max(rec.ids().values()) == 1
        # the daily record is produced within a minute of local midnight
        box = svc.outboxes[0]
        made = {r["record_id"]: r["created_at"] for r in box.list()}
        midnight = dt.datetime(2026, 11, 5, tzinfo=ZONE).timestamp()
        assert 0 < made["cement-1/day/2026-11-04/r0"] - midnight <= 60
        rec.stop()
        run(svc, start + DAY + 120, start + 8 * DAY, step_s=300)  # a week down
        attempts = sum(r["attempts"] for r in box.list(state="pending"))
        assert attempts < 300  # backoff: one probe per backoff period, not one per record per tick
        rec.start()
        run(svc, start + 8 * DAY + 300, start + 8 * DAY + 3600, step_s=300)
    week = expected_ids(start, start + 8 * DAY + 3600)
    got = rec.ids()
    assert set(got) == week and max(got.values()) == 1, "every record, each once"
    assert rec.unauthorised == 0
    assert not box.list(state="pending")


def test_one_receiver_refusing_does_not_hold_up_the_other(tmp_path: Path) -> None:
    pki = make_pki(tmp_path / "pki")
    with (
        HttpsReceiver(pki) as good,
        HttpsReceiver(pki, status=422) as bad,
        HttpsReceiver(pki, client_cert=True) as mtls,
    ):
        cfg = accounts_config(
            str(tmp_path / "state"),
            [
                receiver_doc("refusing", bad, pki.ca),
                receiver_doc("accepting", good, pki.ca),
                receiver_doc("mutual-tls", mtls, pki.ca, cert_file=str(pki.client_cert), key_file=str(pki.client_key)),
            ],
        )
        start = NOV1 + 10
        svc = AccountsService(cfg, CounterSource(), clock=lambda: start)
        run(svc, start, start + 6 * 3600)
    want = expected_ids(start, start + 6 * 3600)
    assert set(good.ids()) == want and max(good.ids().values()) == 1
    assert set(mtls.ids()) == want
    box = svc.outboxes[0]
    refused = {r["record_id"] for r in box.list(state="refused") if r["receiver"] == "refusing"}
    assert refused == want and all(r["answer"].startswith("422") for r in box.list(state="refused"))
    assert box.retry_refused("refusing") == len(want)


def test_a_backlog_goes_out_on_one_kept_connection_and_a_closing_platform_gets_a_new_one_per_record(
    tmp_path: Path,
) -> None:
    """A day of records held back by an outage goes out in one round over one TLS connection (HTTP/1.1 keep-alive),
    not one handshake per record; a platform that closes after each answer (HTTP/1.0) gets a connection per record,
    and either way every record arrives exactly once."""
    pki = make_pki(tmp_path / "pki")
    for keep_alive in (True, False):
        rec = HttpsReceiver(pki, keep_alive=keep_alive)  # down while the day's records are produced
        cfg = accounts_config(str(tmp_path / f"state-{keep_alive}"), [receiver_doc("province", rec, pki.ca)])
        svc = AccountsService(cfg, CounterSource(), clock=lambda: NOV1)
        run(svc, NOV1, NOV1 + DAY, step_s=3600)
        backlog = {r["record_id"] for r in svc.outboxes[0].list(state="pending")}
        assert len(backlog) > 90
        with rec:
            svc.outboxes[0].store.db.execute("UPDATE receivers SET next_attempt=0")  # its backoff is over
            sent = svc.tick(NOV1 + DAY)
            assert sent["acked"] == len(backlog)
        assert set(rec.ids()) == backlog and max(rec.ids().values()) == 1
        assert rec.connections == (1 if keep_alive else len(backlog)), keep_alive


def test_a_kept_connection_the_platform_closed_while_idle_is_opened_again_before_the_next_record(
    tmp_path: Path,
) -> None:
    pki = make_pki(tmp_path / "pki")
    with HttpsReceiver(pki, idle_timeout_s=0.2) as rec:
        cfg = accounts_config(str(tmp_path / "state"), [receiver_doc("province", rec, pki.ca)])
        receiver = cfg.units[0].receivers[0]
        poster = HttpsPoster()
        try:
            first = poster(receiver, b'{"id": "r1"}', {"Idempotency-Key": "r1", "Content-Type": "application/json"})
            deadline = time.monotonic() + 10
            while rec.closed < 1:  # the platform ends the idle connection
                assert time.monotonic() < deadline, "the receiver never closed the idle connection"
                time.sleep(0.01)
            second = poster(receiver, b'{"id": "r2"}', {"Idempotency-Key": "r2", "Content-Type": "application/json"})
        finally:
            poster.close()
    assert first[0] == second[0] == 200
    assert rec.ids() == {"r1": 1, "r2": 1} and rec.connections == 2


def test_a_server_with_an_unknown_ca_is_never_sent_to(tmp_path: Path) -> None:
    pki, other = make_pki(tmp_path / "pki"), make_pki(tmp_path / "other")
    with HttpsReceiver(pki) as rec:
        cfg = accounts_config(str(tmp_path / "state"), [receiver_doc("province", rec, other.ca)])
        svc = AccountsService(cfg, CounterSource(), clock=lambda: NOV1)
        run(svc, NOV1, NOV1 + 3600)
    assert not rec.ids()
    (pending, *_rest) = svc.outboxes[0].list(state="pending")
    assert "CERTIFICATE_VERIFY_FAILED" in pending["answer"]


def test_restart_keeps_backoff_and_pending_records(tmp_path: Path) -> None:
    pki = make_pki(tmp_path / "pki")
    rec = HttpsReceiver(pki)  # not started: down
    cfg = accounts_config(str(tmp_path / "state"), [receiver_doc("province", rec, pki.ca)])
    svc = AccountsService(cfg, CounterSource(), clock=lambda: NOV1)
    run(svc, NOV1, NOV1 + 2 * 3600, step_s=300)
    svc.store.close()
    with rec:
        again = AccountsService(cfg, CounterSource(), store=open_store(tmp_path / "state"), clock=lambda: NOV1)
        run(again, NOV1 + 2 * 3600 + 300, NOV1 + 4 * 3600, step_s=300)
    assert set(rec.ids()) == expected_ids(NOV1, NOV1 + 4 * 3600) and max(rec.ids().values()) == 1


def test_generic_adapter_answers() -> None:
    a = get_adapter("generic")
    body, headers = a.encode({"id": "u/day/2026-11-03/r0", "b": 1, "a": "中"})
    assert headers["Idempotency-Key"] == "u/day/2026-11-03/r0"
    assert body == '{"a":"中","b":1,"id":"u/day/2026-11-03/r0"}'.encode()
    assert [a.verdict(s, b"") for s in (200, 202, 400, 401, 408, 429, 500, 503)] == [
        "ack",
        "ack",
        "refused",
        "refused",
        "retry",
        "retry",
        "retry",
        "retry",
    ]
    with pytest.raises(KeyError, match="no upload adapter 'x'; shipped: generic"):
        get_adapter("x")


def test_records_follow_the_documented_schema(tmp_path: Path) -> None:
    import jsonschema

    from tests.e2e.test_center_harness import REPO

    schema = json.loads((REPO / "docs/reference/accounts-upload-v1.schema.json").read_text())
    cfg = accounts_config(str(tmp_path / "state"))
    svc = AccountsService(cfg, CounterSource(), clock=lambda: NOV1 + 29 * DAY)
    run(svc, NOV1 + 29 * DAY + 60, NOV1 + 30 * DAY + 120, step_s=900)
    box = svc.outboxes[0]
    made = {r["record_id"]: r["created_at"] for r in box.list()}
    assert 0 < made["cement-1/month/2026-11/r0"] - (NOV1 + 30 * DAY) <= 60  # on the 1st, within a minute
    bodies = [json.loads(r[0]) for r in svc.store.db.execute("SELECT body FROM outbox")]
    assert {b["kind"] for b in bodies} == {"15m", "day", "month"}
    for body in bodies:
        jsonschema.validate(body, schema)
        # the service started on November 30th: quarters and days are complete, the month is not (and says so)
        flagged = body["kind"] == "month"
        assert body["quality"]["flagged"] is flagged and (body["quality"]["completeness"] == 1.0) is not flagged
    rev, figures = box.ledger.restate("2026-11", "raw_coal", "quantity", 1.0, "Li", "lab", NOV1 + 31 * DAY)
    restated = json.loads(json.dumps(record(cfg.units[0], figures, rev, NOV1 + 31 * DAY)))
    jsonschema.validate(restated, schema)
    assert restated["restates"] == "cement-1/month/2026-11/r0" and restated["id"] == "cement-1/month/2026-11/r1"


def test_a_unit_declared_with_produce_from_back_fills_its_records(tmp_path: Path) -> None:
    cfg = accounts_config(str(tmp_path / "state"), produce_from="2026-11-01")
    svc = AccountsService(cfg, CounterSource(), clock=lambda: NOV1 + 2 * DAY + 100)
    svc.tick(NOV1 + 2 * DAY + 100)
    box = svc.outboxes[0]
    assert len(box.list(kind="15m")) == 192 and {r["period"] for r in box.list(kind="day")} == {
        "2026-11-01",
        "2026-11-02",
    }
    day1 = next(r for r in svc.store.db.execute("SELECT body FROM outbox WHERE record_id LIKE '%/day/2026-11-01/%'"))
    assert json.loads(day1[0])["quality"]["completeness"] == 1.0  # the back-fill read the stored counters
