"""Publish throughput from the spool to a local mosquitto (Debian's, started here on a free loopback port), QoS 1,
with realistic messages (one device poll of 20 points, about 2.2 kB). Two figures per max_inflight:

- replay: N messages already spooled, the sink connects and drains them (replay rate unlimited) -> msg/s until
  every PUBACK was received and acked in the spool;
- live: a producer appends polls of 100 devices as fast as it can while the sink publishes -> msg/s end to end,
  and the publish latency (publish() to PUBACK) the sink measured.

    .venv/bin/python -m tests.benchmarks.spool_publish [--messages 20000] [--inflight 100 500]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from agent.config.mqtt import MqttConfig
from agent.config.spool import SpoolConfig
from agent.sinks.mqtt import MqttSink
from agent.spool.sqlite import SqliteSpool
from tests.e2e.publisher_driver import Producer
from tests.servers.mosquitto import mosquitto

POINTS = 20


async def _drain(sink: MqttSink, spool: SqliteSpool) -> None:
    while spool.stats().depth:  # noqa: ASYNC110  # reason: the spool is polled, it has no event to await
        await asyncio.sleep(0.005)


async def _publish(mode: str, port: int, folder: Path, n: int, inflight: int) -> dict[str, Any]:
    """``replay``: n messages spooled before the sink connects; ``live``: produced while it runs. Both measured
    until the spool is empty."""
    spool = SqliteSpool.open(folder / f"{mode}-{inflight}.sqlite", SpoolConfig())
    producer = Producer(spool, devices=100, points=POINTS)
    rounds = (n + 99) // 100
    if mode == "replay":
        for i in range(rounds):
            producer.poll_round(time.time() - 1000 + i)
    config = MqttConfig(host="127.0.0.1", port=port, max_inflight=inflight, replay_rate_msgs_s=1e9)
    sink = MqttSink(config, spool, site="s1", gateway="gw1", boot=producer.boot, version="bench", config_hash="b")
    async with sink:
        task = asyncio.create_task(sink.run())
        await sink.wait_connected(10)
        started = time.perf_counter()
        if mode == "live":
            for _ in range(rounds):
                producer.poll_round(time.time())
                sink.wake()
                await asyncio.sleep(0)
        await _drain(sink, spool)
        took = time.perf_counter() - started
        stats = sink.stats()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    spool.close()
    count = producer.seq
    return {
        "mode": mode,
        "max_inflight": inflight,
        "messages": count,
        "msgs_s": round(count / took),
        "samples_s": round(count * POINTS / took),
        "latency_ms": stats["publish_latency_ms"],
    }


async def replay(port: int, folder: Path, n: int, inflight: int) -> dict[str, Any]:
    return await _publish("replay", port, folder, n, inflight)


async def live(port: int, folder: Path, n: int, inflight: int) -> dict[str, Any]:
    return await _publish("live", port, folder, n, inflight)


async def run_all(args: argparse.Namespace, folder: Path) -> list[dict[str, Any]]:
    results = []
    with mosquitto(folder / "broker") as broker:
        for inflight in args.inflight:
            results.append(await replay(broker.port, folder, args.messages, inflight))
            results.append(await live(broker.port, folder, args.messages, inflight))
    return results


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--messages", type=int, default=20000)
    p.add_argument("--inflight", type=int, nargs="+", default=[100, 500])
    p.add_argument("--dir", default="/var/tmp")
    args = p.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="publish-bench-", dir=args.dir))
    try:
        results = asyncio.run(run_all(args, folder))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print(json.dumps(results, indent=2))
    print(f"{'mode':<8}{'inflight':>9}{'msgs':>8}{'msg/s':>8}{'samples/s':>11}{'p50 ms':>8}{'p99 ms':>8}")
    for r in results:
        lat = r["latency_ms"]
        print(
            f"{r['mode']:<8}{r['max_inflight']:>9}{r['messages']:>8}{r['msgs_s']:>8}{r['samples_s']:>11}"
            f"{lat['p50']:>8}{lat['p99']:>8}"
        )


if __name__ == "__main__":
    main()
