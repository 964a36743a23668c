"""The KPI cross-checks (agent.kpi.check.check) of a site with one meter: a device ``m`` whose profile ``meter`` has
one point per role, named for it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from agent.config.profile import ProfileConfig
from agent.config.site import SiteConfig
from agent.kpi.check import check


def meter_site_issues(kpi: dict[str, Any], roles: Sequence[str]) -> dict[tuple[str | int, ...], str]:
    """The issues ``check`` finds in this ``kpi:`` section of the one-meter site, by path."""
    profile = ProfileConfig.model_validate(
        {
            "profile": "meter",
            "address_base": 0,
            "points": [
                {"name": r, "kind": "holding_register", "address": 2 * i, "type": "uint32", "role": r}
                for i, r in enumerate(roles)
            ],
        }
    )
    site = SiteConfig.model_validate(
        {"site": "s", "gateway": "g", "devices": [{"name": "m", "profile": "meter", "host": "127.0.0.1"}], "kpi": kpi}
    )
    return dict(check(site, {"meter": profile}))
