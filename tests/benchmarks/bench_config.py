"""How long loading and checking config takes, and how much memory.

Two sites, timed in this process (load_site, then the whole compile step):

- a large valid site using the shipped profile library (``--devices``), and the same site full of errors;
- one device whose profile has ``--points`` points (a quarter each float32 holding registers, uint16 input
  registers, coils and discrete inputs). For this one ``energy-agent validate`` also runs as its own process,
  whose wall time and peak RSS are what a technician sees (the issue's budget: 100,000 points in <= 5 s and
  <= 200 MB).

Prints JSON, then a table.

    .venv/bin/python -m tests.benchmarks.bench_config [--devices 200] [--points 100000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from agent.config.load import ENV_PROFILES, load_site, shipped_profile_dir
from agent.errors import ConfigError
from agent.runtime.compile import compile_site

REPO = Path(__file__).resolve().parents[2]
_KINDS = (
    ("holding_register", "float32", 2),
    ("input_register", "uint16", 1),
    ("coil", "bool", 1),
    ("discrete_input", "bool", 1),
)


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


def write_big_site(folder: Path, points: int) -> Path:
    """A site with one Modbus TCP device whose profile has ``points`` points, written block style."""
    (folder / "profiles").mkdir(exist_ok=True)
    with (folder / "profiles" / "big.yaml").open("w") as out:
        out.write("profile: big\naddress_base: 0\npoints:\n")
        for i in range(points):
            kind, data_type, width = _KINDS[i % 4]
            out.write(
                f"  - name: p{i}\n    kind: {kind}\n    address: {(i // 4) * width}\n    type: {data_type}\n"
                "    unit: kWh\n"
            )
    site = folder / "site.yaml"
    site.write_text(
        "site: bench\ngateway: gw-1\nprofile_dirs: [profiles]\n"
        "devices:\n  - {name: big-meter, profile: big, host: 127.0.0.1}\n"
    )
    return site


def _time(fn: Callable[[], object], repeat: int) -> list[float]:
    out: list[float] = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def validate_process(site: Path) -> dict[str, float | int]:
    """``energy-agent validate`` as its own process: exit status, wall seconds, peak RSS in MB."""
    env = {**os.environ, ENV_PROFILES: str(site.parent / "profiles")}
    start = time.perf_counter()
    child = subprocess.Popen(
        [sys.executable, "-m", "agent", "validate", "--quiet", str(site)], cwd=REPO, env=env, stdout=subprocess.DEVNULL
    )
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    return {
        "exit": child.returncode,
        "wall_s": time.perf_counter() - start,
        "peak_rss_mb": usage.ru_maxrss / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--devices", type=int, default=200)
    parser.add_argument("--points", type=int, default=100_000, help="points in the one-device site's profile")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    library = sorted(p.stem for p in shipped_profile_dir().glob("*.yaml") if not p.stem.startswith("dlt645-"))
    results: dict[str, object] = {"devices": args.devices, "points": args.points, "shipped_profiles": len(library)}
    with tempfile.TemporaryDirectory() as tmp:
        good = Path(tmp) / "good.yaml"
        good.write_text(_site_text(args.devices, library, broken=False))
        bad = Path(tmp) / "bad.yaml"
        bad.write_text(_site_text(args.devices, library, broken=True))
        results["profiles_used"] = len(load_site(good).profiles)
        results["load_valid_s"] = _time(lambda: load_site(good), args.repeat)
        results["compile_valid_s"] = _time(lambda: compile_site(good), args.repeat)

        def load_bad() -> None:
            try:
                load_site(bad)
            except ConfigError as e:
                results["errors_reported"] = len(e.issues)

        results["load_with_errors_s"] = _time(load_bad, args.repeat)
        big = write_big_site(Path(tmp), args.points)
        results["profile_bytes"] = (Path(tmp) / "profiles" / "big.yaml").stat().st_size
        results["validate_process"] = validate_process(big)
        os.environ[ENV_PROFILES] = str(Path(tmp) / "profiles")
        results["compile_points_s"] = _time(lambda: compile_site(big), 1)
    print(json.dumps(results))
    print(f"{'case':<34}{'median ms':>12}{'max ms':>10}")
    for key in ("load_valid_s", "compile_valid_s", "load_with_errors_s", "compile_points_s"):
        times = results[key]
        assert isinstance(times, list)
        print(f"{key:<34}{statistics.median(times) * 1000:>12.1f}{max(times) * 1000:>10.1f}")
    process = results["validate_process"]
    assert isinstance(process, dict)
    print(
        f"validate, {args.points} points, own process: exit {process['exit']}, {process['wall_s']:.2f} s, "
        f"peak RSS {process['peak_rss_mb']:.0f} MB"
    )


if __name__ == "__main__":
    main()
