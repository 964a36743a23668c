"""Samples per second through the KPI engine (ingest + evaluate) with 500 KPIs configured, each in four windows
(15m, 1h, shift, day). Simulated time: every device polled once per second, ``evaluate`` every 60 s.
Prints JSON, then a table.

    .venv/bin/python -m tests.benchmarks.kpi_engine [--minutes 60] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from typing import Any

from agent.config.kpi import KpiSectionConfig
from agent.kpi.engine import DeviceInfo, KpiEngine
from agent.model import Quality, Role, Sample

T0 = 1_767_225_600.0
LINES = 40  # 9 KPIs each
MOTORS = 20  # 2 each
DEMANDS = 20  # 2 each
PFS = 20  # 1 each
BALANCES = 20  # 2 each: 500 KPIs in all


def section() -> dict[str, Any]:
    lines = [
        {
            "name": f"line{i}",
            "indicator": "cement_clinker",
            "production": [{"device": f"kiln{i}", "role": "production_t"}],
            "electricity": [{"device": f"meter{i}", "role": "energy_import_kwh"}],
            "fuels": [{"device": f"kiln{i}", "role": "coal_t", "carrier": "raw_coal"}],
            "water": [{"device": f"kiln{i}", "role": "water_m3"}],
        }
        for i in range(LINES)
    ]
    motors = [
        {"kind": "motor", "name": f"motor{i}", "device": f"motor{i}", "rated_power_kw": 500} for i in range(MOTORS)
    ]
    demand = [
        {"name": f"feeder{i}", "meters": [{"device": f"meter{i}", "role": "energy_import_kwh"}]} for i in range(DEMANDS)
    ]
    pfs = [
        {
            "name": f"feeder{i}",
            "active": [{"device": f"meter{i}", "role": "energy_import_kwh"}],
            "reactive": [{"device": f"meter{i}", "role": "reactive_energy_kvarh"}],
        }
        for i in range(PFS)
    ]
    balances = [
        {
            "name": f"bus{i}",
            "main": {"device": f"meter{i}", "role": "energy_import_kwh"},
            "subs": [{"device": f"meter{i + BALANCES}", "role": "energy_import_kwh"}],
        }
        for i in range(BALANCES)
    ]
    return {
        "windows": ["15m", "1h", "shift", "day"],
        "balance": balances,
        "lines": lines,
        "equipment": motors,
        "demand": demand,
        "power_factor": pfs,
    }


def polls(t: float, k: int) -> list[Sample]:
    out: list[Sample] = []
    for i in range(LINES):
        out += [
            Sample(f"meter{i}", "e", 1e5 + 2.0 * k, "kWh", Quality.GOOD, t, role=Role.ENERGY_IMPORT_KWH),
            Sample(f"meter{i}", "q", 5e4 + 0.8 * k, "kvarh", Quality.GOOD, t, role=Role.REACTIVE_ENERGY_KVARH),
            Sample(f"meter{i}", "p", 7200.0, "kW", Quality.GOOD, t, role=Role.ACTIVE_POWER_KW),
            Sample(f"kiln{i}", "p", 1e4 + 0.06 * k, "t", Quality.GOOD, t, role=Role.PRODUCTION_T),
            Sample(f"kiln{i}", "c", 2e3 + 0.006 * k, "t", Quality.GOOD, t, role=Role.COAL_T),
            Sample(f"kiln{i}", "w", 3e3 + 0.01 * k, "m3", Quality.GOOD, t, role=Role.WATER_M3),
        ]
    for i in range(MOTORS):
        out += [
            Sample(f"motor{i}", "p", 400.0 + (k % 7), "kW", Quality.GOOD, t, role=Role.ACTIVE_POWER_KW),
            Sample(f"motor{i}", "s", 380.0 + (k % 5), "kW", Quality.GOOD, t, role=Role.SHAFT_POWER_KW),
        ]
    return out


def run_once(minutes: int) -> dict[str, float]:
    cfg = KpiSectionConfig.model_validate(section())
    devices = {f"motor{i}": DeviceInfo(f"motor{i}", roles={"s": Role.SHAFT_POWER_KW}) for i in range(MOTORS)}
    engine = KpiEngine(cfg, devices, "Asia/Shanghai", lambda: T0)
    n_kpis = len(engine.kpi_names())
    batches = [(T0 + k, polls(T0 + k, k)) for k in range(minutes * 60 + 1)]
    samples = sum(len(b) for _, b in batches)
    ingest_s = evaluate_s = 0.0
    values = 0
    for t, batch in batches:
        a = time.perf_counter()
        engine.ingest(batch)
        b = time.perf_counter()
        ingest_s += b - a
        if int(t - T0) % 60 == 0:
            values += len(engine.evaluate(t))
            evaluate_s += time.perf_counter() - b
    total = ingest_s + evaluate_s
    return {
        "kpis": float(n_kpis),
        "samples": float(samples),
        "kpi_values": float(values),
        "ingest_s": ingest_s,
        "evaluate_s": evaluate_s,
        "samples_per_s": samples / total,
        "ingest_samples_per_s": samples / ingest_s,
        "evaluate_ms": evaluate_s / (minutes + 1) * 1000.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=int, default=60)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    runs = [run_once(args.minutes) for _ in range(args.repeat)]
    result = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    result["minutes_simulated"] = float(args.minutes)
    print(json.dumps({"benchmark": "kpi_engine", "median_of": args.repeat, **result}, indent=2))
    print()
    print(f"{'KPIs configured':<34}{result['kpis']:>14.0f}")
    print(f"{'samples (1 s polls, simulated)':<34}{result['samples']:>14.0f}")
    print(f"{'KPI values emitted':<34}{result['kpi_values']:>14.0f}")
    print(f"{'samples/s, ingest + evaluate':<34}{result['samples_per_s']:>14.0f}")
    print(f"{'samples/s, ingest only':<34}{result['ingest_samples_per_s']:>14.0f}")
    print(f"{'evaluate() per call, ms':<34}{result['evaluate_ms']:>14.1f}")


if __name__ == "__main__":
    main()
