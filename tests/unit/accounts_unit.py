"""Shared by the accounts tests: a declared unit (electricity bought and exported, PV, coal, a clinker line) and a
counter source with known rates, gaps and resets, standing in for what InfluxDB holds."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from typing import Any

from agent.center.accounts.config import AccountsConfig
from agent.center.accounts.metered import SeriesRef

ZONE = dt.timezone(dt.timedelta(hours=8))
NOV1 = dt.datetime(2026, 11, 1, tzinfo=ZONE).timestamp()  # 2026-11-01 00:00 Asia/Shanghai

# per second; coal 3.6 t/h, clinker 36 t/h, grid 10 MWh/h, export 0.1 MWh/h, PV 1 MWh/h
RATES = {
    "E-GRID": 10000 / 3600,
    "E-EXP": 100 / 3600,
    "E-PV": 1000 / 3600,
    "C-KILN": 3.6 / 3600,
    "output:clinker": 36 / 3600,
}


def unit_doc(state_dir: str, receivers: list[dict[str, Any]] | None = None, **over: Any) -> dict[str, Any]:
    unit: dict[str, Any] = {
        "name": "cement-1",
        "title": "Example Cement 示例水泥",
        "code": "91150000TEST",
        "gateways": [{"site": "sim-cement", "gateway": "gw1"}],
        "electricity_equal_value_kgce_per_kwh": 0.2957,
        "grid": {"year": 2023, "scope": "inner_mongolia"},
        "carriers": [
            {"name": "electricity", "code": "3300", "factor": "electricity"},
            {"name": "pv", "code": "3310", "factor": "electricity", "renewable": True},
            {"name": "raw_coal", "code": "0110", "factor": "raw_coal"},
            {"name": "diesel", "code": "0510", "factor": "diesel"},
        ],
        "meters": [
            {
                "id": "E-GRID",
                "carrier": "electricity",
                "flow": "purchased",
                "device": "main-meter",
                "role": "energy_import_kwh",
                "accuracy_class": "0.5S",
                "calibration_due": "2027-06-30",
                "measures": "grid intake",
            },
            {
                "id": "E-EXP",
                "carrier": "electricity",
                "flow": "exported",
                "device": "main-meter",
                "role": "energy_export_kwh",
                "accuracy_class": "0.5S",
                "calibration_due": "2027-06-30",
            },
            {
                "id": "E-PV",
                "carrier": "pv",
                "flow": "produced",
                "device": "pv-meter",
                "role": "energy_import_kwh",
                "accuracy_class": "1.0",
                "calibration_due": "2026-10-31",
                "measures": "PV inverter output",
            },
            {
                "id": "C-KILN",
                "carrier": "raw_coal",
                "flow": "consumed",
                "device": "kiln1",
                "role": "coal_t",
                "accuracy_class": "0.5",
                "calibration_due": "2027-01-31",
            },
            {
                "id": "WB-1",
                "carrier": "raw_coal",
                "flow": "purchased",
                "accuracy_class": "III",
                "calibration_due": "2027-03-01",
                "measures": "weighbridge, coal deliveries",
            },
        ],
        "products": [{"name": "clinker", "indicator": "cement_clinker", "output": {"device": "kiln1"}}],
        "receivers": receivers or [],
    } | over
    return {"state_dir": state_dir, "settle_s": 30, "units": [unit]}


def accounts_config(state_dir: str, receivers: list[dict[str, Any]] | None = None, **over: Any) -> AccountsConfig:
    return AccountsConfig.model_validate(unit_doc(state_dir, receivers, **over))


@dataclass
class CounterSource:
    """Readings every ``step_s`` from ``start`` at RATES; ``silent`` intervals have no readings; ``resets`` restart
    a series' counter at 0 at a time; ``problems_at`` are what the agents published about the silence."""

    start: float = NOV1 - 3600
    step_s: float = 60.0
    silent: list[tuple[str, float, float]] = field(default_factory=list)
    resets: dict[str, float] = field(default_factory=dict)
    problems_at: list[tuple[float, str]] = field(default_factory=list)
    offset: float = 5000.0

    def value(self, key: str, t: float) -> float:
        r = self.resets.get(key)
        if r is not None and t >= r:
            return (t - r) * RATES[key]
        return self.offset + (t - self.start) * RATES[key]

    def readings(self, ref: SeriesRef, t0: float, t1: float) -> list[tuple[float, float]]:
        out = []
        t = max(self.start, math.ceil((t0 - self.start) / self.step_s) * self.step_s + self.start)
        while t <= t1:
            if not any(k == ref.key and a <= t < b for k, a, b in self.silent):
                out.append((t, self.value(ref.key, t)))
            t += self.step_s
        return out

    def problems(self, ref: SeriesRef, t0: float, t1: float) -> list[tuple[float, str]]:
        return [(t, c) for t, c in self.problems_at if t0 <= t <= t1]

    def close(self) -> None:
        """Nothing is kept from one round to the next."""

    def true_total(self, key: str, t0: float, t1: float) -> float:
        return (min(t1, 1e18) - max(t0, self.start)) * RATES[key]
