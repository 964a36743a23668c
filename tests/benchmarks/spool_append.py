"""Spool append and replay rates under each fsync policy, with realistic messages (one device poll of 20 points,
about 2.2 kB of JSON). Append = encode nothing, just ``SqliteSpool.append`` (one transaction each); replay =
``read`` 500 oldest + ``ack`` them, until empty. Prints JSON, then a table.

    .venv/bin/python -m tests.benchmarks.spool_append [--messages 20000] [--always-messages 1000] [--dir /var/tmp]
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from agent.config.spool import SpoolConfig
from agent.spool.sqlite import SqliteSpool
from tests.e2e.publisher_driver import Producer

POINTS = 20


def sample_payloads(n: int, folder: Path) -> list[tuple[str, bytes]]:
    """n realistic (topic, payload) pairs, made once by the test producer on a scratch spool."""
    scratch = SqliteSpool.open(folder / "scratch.sqlite", SpoolConfig())
    producer = Producer(scratch, devices=100, points=POINTS)
    rounds = (n + 99) // 100
    for i in range(rounds):
        producer.poll_round(time.time() - rounds + i)
    out = [(r.topic, r.payload) for r in scratch.read(0, n)]
    scratch.close()
    return out


def run_policy(fsync: str, messages: list[tuple[str, bytes]], folder: Path) -> dict[str, Any]:
    path = folder / f"{fsync}.sqlite"
    spool = SqliteSpool.open(path, SpoolConfig.model_validate({"fsync": fsync, "max_bytes": 1 << 34}))
    started = time.perf_counter()
    for i, (topic, payload) in enumerate(messages):
        spool.append(topic, payload, "samples", seq=i)
    spool.flush()
    append_s = time.perf_counter() - started
    started = time.perf_counter()
    after = 0
    while batch := spool.read(after, 500):
        after = batch[-1].id
        spool.ack(r.id for r in batch)
    spool.flush()
    replay_s = time.perf_counter() - started
    size = path.stat().st_size + (Path(f"{path}-wal").stat().st_size if Path(f"{path}-wal").exists() else 0)
    spool.close()
    n = len(messages)
    return {
        "fsync": fsync,
        "messages": n,
        "append_msgs_s": round(n / append_s),
        "append_samples_s": round(n * POINTS / append_s),
        "append_us_per_msg": round(append_s / n * 1e6, 1),
        "replay_msgs_s": round(n / replay_s),
        "replay_samples_s": round(n * POINTS / replay_s),
        "file_bytes_after": size,
        "avg_payload_bytes": round(sum(len(p) for _, p in messages) / n),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--messages", type=int, default=20000, help="appends under fsync: interval")
    p.add_argument("--always-messages", type=int, default=1000, help="appends under fsync: always")
    p.add_argument("--dir", default="/var/tmp", help="a folder on the disk to measure (not tmpfs)")
    args = p.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="spool-bench-", dir=args.dir))
    try:
        messages = sample_payloads(max(args.messages, args.always_messages), folder)
        results = [
            run_policy("interval", messages[: args.messages], folder),
            run_policy("always", messages[: args.always_messages], folder),
        ]
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print(json.dumps(results, indent=2))
    print(
        f"{'fsync':<10}{'msgs':>8}{'append msg/s':>14}{'samples/s':>12}{'us/msg':>9}{'replay msg/s':>14}{'samples/s':>12}"
    )
    for r in results:
        print(
            f"{r['fsync']:<10}{r['messages']:>8}{r['append_msgs_s']:>14}{r['append_samples_s']:>12}"
            f"{r['append_us_per_msg']:>9}{r['replay_msgs_s']:>14}{r['replay_samples_s']:>12}"
        )


if __name__ == "__main__":
    main()
