"""Requests per poll versus the theoretical minimum, for every profile in device_profiles/.

    .venv/bin/python -m tests.benchmarks.modbus_requests [--json-only]

The plan uses the profile's own limits (max_registers_per_request, max_gap) and a device with no overrides. The
minimum is computed independently by dynamic programming over the sorted points of each table; the two must be
equal (exit 1 otherwise). Also shows what a one-read-per-point client (ThingsBoard's pattern) would send.
Prints one JSON object, then a table.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from agent.config.load import load_profile, shipped_profile_dir
from agent.config.site import ModbusDeviceConfig
from agent.sources.modbus.plan import build_read_plan


def main(argv: list[str]) -> int:
    rows = []
    for path in sorted(Path(shipped_profile_dir()).glob("*.yaml")):
        if path.stem.startswith("dlt645-"):  # DL/T 645 meters: one request per identifier, see dlt645_codec.py
            continue
        profile = load_profile(path)
        if profile.protocol != "modbus":
            continue
        device = ModbusDeviceConfig.model_validate({"name": "bench", "profile": profile.profile, "host": "127.0.0.1"})
        plan = build_read_plan(profile, device)
        rows.append(
            {
                "profile": profile.profile,
                "points": len(profile.points),
                "requests": len(plan.requests),
                "minimum": plan.minimum,
                "one_per_point": len(profile.points),
                "registers_read": plan.registers_read,
                "gap_registers": sum(r.gap for r in plan.requests),
            }
        )
    ok = all(r["requests"] == r["minimum"] for r in rows)
    print(json.dumps({"benchmark": "modbus_requests", "all_minimal": ok, "profiles": rows}))
    if "--json-only" not in argv:
        print(f"\n{'profile':<30} {'points':>6} {'requests':>8} {'minimum':>7} {'1/point':>7} {'regs':>5} {'gap':>4}")
        for r in rows:
            print(
                f"{r['profile']:<30} {r['points']:>6} {r['requests']:>8} {r['minimum']:>7} "
                f"{r['one_per_point']:>7} {r['registers_read']:>5} {r['gap_registers']:>4}"
            )
        print(f"\nall plans minimal: {ok}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
