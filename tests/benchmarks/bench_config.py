"""How long loading and checking config takes: a large valid site using the shipped profile library, and a site
full of errors. Prints JSON, then a table.

    .venv/bin/python -m tests.benchmarks.bench_config [--devices 200] [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from agent.config.load import load_site, shipped_profile_dir
from agent.errors import ConfigError


def _site_text(devices: int, profiles: list[str], broken: bool) -> str:
    lines = ["site: bench", "gateway: gw-1", "buses:"]
    buses = max(1, devices // 16)
    lines += [f"  - {{name: rs485-{b}, port: /dev/ttyUSB{b}, baudrate: 115200, pause_ms: 5}}" for b in range(buses)]
    lines.append("devices:")
    for i in range(devices):
        profile = profiles[i % len(profiles)]
        key = "intervall_s" if broken else "interval_s"
        if i % 2:
            where = f"bus: rs485-{i % buses}, unit_id: {1 + i // buses}"
        else:
            where = f"host: 10.0.{i // 250}.{1 + i % 250}"
        lines.append(f"  - {{name: dev-{i}, profile: {profile}, {where}, {key}: 60}}")
    return "\n".join(lines) + "\n"


def _time(fn: Callable[[], object], repeat: int) -> list[float]:
    out: list[float] = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--devices", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    library = sorted(p.stem for p in shipped_profile_dir().glob("*.yaml"))
    results: dict[str, object] = {"devices": args.devices, "shipped_profiles": len(library)}
    with tempfile.TemporaryDirectory() as tmp:
        good = Path(tmp) / "good.yaml"
        good.write_text(_site_text(args.devices, library, broken=False))
        bad = Path(tmp) / "bad.yaml"
        bad.write_text(_site_text(args.devices, library, broken=True))
        loaded = load_site(good)
        results["profiles_used"] = len(loaded.profiles)
        results["load_valid_s"] = _time(lambda: load_site(good), args.repeat)

        def load_bad() -> None:
            try:
                load_site(bad)
            except ConfigError as e:
                results["errors_reported"] = len(e.issues)

        results["load_with_errors_s"] = _time(load_bad, args.repeat)
    print(json.dumps(results))
    print(f"{'case':<22}{'median ms':>12}{'max ms':>10}")
    for key in ("load_valid_s", "load_with_errors_s"):
        times = results[key]
        assert isinstance(times, list)
        print(f"{key:<22}{statistics.median(times) * 1000:>12.1f}{max(times) * 1000:>10.1f}")


if __name__ == "__main__":
    main()
