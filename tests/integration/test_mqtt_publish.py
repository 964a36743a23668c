"""MqttSink against a real mosquitto: birth and Last Will, delivery from the spool, outage and replay, live first."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from agent.config.mqtt import MqttConfig
from agent.config.spool import SpoolConfig
from agent.model import KpiValue, Quality
from agent.sinks.mqtt import MqttSink
from agent.sinks.topics import kpi_topic
from agent.spool.sqlite import SqliteSpool
from agent.wire import decode, encode_kpis
from tests.e2e.publisher_driver import Producer
from tests.servers.mosquitto import mosquitto
from tests.servers.mqtt_count import CountingSubscriber, Key
from tests.servers.mqtt_tls import persistent_mosquitto

pytestmark = pytest.mark.e2e  # starts mosquitto


class FakeClock:
    def __init__(self, now: float = 1_790_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def fast(port: int, **kw: object) -> MqttConfig:
    base: dict[str, object] = {
        "host": "127.0.0.1",
        "port": port,
        "reconnect_min_s": 0.05,
        "reconnect_max_s": 0.3,
        "keepalive_s": 5,
    }
    return MqttConfig.model_validate(base | kw)


@asynccontextmanager
async def running(sink: MqttSink) -> AsyncIterator[MqttSink]:
    async with sink:
        task = asyncio.create_task(sink.run())
        try:
            yield sink
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            assert task.cancelled(), f"sink.run() ended by itself: {task.exception()}"


async def wait_for(what: str, condition: Callable[[], bool], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not reached in {timeout_s} s")
        await asyncio.sleep(0.02)


def make_sink(config: MqttConfig, spool: SqliteSpool, boot: str, clock: Callable[[], float] = time.time) -> MqttSink:
    return MqttSink(
        config, spool, site="s1", gateway="gw1", boot=boot, version="9.9.9", config_hash="abc123", clock=clock
    )


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
async def test_birth_delivery_and_offline_on_exit(tmp_path: Path, protocol: str) -> None:
    with mosquitto(tmp_path / "broker") as broker, CountingSubscriber(broker.port) as counter:
        spool = SqliteSpool.open(tmp_path / "spool.sqlite", SpoolConfig())
        producer = Producer(spool, devices=10)
        async with running(make_sink(fast(broker.port, protocol=protocol), spool, producer.boot)) as sink:
            await sink.wait_connected(10)
            keys = producer.poll_round(time.time()) + producer.poll_round(time.time() + 1)
            sink.wake()
            await asyncio.to_thread(counter.wait_for_keys, keys, 10)
            await wait_for("spool drained", lambda: spool.stats().depth == 0, 10)
            stats = sink.stats()
            assert stats["connected"] and stats["acked"] == 20 and stats["published"] == 20
            assert stats["publish_latency_ms"]["p50"] is not None
            assert await sink.flush(5)
            assert sink.publish_health({"devices_ok": 10})
            await asyncio.to_thread(
                counter.wait_until, "health", lambda r: any(s["health"] == {"devices_ok": 10} for s in r.status), 10
            )
        await asyncio.to_thread(
            counter.wait_until, "offline status", lambda r: any(s["state"] == "offline" for s in r.status), 10
        )
        online, offline = counter.received.status[0], counter.received.status[-1]
        assert online["state"] == "online" and online["version"] == "9.9.9" and online["config_hash"] == "abc123"
        assert online["boot"] == producer.boot
        assert offline["state"] == "offline"
        assert counter.duplicates() == 0 and not counter.received.conflicts
        for payload in counter.received.first.values():
            assert decode(payload).type == "samples"
        spool.close()


@pytest.mark.long(seconds=25)  # 60,000 messages through a real broker
async def test_broker_down_ten_minutes_of_polls(tmp_path: Path) -> None:
    """100 devices x 20 points polled every second for ten minutes (of data) while the broker is down: after it
    returns every message arrives, exactly once after dedup on (gateway, boot, seq), with one content per key."""
    clock = FakeClock()
    broker = persistent_mosquitto(tmp_path / "broker").start()
    try:
        with CountingSubscriber(broker.port) as counter:
            spool = SqliteSpool.open(tmp_path / "spool.sqlite", SpoolConfig(), clock)
            producer = Producer(spool, devices=100, points=20)
            config = fast(broker.port, replay_rate_msgs_s=50_000, max_inflight=500)
            async with running(make_sink(config, spool, producer.boot, clock)) as sink:
                await sink.wait_connected(10)
                keys = []
                for _ in range(5):
                    clock.now += 1
                    keys += producer.poll_round(clock.now)
                    sink.wake()
                await asyncio.to_thread(counter.wait_for_keys, keys, 20)

                broker.stop()
                await wait_for("sink sees the outage", lambda: not sink.stats()["connected"], 10)
                for _ in range(600):
                    clock.now += 1
                    keys += producer.poll_round(clock.now)
                    sink.wake()
                    await asyncio.sleep(0)
                assert spool.stats().depth >= 60_000
                oldest_age_s = spool.stats().oldest_age_s
                assert oldest_age_s is not None and oldest_age_s >= 599
                assert sink.stats()["failures"] >= 1

                broker.start()
                await asyncio.to_thread(counter.wait_for_keys, keys, 180)
                await wait_for("spool drained", lambda: spool.stats().depth == 0, 30)
                stats = sink.stats()
            assert counter.missing(keys) == []
            assert counter.received.conflicts == []
            assert len(keys) == 60_500 == len(counter.received.first)
            # redeliveries are bounded by what was in flight when the link went down
            assert counter.duplicates() <= 2 * config.max_inflight
            assert stats["connects"] >= 2 and stats["acked"] >= 60_500
            assert spool.stats().dropped_total == 0
            spool.close()
    finally:
        broker.stop()


async def test_live_first_sends_fresh_data_ahead_of_the_backlog(tmp_path: Path) -> None:
    with mosquitto(tmp_path / "broker") as broker, CountingSubscriber(broker.port) as counter:
        spool = SqliteSpool.open(tmp_path / "spool.sqlite", SpoolConfig())
        producer = Producer(spool, devices=100)
        backlog = []
        for i in range(20):  # 2000 messages spooled while no sink ran
            backlog += producer.poll_round(time.time() - 20 + i)
        config = fast(broker.port, replay_rate_msgs_s=400, max_inflight=50)
        async with running(make_sink(config, spool, producer.boot)) as sink:
            await sink.wait_connected(10)
            await asyncio.to_thread(counter.wait_until, "replay started", lambda r: len(r.first) >= 100, 10)
            live = producer.poll_round(time.time())
            sink.wake()
            await asyncio.to_thread(counter.wait_for_keys, live, 10)
            order = list(counter.received.order)
            assert sink.stats()["replaying"], "the backlog should still be replaying at 400 msg/s"
            await asyncio.to_thread(counter.wait_for_keys, backlog, 30)
        arrived_before_live = {k for k in order if k in set(backlog)}
        assert len(arrived_before_live) < len(backlog), "live data waited for the whole backlog"
        backlog_order = [k for k in counter.received.order if k in set(backlog)]
        assert backlog_order == backlog, "the backlog is replayed oldest first"
        spool.close()


async def test_spool_bound_reached_drop_counter_equals_what_never_arrived(tmp_path: Path) -> None:
    """Broker down, the spool overflows: the oldest samples are dropped, no KPI is, and after the broker returns
    delivered + counted-as-dropped is exactly what was appended."""
    broker = persistent_mosquitto(tmp_path / "broker").start()
    try:
        with CountingSubscriber(broker.port) as counter:
            broker.stop()  # the subscriber's session waits on the broker's disk
            spool = SqliteSpool.open(tmp_path / "spool.sqlite", SpoolConfig(max_bytes=65536))
            producer = Producer(spool, devices=10)
            async with running(make_sink(fast(broker.port), spool, producer.boot)) as sink:
                samples: list[Key] = []
                kpis: list[Key] = []
                for _ in range(12):
                    samples += producer.poll_round(time.time())
                    kpis.append(append_kpi(spool, producer, time.time()))
                sink.wake()
                dropped = spool.stats().dropped_full
                assert dropped["samples"] > 0 and dropped["kpi"] == 0
                broker.start()
                await wait_for("spool drained", lambda: spool.stats().depth == 0, 20)
            await asyncio.to_thread(counter.wait_for_keys, kpis, 10)
            delivered = set(counter.received.first)
        lost = [k for k in samples if k not in delivered]
        assert len(lost) == dropped["samples"] == spool.stats().dropped_full["samples"]
        assert lost == samples[: len(lost)], "the oldest samples were the ones dropped"
        assert all(k in delivered for k in kpis)
        spool.close()
    finally:
        broker.stop()


def append_kpi(spool: SqliteSpool, producer: Producer, ts: float) -> Key:
    kpi = KpiValue("unit_power_kwh_per_t", "kiln1", 98.5, "kWh/t", "15m", ts - 900, ts, 1.0, Quality.GOOD, ts)
    seq = producer.seq
    producer.seq += 1
    payload = encode_kpis(site="s1", gateway="gw1", boot=producer.boot, seq=seq, ts=ts, kpis=[kpi])
    spool.append(kpi_topic("plant", "s1", "gw1"), payload, "kpi", seq=seq, ts=ts)
    return ("gw1", producer.boot, seq)
