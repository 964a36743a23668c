"""The upload outbox: records produced on time, sent to every receiver until acknowledged, kept and queryable.

Production (:meth:`Outbox.produce`, clock injected): a 15-minute record once the quarter is over (plus
``settle_s``), a day record just after local midnight (within a minute: settle_s <= 50 s), a month record just
after midnight on the 1st. Periods missed while the centre was down are produced when it is back, oldest first.
A record's ID is ``<unit>/<kind>/<period>/r<revision>``; it is written once (INSERT, never replaced), so one ID
always carries one content; a restated month is a new revision with a new ID and ``restates`` naming the old one.

Sending (:meth:`Outbox.send`): per receiver, pending records oldest first, one POST each (on one kept-alive TLS
connection per receiver and round: :class:`HttpsPoster`); acknowledged is stored before the next is sent. A failure that may pass (network, TLS, 408/425/429/5xx) stops that receiver for now and
doubles its backoff (retry_initial_s .. retry_max_s), stored, so a restart keeps it; other 4xx refuse that record
(kept as refused with the answer) and the next goes. A crash between the receiver's answer and our commit resends
that one record under the same ID (Idempotency-Key), which a receiver keeping IDs takes as the same record: at most
one resend on the wire, nothing lost, no second record. Records are kept ``keep_days`` (>= 183) and listed by
``energy-center outbox list``.
"""

from __future__ import annotations

import datetime as dt
import http.client
import json
import logging
import select
import socket
import ssl
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agent.center.accounts.account import Ledger
from agent.center.accounts.adapters import get_adapter
from agent.center.accounts.config import ReceiverConfig, UnitConfig
from agent.center.accounts.figures import flag
from agent.center.accounts.periods import QUARTER_S, Period, day, local_date, month, quarter, quarter_floor
from agent.center.accounts.store import Store

log = logging.getLogger("agent.center.accounts")

FORMAT = "energy-accounts/v1"
Post = Callable[[ReceiverConfig, bytes, dict[str, str]], tuple[int, bytes]]


def record(unit: UnitConfig, figures: dict[str, Any], revision: int, now: float) -> dict[str, Any]:
    """The canonical record of a period's figures (the schema in docs/reference/accounts-upload-v1.schema.json)."""
    rid = f"{unit.name}/{figures['kind']}/{figures['period']}/r{revision}"
    q = figures["quality"]
    return {
        "format": FORMAT,
        "id": rid,
        "unit": {"name": unit.name, "code": unit.code, "title": unit.title},
        "kind": figures["kind"],
        "period": {
            "label": figures["period"],
            "start": figures["start"],
            "end": figures["end"],
            "timezone": figures["timezone"],
        },
        "revision": revision,
        "restates": f"{unit.name}/{figures['kind']}/{figures['period']}/r{revision - 1}" if revision else None,
        "generated_at": dt.datetime.fromtimestamp(now, dt.UTC).isoformat(timespec="seconds"),
        "items": [
            {
                k: c[k]
                for k in (
                    "carrier",
                    "code",
                    "unit",
                    "quantity",
                    "purchased",
                    "produced",
                    "exported",
                    "stock_change",
                    "kgce_equivalent",
                    "kgce_equal_value",
                    "co2_t",
                    "metered_share",
                    "completeness",
                    "renewable",
                    "feedstock",
                )
            }
            for c in figures["carriers"]
        ],
        "totals": figures["totals"],
        "products": [
            {
                k: p.get(k)
                for k in ("product", "unit", "output", "output_value_cny", "energy_kgce", "kgce_per_unit", "grade")
            }
            for p in figures["products"]
        ],
        "quality": {
            "completeness": q.get("completeness"),
            "delivered": q.get("delivered"),
            "required": q.get("required"),
            "flagged": q.get("flagged", False),
            "reasons": q.get("reasons", []),
        },
    }


