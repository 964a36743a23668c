"""KPI section of the site file. Owned by the KPI engine work (issue 4)."""

from __future__ import annotations

from agent.config.base import StrictModel


class KpiSectionConfig(StrictModel):
    """Placeholder until the KPI engine lands."""
