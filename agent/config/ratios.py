"""CT and PT ratios: meters on instrument transformers report secondary-side values; a device's ``ct_ratio`` and
``pt_ratio`` turn them into primary-side ones. Which ratio a point takes follows from its unit: current x CT,
voltage x PT, power and energy x CT x PT, anything else (power factor, frequency, temperature ...) unchanged.
DL/T 645 points take theirs from the catalogue's ``ratio`` instead (agent/config/dlt645.py)."""

from __future__ import annotations

CURRENT = frozenset({"A", "kA", "mA"})
VOLTAGE = frozenset({"V", "kV", "mV"})
POWER_ENERGY = frozenset(
    {p + u for p in ("", "k", "M") for u in ("W", "var", "VA", "Wh", "varh", "VAh", "VAr", "VArh")}
)


def unit_ratio(unit: str, ct_ratio: float, pt_ratio: float) -> float:
    """The factor a value in ``unit`` is multiplied by."""
    u = unit.strip()
    if u in CURRENT:
        return ct_ratio
    if u in VOLTAGE:
        return pt_ratio
    if u in POWER_ENERGY:
        return ct_ratio * pt_ratio
    return 1.0
