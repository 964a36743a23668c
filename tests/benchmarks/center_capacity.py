"""Capacity of the centre on this machine: 1 and 2 ingestors (one shared-subscription group) draining real mosquitto
into a real store, InfluxDB 1.x (Debian's influxd) and VictoriaMetrics (Debian's single node, line protocol with
dedup as docs/scale.md prescribes). The figures that size a deployment (docs/scale.md).

Method (as center_ingest.py, which this reuses): the members connect once (creating their persistent sessions) and
stop; the plant traffic is published into their session queues (mosquitto routes a shared subscription round-robin
to members' sessions, offline ones included); then every member is started at once and timed until the store holds
every point. ``points_per_s`` and the ingestors' CPU (user+system) count from the first point seen in the store
to the last, so start-up (imports, connecting) is left out and the figure is the drain rate (decode, validate,
line protocol, HTTP write, ack), not the publisher's; with 2 ingestors a member that starts later than the other
has its start-up inside the window (a small overestimate of CPU). Broker and store CPU are over the whole drain. The store is polled
for its count every 0.25 s, which costs it a little CPU too.

The machine is shared: the 1-minute load average before and after each run is printed with the figures, and runs
are kept short (default 4,000 messages of 20 points per case).

    .venv/bin/python -m tests.benchmarks.center_capacity [--messages 4000] [--points 20] [--batch 5000]
        [--ingestors 1,2] [--stores influxdb,victoriametrics]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.benchmarks.center_ingest import _cpu_s
from tests.e2e.test_center_harness import T0, CenterProcess, Publisher, center_config, plant_traffic, wait_until
from tests.servers.influx import influxd
from tests.servers.mosquitto import mosquitto
from tests.servers.process import ServerProcess
from tests.servers.victoria import victoria


def load1() -> float:
    return os.getloadavg()[0]


def _store(kind: str, tmp: Path) -> tuple[ServerProcess, dict[str, Any], Callable[[], int]]:
    """Started store, the ``influx`` section for it, and how many sample points it holds."""
    if kind == "influxdb":
        db = influxd(tmp / "db")
        db.start()
        db.create_database("energy")
        return (
            db,
            {"kind": "v1", "url": db.url, "database": "energy"},
            lambda: int(db.scalar("SELECT count(value) FROM sample", "energy")),
        )
    vm = victoria(tmp / "vm")
    vm.start()

    def count() -> int:
        vm.flush()
        rows = vm.query("sum(count_over_time(sample_value[3650d]))", T0 + 86400)
        return int(float(rows[0]["value"][1])) if rows else 0

    return vm, {"kind": "victoriametrics", "url": vm.url}, count


def run(store: str, ingestors: int, messages: int, points: int, batch: int, tmp: Path) -> dict[str, Any]:
    devices = 20
    traffic = plant_traffic(gateways=2, devices=devices // 2, polls=max(1, messages // devices), points=points)
    total = len(traffic) * points
    load_before = load1()
    with mosquitto(tmp / "mq") as broker:
        server, influx, count = _store(store, tmp)
        try:
            influx |= {"batch_points": batch, "flush_interval_ms": 200}
            members = [
                CenterProcess(tmp / "c", center_config(broker.port, influx, client_id=f"center-{i}"))
                for i in range(ingestors)
            ]
            for m in members:
                m.start()
            for m in members:
                assert m.stop() == 0
            broker_cpu0 = _cpu_s(broker.pid)
            pub = Publisher(broker.port)
            pub.publish_all(traffic, timeout_s=600)
            pub.close()
            broker_in = _cpu_s(broker.pid) - broker_cpu0  # taking the messages in (QoS 1, queued to sessions)
            side = {"broker": broker.pid, "store": server.pid}
            side_cpu0 = {k: _cpu_s(pid) for k, pid in side.items()}
            t0 = time.monotonic()
            for m in members:
                m.start(wait=False)
            pids = [m.proc.pid for m in members if m.proc is not None]
            cpu = cpu_first = 0.0
            first: float | None = None
            n_first = 0

            def done() -> bool:
                nonlocal cpu, cpu_first, first, n_first
                cpu = sum(_cpu_s(pid) for pid in pids)
                n = count()
                if first is None and n > 0:  # the drain window starts: start-up (imports, connect) is behind us
                    first, n_first, cpu_first = time.monotonic(), n, cpu
                return n >= total

            wait_until(done, 600, f"{total} points in {store}", poll_s=0.25)
            end = time.monotonic()
            side_cpu = {k: _cpu_s(pid) - side_cpu0[k] for k, pid in side.items()}
            for m in members:
                m.stop()
            # each member's share of the messages, from the counters it logs when it stops
            shares = [int(re.findall(r"acked=(\d+)", m.log())[-1]) for m in members]
        finally:
            server.stop()
    steady = end - (first or t0)
    drained = total - n_first
    if drained <= 0 or steady <= 0:  # all of it landed before the first look (a tiny run): count the whole run
        steady, drained, cpu_first = end - t0, total, 0.0
    cpu_per_1000 = (cpu - cpu_first) * 1e6 / drained
    return {
        "store": store,
        "ingestors": ingestors,
        "messages": len(traffic),
        "points": total,
        "batch_points": batch,
        "elapsed_s": round(end - t0, 2),
        "points_per_s": round(drained / steady),
        "points_per_s_incl_startup": round(total / (end - t0)),
        "messages_per_s": round(drained / points / steady),
        "ingestor_cpu_s_incl_startup": round(cpu, 2),
        "ingestor_cpu_ms_per_1000_points": round(cpu_per_1000, 1),
        # X ms of CPU per 1,000 points is X cores per million points/s
        "ingestor_cores_per_million_points_s": round(cpu_per_1000, 1),
        "broker_in_cpu_ms_per_1000_points": round(broker_in * 1e6 / total, 1),  # publishers -> sessions
        "broker_cpu_ms_per_1000_points": round(side_cpu["broker"] * 1e6 / total, 1),  # sessions -> ingestors
        "store_cpu_ms_per_1000_points": round(side_cpu["store"] * 1e6 / total, 1),  # whole run, incl. count polls
        "acked_per_ingestor": shares,
        "load1_before": round(load_before, 2),
        "load1_after": round(load1(), 2),
    }


COLUMNS = (
    ("store", "store"),
    ("ingestors", "ingestors"),
    ("points", "points"),
    ("points_per_s", "points/s"),
    ("messages_per_s", "msg/s"),
    ("ingestor_cpu_ms_per_1000_points", "ingestor CPU ms/1k pts"),
    ("broker_in_cpu_ms_per_1000_points", "broker in ms/1k"),
    ("broker_cpu_ms_per_1000_points", "broker out ms/1k"),
    ("store_cpu_ms_per_1000_points", "store ms/1k"),
    ("load1_before", "load before"),
    ("load1_after", "load after"),
)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=4000)
    parser.add_argument("--points", type=int, default=20)
    parser.add_argument("--batch", type=int, default=5000)
    parser.add_argument("--ingestors", default="1,2")
    parser.add_argument("--stores", default="influxdb,victoriametrics")
    args = parser.parse_args()
    results = []
    for store in args.stores.split(","):
        for n in (int(x) for x in args.ingestors.split(",")):
            with tempfile.TemporaryDirectory() as tmp:
                results.append(run(store, n, args.messages, args.points, args.batch, Path(tmp)))
    report = {"cpus": os.cpu_count(), "uptime": Path("/proc/loadavg").read_text().strip(), "runs": results}
    print(json.dumps(report))
    print(f"machine: {report['cpus']} CPUs, /proc/loadavg at the end: {report['uptime']}")
    widths = [max(len(title), *(len(str(r[key])) for r in results)) for key, title in COLUMNS]
    print("  ".join(title.rjust(w) for (_, title), w in zip(COLUMNS, widths, strict=True)))
    for r in results:
        print("  ".join(str(r[key]).rjust(w) for (key, _), w in zip(COLUMNS, widths, strict=True)))


if __name__ == "__main__":
    main()
