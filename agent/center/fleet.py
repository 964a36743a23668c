"""Several brokers in one centre process: one :class:`Ingestor` per broker, side by side, nothing shared but the store.

``brokers:`` in center.yaml lists the brokers (plants sharded across independent brokers, or the listeners of a
clustered broker). Each entry gets its own pipeline: its own MQTT client (credentials, TLS, client id, persistent
session, shared-subscription group), its own writer connection, batch, retries, gap tracker and series quota. So:

- a broker that is down, refuses us or drops our session only affects its own pipeline; paho reconnects to it in
  the background while the others go on writing and acknowledging;
- back-pressure stays per broker: a store outage stalls every pipeline (each holds its batch un-acked and its
  broker queues the rest), and each recovers on its own;
- gap reports stay once per group: a gateway publishes to one broker, and the members of that broker's group tell
  each other what they saw on that broker's share topic.

With a single ``mqtt:`` section there is one member and the behaviour is exactly the single-broker ingestor's. A
bug in any member propagates (the process exits and systemd restarts it); nothing un-acked is lost by that.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable

from agent.center.config import CenterConfig, InfluxConfig
from agent.center.influx import InfluxWriter
from agent.center.ingestor import Ingestor
from agent.center.intake import IngestStats


class Fleet:
    def __init__(
        self,
        config: CenterConfig,
        make_writer: Callable[[InfluxConfig], InfluxWriter],
        *,
        ready: Callable[[], None] = lambda: None,
    ) -> None:
        """``ready`` is called once a first broker granted the subscriptions: a broker that is down at start must
        not keep the others from being reported ready (systemd would kill the whole service)."""
        self.names: list[str] = []
        self.members: list[Ingestor] = []
        several = len(config.brokers) > 1
        for name, mqtt in config.endpoints():
            member = config.model_copy(update={"mqtt": mqtt, "brokers": []})
            label = f"{mqtt.client_id}@{name}" if several else None
            self.names.append(name)
            self.members.append(Ingestor(member, make_writer(config.influx), ready=ready, name=label))

    @property
    def target(self) -> str:
        return self.members[0].writer_target

    async def run(self, stop: asyncio.Event) -> None:
        async with asyncio.TaskGroup() as tasks:
            for member in self.members:
                tasks.create_task(member.run(stop))

    def stalled(self) -> str | None:
        """The first member whose pipeline broke its time bound, for the watchdog."""
        return next((why for m in self.members if (why := m.stalled()) is not None), None)

    def stats(self) -> IngestStats:
        """The members' counters added up."""
        total = IngestStats()
        for member in self.members:
            stats = member.stats()
            for f in dataclasses.fields(IngestStats):
                setattr(total, f.name, getattr(total, f.name) + getattr(stats, f.name))
        return total

    def summary(self) -> str:
        """One line for ``systemctl status``: the totals, then which brokers are connected."""
        if len(self.members) == 1:
            return self.members[0].stats().summary()
        up = [name for name, m in zip(self.names, self.members, strict=True) if m.connected()]
        return f"{self.stats().summary()}; brokers connected {len(up)}/{len(self.members)} ({', '.join(up) or '-'})"
