"""The agent does not replay a provisional KPI value of a window it has since finalised (issue 18).

While the broker is away the spool keeps one KPI message per evaluation, each with the provisional values of the
windows still open. When a window closes its final value is spooled too; after the outage the default live-first
replay sends that final value first and the backlog after it. :class:`FinalisedWindows` remembers the windows whose
final value this process has spooled; :class:`SupersedingReader` sits between the spool and the MQTT sink and, as
KPI records are read for publishing, leaves out each provisional value of such a window: a record is re-encoded
without them, a record with nothing else is deleted from the spool and not sent. Both are counted (``stats``).

Only this process's finals are known: after a restart the backlog's provisional values are sent as before. The
centre keeps provisional and final values in separate series (agent.center.schema), which stays the guarantee that
a provisional value never replaces a final one whatever the order of arrival.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol

import orjson

from agent.model import KpiValue
from agent.sinks.forward import LiveRecord, OutgoingRecord

log = logging.getLogger("agent.runtime")

KEEP_PER_KPI = 512  # final windows remembered per KPI and window kind: 5 days of 15-minute windows
_LOG_EVERY_S = 60.0
WindowKey = tuple[str, str, str]  # scope, name, window


class FinalisedWindows:
    """The window starts of the final values spooled, per KPI and window kind (the last KEEP_PER_KPI of each)."""

    def __init__(self) -> None:
        self._starts: dict[WindowKey, dict[float, None]] = {}

    def record(self, values: Iterable[KpiValue]) -> None:
        for k in values:
            if not k.final:
                continue
            starts = self._starts.setdefault((k.scope, k.name, k.window), {})
            starts[k.window_start] = None
            if len(starts) > KEEP_PER_KPI:
                del starts[next(iter(starts))]

    def finalised(self, scope: str, name: str, window: str, window_start: float) -> bool:
        return window_start in self._starts.get((scope, name, window), ())


class _Reader(Protocol):
    def read(self, after_id: int, limit: int, upto_id: int | None = None) -> Sequence[OutgoingRecord]: ...
    def last_id(self) -> int: ...
    def ack(self, ids: Iterable[int]) -> None: ...
    def flush(self) -> None: ...
    def set_aside(self, record_id: int, reason: str) -> None: ...


class SupersedingReader:
    """The spool as the sink reads it, minus provisional KPI values of windows since finalised. Every other method
    is the spool's own."""

    def __init__(self, spool: _Reader, finals: FinalisedWindows, clock: Callable[[], float] = time.monotonic) -> None:
        self._spool = spool
        self._finals = finals
        self._clock = clock
        self._logged_at: float | None = None
        self.values_left_out = 0
        self.records_deleted = 0

    def read(self, after_id: int, limit: int, upto_id: int | None = None) -> list[OutgoingRecord]:
        out: list[OutgoingRecord] = []
        deleted: list[int] = []
        while len(out) < limit:
            batch = self._spool.read(after_id, limit - len(out), upto_id)
            if not batch:
                break
            for r in batch:
                after_id = r.id
                kept = self._without_superseded(r)
                if kept is None:
                    deleted.append(r.id)
                else:
                    out.append(kept)
        if deleted:
            self._spool.ack(deleted)
            self.records_deleted += len(deleted)
        return out

    def _without_superseded(self, r: OutgoingRecord) -> OutgoingRecord | None:
        if getattr(r, "kind", None) != "kpi":
            return r
        msg = orjson.loads(r.payload)
        kpis: list[dict[str, Any]] = msg.get("kpis", [])
        kept = [k for k in kpis if k.get("final", True) or not self._superseded(k)]
        if len(kept) == len(kpis):
            return r
        self.values_left_out += len(kpis) - len(kept)
        now = self._clock()
        if self._logged_at is None or now - self._logged_at >= _LOG_EVERY_S:
            self._logged_at = now
            log.info(
                "kpi replay: provisional values of windows since finalised are not sent (%d so far, %d messages "
                "with nothing else deleted)",
                self.values_left_out,
                self.records_deleted + (0 if kept else 1),
            )
        if not kept:
            return None
        msg["kpis"] = kept
        return LiveRecord(r.id, r.topic, orjson.dumps(msg))

    def _superseded(self, k: dict[str, Any]) -> bool:
        return self._finals.finalised(k["scope"], k["name"], k["window"], float(k["window_start"]))

    def stats(self) -> dict[str, int]:
        return {
            "kpi_provisional_superseded": self.values_left_out,
            "kpi_records_superseded": self.records_deleted,
        }

    def last_id(self) -> int:
        return self._spool.last_id()

    def ack(self, ids: Iterable[int]) -> None:
        self._spool.ack(ids)

    def flush(self) -> None:
        self._spool.flush()

    def set_aside(self, record_id: int, reason: str) -> None:
        """The spool's own (a message the broker cannot take, agent.sinks.setaside)."""
        self._spool.set_aside(record_id, reason)
