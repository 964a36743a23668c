"""The KPI engine: rolling unit-energy KPIs from counters and rates, graded against China's national levels.

Pure, synchronous, no I/O (the shipped level and factor tables are package data, read once). Public API:
``KpiEngine`` (build with ``KpiEngine.from_site(site, profiles, clock)``; ``ingest(samples)``; ``evaluate(now)``)
and ``DeviceInfo``. Module map: counters (deltas, integration), windows (periods, per-window sums), channels
(inputs), indicators / equipment / demand / baseline / custom (KPIs), benchmarks and factors (tables), formula
(safe expressions), check (config references), engine (wiring).
"""

from agent.kpi.engine import DeviceInfo, KpiEngine

__all__ = ["DeviceInfo", "KpiEngine"]
