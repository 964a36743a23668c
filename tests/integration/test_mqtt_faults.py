"""A hung broker (SIGSTOP: the socket stays open, nothing answers) is detected by keepalive, not by a socket error;
the sink reconnects when it wakes up and nothing polled meanwhile is lost."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import pytest

from agent.config.spool import SpoolConfig
from agent.spool.sqlite import SqliteSpool
from tests.e2e.publisher_driver import Producer
from tests.integration.test_mqtt_publish import fast, make_sink, running
from tests.servers.mosquitto import mosquitto
from tests.servers.mqtt_count import CountingSubscriber, Key

pytestmark = pytest.mark.e2e  # starts mosquitto

KEEPALIVE_S = 5


async def test_hung_broker_is_detected_by_keepalive_and_nothing_is_lost(tmp_path: Path) -> None:
    with mosquitto(tmp_path / "broker") as broker, CountingSubscriber(broker.port) as counter:
        spool = SqliteSpool.open(tmp_path / "spool.sqlite", SpoolConfig())
        producer = Producer(spool, devices=10)
        keys: list[Key] = []
        async with running(make_sink(fast(broker.port, keepalive_s=KEEPALIVE_S), spool, producer.boot)) as sink:
            await sink.wait_connected(10)
            os.kill(broker.pid, signal.SIGSTOP)
            try:
                frozen = time.monotonic()
                while sink.stats()["connected"]:
                    assert time.monotonic() - frozen < 2 * KEEPALIVE_S + 3, "keepalive did not notice the hang"
                    keys += producer.poll_round(time.time())
                    sink.wake()
                    await asyncio.sleep(0.2)
                detected_s = time.monotonic() - frozen
            finally:
                os.kill(broker.pid, signal.SIGCONT)
            keys += producer.poll_round(time.time())
            sink.wake()
            await asyncio.to_thread(counter.wait_for_keys, keys, 30)
            stats = sink.stats()
        assert KEEPALIVE_S <= detected_s <= 2 * KEEPALIVE_S + 3
        assert counter.missing(keys) == [] and counter.received.conflicts == []
        assert stats["connected"] and stats["connects"] >= 2 and "Keep alive timeout" in stats["last_error"]
        spool.close()
