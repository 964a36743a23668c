"""Benchmark: points per second one ingestor writes to InfluxDB 1.x (Debian's influxd) on this machine.

The broker is pre-loaded: the ingestor connects once (creating its persistent session), stops, the messages are
published into its session queue, and then the ingestor is started and timed until InfluxDB holds every point.
``points_per_s`` counts from the first point in InfluxDB to the last (process start-up excluded;
``points_per_s_incl_startup`` includes it). So the figure is the ingestor's own rate (decode + validate + line protocol + HTTP write + ack), not the
publisher's. CPU is the ingestor process's user+system time over the same run.

    .venv/bin/python -m tests.benchmarks.center_ingest [--messages 4000] [--points 20] [--batch 5000]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from tests.e2e.test_center_harness import CenterProcess, Publisher, center_config, plant_traffic, wait_until
from tests.servers.influx import influxd
from tests.servers.mosquitto import mosquitto


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run(messages: int, points: int, batch: int, tmp: Path) -> dict[str, float | int]:
    devices = 20
    polls = max(1, messages // devices)
    traffic = plant_traffic(gateways=1, devices=devices, polls=polls, points=points)
    total = len(traffic) * points
    with mosquitto(tmp / "mq") as broker, influxd(tmp / "db") as db:
        db.create_database("energy")
        cfg = center_config(
            broker.port,
            {"kind": "v1", "url": db.url, "database": "energy", "batch_points": batch, "flush_interval_ms": 200},
        )
        center = CenterProcess(tmp / "c", cfg)
        center.start()
        assert center.stop() == 0
        pub = Publisher(broker.port)
        t = time.monotonic()
        pub.publish_all(traffic, timeout_s=600)
        publish_s = time.monotonic() - t
        pub.close()
        t0 = time.monotonic()
        center.start()
        assert center.proc is not None
        pid = center.proc.pid

        cpu = 0.0
        first: float | None = None

        def sample_cpu() -> bool:
            nonlocal cpu, first
            cpu = _cpu_s(pid)
            n = int(db.scalar("SELECT count(value) FROM sample", "energy"))
            if first is None and n > 0:
                first = time.monotonic()
            return n >= total

        wait_until(sample_cpu, 600, f"{total} points", poll_s=0.1)
        end = time.monotonic()
        elapsed = end - t0
        steady = end - (first or t0)
        center.stop()

    return {
        "messages": len(traffic),
        "points_per_message": points,
        "points": total,
        "batch_points": batch,
        "elapsed_s": round(elapsed, 3),
        "points_per_s_incl_startup": round(total / elapsed),
        "points_per_s": round(total / steady),
        "messages_per_s": round(len(traffic) / elapsed),
        "ingestor_cpu_s": round(cpu, 2),
        "ingestor_cpu_ms_per_1000_points": round(cpu * 1e6 / total, 1),
        "publish_s": round(publish_s, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=4000)
    parser.add_argument("--points", type=int, default=20)
    parser.add_argument("--batch", type=int, default=5000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        result = run(args.messages, args.points, args.batch, Path(tmp))
    print(json.dumps(result))
    width = max(len(k) for k in result)
    for key, value in result.items():
        print(f"{key:<{width}}  {value}")


if __name__ == "__main__":
    main()
