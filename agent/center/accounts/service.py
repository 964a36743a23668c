"""The accounts' work inside ``energy-center run``: refresh the metered quarters, produce due records, send them.

:meth:`AccountsService.tick` does one round for every unit, synchronously, at an injected time (tests drive it with
a stepped clock: a week of receiver outage is a loop of ticks, not a week). :meth:`AccountsService.run` calls it
every ``period_s`` in a worker thread until stopped. One round: recompute the quarters from the last produced
15-minute period minus ``lookback_s`` (late data from a spool replay lands in them) up to the due time, produce
the due records, send what is pending, drop records past ``keep_days``. A failure of InfluxDB or of the database
is logged once and retried next round; nothing is marked produced that was not stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from agent.center.accounts.config import AccountsConfig
from agent.center.accounts.metered import InfluxReader, SeriesReader
from agent.center.accounts.outbox import Outbox, Post
from agent.center.accounts.periods import QUARTER_S
from agent.center.accounts.store import Store, open_store
from agent.center.config import InfluxConfig

log = logging.getLogger("agent.center.accounts")

LOOKBACK_S = 3600.0  # quarters recomputed behind the production point (late data)
CHUNK_S = 86400.0  # at most one day of readings per query round


class AccountsService:
    def __init__(
        self,
        config: AccountsConfig,
        reader: SeriesReader,
        *,
        store: Store | None = None,
        post: Post | None = None,  # None: an HttpsPoster per sending round
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.store = store or open_store(config.state_dir)
        self.reader = reader
        self.post = post
        self.clock = clock
        self.outboxes = [Outbox(u, self.store, config.settle_s, config.keep_days) for u in config.units]
        self._failing = False
        self._refreshed: dict[str, float] = {}
        now = clock()
        for box in self.outboxes:
            box.start_at(now)

    @staticmethod
    def for_influx(config: AccountsConfig, influx: InfluxConfig) -> AccountsService:
        return AccountsService(config, InfluxReader(influx))

    def tick(self, now: float | None = None) -> dict[str, int]:
        try:
            return self._round(self.clock() if now is None else now)
        finally:
            self.reader.close()  # a connection is kept within a round, not for the idle time between rounds

    def _round(self, now: float) -> dict[str, int]:
        totals = {"records": 0, "acked": 0, "refused": 0, "failed": 0}
        for box in self.outboxes:
            due = box.due_until(now)
            if self._refreshed.get(box.unit.name) != due:
                start = box._progress("15m", due) - LOOKBACK_S
                t = start - start % QUARTER_S
                while t < due:
                    end = min(due, t + CHUNK_S)
                    box.ledger.refresh(self.reader, t, end)
                    t = end
                self._refreshed[box.unit.name] = due
            totals["records"] += len(box.produce(now))
            sent = box.send(now, self.post)
            for k, v in sent.items():
                totals[k] += v
            box.purge(now)
        return totals

    async def run(self, stop: asyncio.Event, period_s: float = 10.0) -> None:
        while not stop.is_set():
            try:
                await asyncio.to_thread(self.tick)
                if self._failing:
                    log.info("accounts: working again")
                    self._failing = False
            except (OSError, RuntimeError, ValueError) as exc:
                if not self._failing:
                    log.error("accounts: a round failed (%s); retrying every %.0f s", exc, period_s)
                self._failing = True
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), period_s)
