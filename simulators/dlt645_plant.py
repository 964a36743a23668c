"""What a plant device shows as each DL/T 645 catalogue item (primary side): energies by tariff and quadrant,
per-phase values, max demand, from ``PlantModel.values``. Shares that the plant does not model (tariff split,
quadrants, apparent energy) are fixed fractions, so totals stay the model's exact integrals."""

from __future__ import annotations

from agent.config.dlt645 import CatalogueItem

_TARIFF_SHARE = (0.1, 0.3, 0.4, 0.2)
_PHASE = {"a": "l1", "b": "l2", "c": "l3"}


def plant_value(values: dict[str, float], item: CatalogueItem) -> float | None:
    """The primary-side value of a catalogue item for a plant device, or None if the plant has no such quantity."""
    name = item.name
    imp, exp = values.get("energy_import_kwh", 0.0), values.get("energy_export_kwh", 0.0)
    rimp, rexp = values.get("reactive_energy_kvarh", 0.0), values.get("reactive_energy_export_kvarh", 0.0)
    totals = {
        "energy_combined_active": imp + exp,
        "energy_forward_active": imp,
        "energy_reverse_active": exp,
        "energy_combined_reactive_1": rimp,
        "energy_combined_reactive_2": rexp,
        "energy_forward_reactive": rimp,
        "energy_reverse_reactive": rexp,
        "energy_reactive_q1": rimp * 0.9,
        "energy_reactive_q2": rimp * 0.1,
        "energy_reactive_q3": rexp * 0.1,
        "energy_reactive_q4": rexp * 0.9,
        "energy_forward_apparent": imp * 1.08,
        "energy_reverse_apparent": exp * 1.08,
        "daily_frozen_forward_active": imp,
        "daily_frozen_reverse_active": exp,
    }
    for base, total in totals.items():
        if name == base or name.startswith(base + "_"):
            suffix = name[len(base) :].lstrip("_")
            if suffix.startswith("t") and suffix[1:].isdigit():
                return total * _TARIFF_SHARE[int(suffix[1:]) - 1]
            return total
    p = values.get("active_power_kw", 0.0)
    simple = {
        "active_power_total": p,
        "reactive_power_total": values.get("reactive_power_kvar"),
        "apparent_power_total": values.get("apparent_power_kva"),
        "power_factor_total": values.get("power_factor"),
        "frequency": values.get("frequency_hz"),
        "current_neutral": 0.0,
        "active_power_1min_avg": p,
        "active_demand_current": p,
        "max_demand_forward_active": p * 1.1,
        "max_demand_reverse_active": 0.0,
        "meter_temperature": 35.0,
    }
    if name in simple:
        return simple[name]
    kind, _, phase = name.rpartition("_")
    if phase in _PHASE:
        if kind in ("voltage", "current"):
            return values.get(f"{kind}_{_PHASE[phase]}_{'v' if kind == 'voltage' else 'a'}")
        share = {"active_power": p, "reactive_power": values.get("reactive_power_kvar")}.get(kind)
        if share is not None:
            return share / 3
        if kind == "apparent_power":
            return values.get("apparent_power_kva", 0.0) / 3
        if kind == "power_factor":
            return values.get("power_factor")
    return None