class HttpsPoster:
    """POSTs over verified TLS (CA file or system CAs; client certificate; bearer token), as a :data:`Post`. One
    TLS context per receiver, and its connection kept open from one record to the next (HTTP/1.1 keep-alive): a
    month's close is thousands of records, not thousands of handshakes. A kept connection that the platform closed
    while idle (or that holds unexpected bytes) is opened afresh before a POST, never retried after one was sent, so
    a record goes out at most once per call. Raises OSError, ssl.SSLError or http.client.HTTPException. Use one per
    sending round and :meth:`close` it (certificate files are read again by the next round's)."""

    MAX_ANSWER = 4096  # of an answer, kept for the record
    MAX_DRAINED = 65536  # read to the end to reuse the connection; a longer answer closes it instead

    def __init__(self) -> None:
        self._contexts: dict[str, ssl.SSLContext] = {}
        self._conns: dict[str, http.client.HTTPSConnection] = {}

    def __call__(self, receiver: ReceiverConfig, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        url = urllib.parse.urlsplit(receiver.url)
        headers = dict(headers)
        if receiver.token_file:
            headers["Authorization"] = "Bearer " + Path(receiver.token_file).read_text().strip()
        conn = self._connection(receiver, url)
        try:
            path = url.path or "/"
            conn.request("POST", path + (f"?{url.query}" if url.query else ""), body=body, headers=headers)
            resp = conn.getresponse()
            answer = resp.read(self.MAX_DRAINED)
        except BaseException:
            self._drop(receiver.name)
            raise
        if resp.will_close or not resp.isclosed():  # the platform closes it, or the answer was not read to its end
            self._drop(receiver.name)
        return resp.status, answer[: self.MAX_ANSWER]

    def _connection(self, receiver: ReceiverConfig, url: urllib.parse.SplitResult) -> http.client.HTTPSConnection:
        conn = self._conns.get(receiver.name)
        if conn is not None and (conn.sock is None or _idle_closed(conn.sock)):
            self._drop(receiver.name)
            conn = None
        if conn is None:
            ctx = self._contexts.get(receiver.name)
            if ctx is None:
                ctx = ssl.create_default_context(cafile=receiver.ca_file)
                if receiver.cert_file:
                    ctx.load_cert_chain(receiver.cert_file, receiver.key_file)
                self._contexts[receiver.name] = ctx
            host, port = url.hostname or "", url.port or 443
            conn = http.client.HTTPSConnection(host, port, timeout=receiver.timeout_s, context=ctx)
            self._conns[receiver.name] = conn
        return conn

    def _drop(self, name: str) -> None:
        conn = self._conns.pop(name, None)
        if conn is not None:
            conn.close()

    def close(self) -> None:
        for name in list(self._conns):
            self._drop(name)


def _idle_closed(sock: socket.socket) -> bool:
    """Whether an idle kept-alive connection has something to read: the platform's close (or bytes nobody asked
    for). Either way it cannot carry the next request."""
    if isinstance(sock, ssl.SSLSocket) and sock.pending():
        return True
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(readable)


class Outbox:
    def __init__(self, unit: UnitConfig, store: Store, settle_s: float = 30.0, keep_days: float = 400.0) -> None:
        self.unit = unit
        self.store = store
        self.ledger = Ledger(unit, store)
        self.settle_s = settle_s
        self.keep_days = keep_days

    # --- production -------------------------------------------------------------------------------------------

    def _progress(self, kind: str, default: float) -> float:
        row = self.store.db.execute(
            "SELECT until_ts FROM progress WHERE unit=? AND kind=?", (self.unit.name, kind)
        ).fetchone()
        return default if row is None else float(row[0])

    def start_at(self, ts: float) -> None:
        """Produce from the quarter/day/month containing ``ts`` on, or from the unit's ``produce_from`` date (a
        back-fill); only the first start sets this, later starts go on where production stopped."""
        zone = self.unit.zone()
        if self.unit.produce_from is not None:
            ts = min(ts, day(self.unit.produce_from.isoformat(), zone).start)
        d = local_date(ts, zone)
        with self.store.transaction() as db:
            for kind, since in (
                ("15m", quarter_floor(ts)),
                ("day", day(d.isoformat(), zone).start),
                ("month", month(f"{d.year:04d}-{d.month:02d}", zone).start),
            ):
                db.execute("INSERT OR IGNORE INTO progress VALUES (?, ?, ?)", (self.unit.name, kind, since))

    def due_until(self, now: float) -> float:
        """The end of the metered time that may be closed at ``now``."""
        return quarter_floor(now - self.settle_s)

    def produce(self, now: float) -> list[str]:
        """Create every record due at ``now``; return their IDs."""
        zone = self.unit.zone()
        made: list[str] = []
        limit = self.due_until(now)
        q = self._progress("15m", limit)
        while q + QUARTER_S <= limit:
            made += self._enqueue(quarter(q, zone), 0, None, now, "15m", q + QUARTER_S)
            q += QUARTER_S
        d0 = self._progress("day", limit)
        while True:
            p = day(local_date(d0, zone).isoformat(), zone)
            if p.end > limit:
                break
            rev, figures, _new = self.ledger.close(p, now)
            made += self._enqueue(p, rev, figures, now, "day", p.end)
            d0 = p.end
        m0 = self._progress("month", limit)
        while True:
            d = local_date(m0, zone)
            p = month(f"{d.year:04d}-{d.month:02d}", zone)
            if p.end > limit:
                break
            rev, figures, _new = self.ledger.close(p, now)
            made += self._enqueue(p, rev, figures, now, "month", p.end)
            m0 = p.end
        return made

    def _enqueue(
        self, p: Period, revision: int, figures: dict[str, Any] | None, now: float, kind: str, until: float
    ) -> list[str]:
        if figures is None:
            figures = self.ledger.compute(p)
            figures["quality"] = flag(figures["quality"], self.unit)
        rec = record(self.unit, figures, revision, now)
        receivers = [r.name for r in self.unit.receivers if p.kind in r.kinds]
        with self.store.transaction() as db:
            cur = db.execute(
                "INSERT OR IGNORE INTO outbox VALUES (?, ?, ?, ?, ?, ?, ?)",
                (rec["id"], self.unit.name, p.kind, p.label, revision, now, json.dumps(rec, sort_keys=True)),
            )
            if cur.rowcount:
                db.executemany(
                    "INSERT OR IGNORE INTO deliveries (record_id, receiver, state) VALUES (?, ?, 'pending')",
                    [(rec["id"], r) for r in receivers],
                )
            db.execute("INSERT OR REPLACE INTO progress VALUES (?, ?, ?)", (self.unit.name, kind, until))
        return [rec["id"]] if cur.rowcount else []

    def enqueue_restated(
        self, label: str, revision: int, figures: dict[str, Any], now: float, kind: str = "month"
    ) -> str:
        """The restated day or month as a new record (new ID, ``restates`` naming the previous revision)."""
        zone = self.unit.zone()
        p = month(label, zone) if kind == "month" else day(label, zone)
        rec = record(self.unit, figures, revision, now)
        with self.store.transaction() as db:
            db.execute(
                "INSERT OR IGNORE INTO outbox VALUES (?, ?, ?, ?, ?, ?, ?)",
                (rec["id"], self.unit.name, p.kind, p.label, revision, now, json.dumps(rec, sort_keys=True)),
            )
            db.executemany(
                "INSERT OR IGNORE INTO deliveries (record_id, receiver, state) VALUES (?, ?, 'pending')",
                [(rec["id"], r.name) for r in self.unit.receivers if p.kind in r.kinds],
            )
        return str(rec["id"])

    # --- sending ----------------------------------------------------------------------------------------------

    def send(self, now: float, post: Post | None = None, limit: int = 500) -> dict[str, int]:
        """Send what is pending and due; returns counts (acked, refused, failed attempts). ``post`` defaults to an
        :class:`HttpsPoster` for this round."""
        if post is None:
            poster = HttpsPoster()
            try:
                return self.send(now, poster, limit)
            finally:
                poster.close()
        counts = {"acked": 0, "refused": 0, "failed": 0}
        for r in self.unit.receivers:
            state = self.store.db.execute(
                "SELECT failures, next_attempt FROM receivers WHERE unit=? AND receiver=?", (self.unit.name, r.name)
            ).fetchone()
            failures = 0 if state is None else int(state[0])
            if state is not None and float(state[1]) > now:
                continue
            adapter = get_adapter(r.adapter)
            pending = self.store.db.execute(
                "SELECT o.record_id, o.body FROM deliveries d JOIN outbox o USING (record_id) "
                "WHERE o.unit=? AND d.receiver=? AND d.state='pending' ORDER BY o.created_at, o.record_id LIMIT ?",
                (self.unit.name, r.name, limit),
            ).fetchall()
            for rid, body in pending:
                payload, headers = adapter.encode(json.loads(body))
                try:
                    status, answer = post(r, payload, headers)
                    verdict = adapter.verdict(status, answer)
                    text = f"{status} {answer[:200].decode(errors='replace')}"
                except (OSError, ssl.SSLError, http.client.HTTPException) as exc:
                    verdict, text = "retry", f"{type(exc).__name__}: {exc}"
                with self.store.transaction() as db:
                    if verdict == "retry":
                        failures += 1
                        delay = min(r.retry_initial_s * 2 ** (failures - 1), r.retry_max_s)
                        db.execute(
                            "UPDATE deliveries SET attempts=attempts+1, last_attempt=?, answer=? "
                            "WHERE record_id=? AND receiver=?",
                            (now, text, rid, r.name),
                        )
                        db.execute(
                            "INSERT OR REPLACE INTO receivers VALUES (?, ?, ?, ?, ?)",
                            (self.unit.name, r.name, failures, now + delay, text),
                        )
                    else:
                        db.execute(
                            "UPDATE deliveries SET state=?, attempts=attempts+1, last_attempt=?, acked_at=?, answer=? "
                            "WHERE record_id=? AND receiver=?",
                            (
                                "acked" if verdict == "ack" else "refused",
                                now,
                                now if verdict == "ack" else None,
                                text,
                                rid,
                                r.name,
                            ),
                        )
                        db.execute(
                            "INSERT OR REPLACE INTO receivers VALUES (?, ?, 0, ?, '')", (self.unit.name, r.name, now)
                        )
                if verdict == "retry":
                    counts["failed"] += 1
                    if failures == 1:
                        log.warning("%s: receiver %s failed (%s); resending with backoff", self.unit.name, r.name, text)
                    break
                if failures:
                    log.info("%s: receiver %s acknowledges again", self.unit.name, r.name)
                    failures = 0
                counts["acked" if verdict == "ack" else "refused"] += 1
                if verdict == "refused":
                    log.warning("%s: receiver %s refused %s: %s", self.unit.name, r.name, rid, text)
        return counts

    def retry_refused(self, receiver: str) -> int:
        with self.store.transaction() as db:
            cur = db.execute(
                "UPDATE deliveries SET state='pending' WHERE receiver=? AND state='refused' AND record_id IN "
                "(SELECT record_id FROM outbox WHERE unit=?)",
                (receiver, self.unit.name),
            )
        return cur.rowcount

    def purge(self, now: float) -> int:
        """Drop records older than keep_days that every receiver acknowledged or refused."""
        cutoff = now - self.keep_days * 86400.0
        with self.store.transaction() as db:
            old = [
                r[0]
                for r in db.execute(
                    "SELECT record_id FROM outbox WHERE unit=? AND created_at < ? AND record_id NOT IN "
                    "(SELECT record_id FROM deliveries WHERE state='pending')",
                    (self.unit.name, cutoff),
                )
            ]
            db.executemany("DELETE FROM deliveries WHERE record_id=?", [(r,) for r in old])
            db.executemany("DELETE FROM outbox WHERE record_id=?", [(r,) for r in old])
        return len(old)

    def list(self, since: float = 0.0, kind: str | None = None, state: str | None = None) -> list[dict[str, Any]]:
        q = (
            "SELECT o.record_id, o.kind, o.period, o.revision, o.created_at, d.receiver, d.state, d.attempts, "
            "d.acked_at, d.answer FROM outbox o LEFT JOIN deliveries d USING (record_id) "
            "WHERE o.unit=? AND o.created_at >= ?"
        )
        args: list[Any] = [self.unit.name, since]
        if kind:
            q += " AND o.kind=?"
            args.append(kind)
        if state:
            q += " AND d.state=?"
            args.append(state)
        return [dict(r) for r in self.store.db.execute(q + " ORDER BY o.created_at, o.record_id, d.receiver", args)]
