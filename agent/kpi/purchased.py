"""Purchased steam and hot water by the enthalpy method (``method: enthalpy`` on a fuel, agent.config.kpi.FuelConfig).

Energy received (GJ/h) = mass flow (t/h) x (h(p, T) - h(return)) / 1000, enthalpies in kJ/kg by IAPWS-IF97 as for the
boiler's direct method (agent.kpi.equipment): the supply at the measured pressure and temperature, the return water
(measured condensate return, or the declared reference temperature) at the supply pressure. A steam carrier read at
or below its saturation temperature is valued as dry saturated steam (h'' at the pressure: IF97 at such a (p, T)
would give the liquid's enthalpy); hot water is valued at (p, T) as it is. The channel integrates GJ, so the fuel's
coefficient is 1 GJ per unit; kgce (x 34.12) and CO2 (x the heat factor) follow from the GJ.
"""

from __future__ import annotations

from collections.abc import Sequence

from agent.config.kpi import FuelConfig, PointRefConfig
from agent.kpi.channels import Channel
from agent.kpi.equipment import (
    ATM_MPA,
    below_saturation,
    feedwater_enthalpy_kj_kg,
    saturated_steam_enthalpy_kj_kg,
    steam_enthalpy_kj_kg,
)
from agent.kpi.indicators import Context
from agent.kpi.windows import WindowSpec


def enthalpy_rise_kj_kg(p_mpa: float, t_c: float, t_return_c: float, *, gauge: bool, steam: bool) -> float | None:
    """h(p, T) of the supply minus h of the return water at the supply pressure, kJ/kg; None outside IF97."""
    p_abs = p_mpa + ATM_MPA if gauge else p_mpa
    if steam and below_saturation(p_abs, t_c, gauge=False):
        h = saturated_steam_enthalpy_kj_kg(p_abs, 1.0)
    else:
        h = steam_enthalpy_kj_kg(p_abs, t_c)
    h_return = feedwater_enthalpy_kj_kg(p_abs, t_return_c)
    if h is None or h_return is None:
        return None
    return h - h_return


def fuel_channel(ctx: Context, f: FuelConfig, windows: Sequence[WindowSpec]) -> Channel:
    """The channel a fuel's quantity is counted on: its point, or for ``method: enthalpy`` the GJ/h derived from its
    flow, pressure and temperatures (one channel per fuel, shared by every KPI and line that uses it)."""
    if f.method != "enthalpy":
        return ctx.source.channel(f, windows)
    p, t, ret = f.enthalpy_points()
    inputs: list[PointRefConfig] = [f, p, t] + ([ret] if ret is not None else [])
    key = "enthalpy|" + "|".join(f"{r.device}:{r.point or r.role}:{r.scale}" for r in inputs)
    key += f"|{f.return_temperature_c}|{f.pressure_absolute}|{f.carrier}"
    ch = ctx.enthalpy_channels.get(key)
    if ch is not None:
        for w in windows:
            ch.use_window(w)
        return ch
    gauge, steam, fixed = not f.pressure_absolute, f.carrier.startswith("steam"), f.return_temperature_c

    def gj_per_h(v: Sequence[float]) -> float | None:
        t_return = fixed if fixed is not None else v[3]
        rise = enthalpy_rise_kj_kg(v[1], v[2], t_return, gauge=gauge, steam=steam)
        return None if rise is None else v[0] * rise / 1000.0

    ch = ctx.source.derived(key, inputs, gj_per_h, windows)
    ctx.enthalpy_channels[key] = ch
    return ch


def basis(f: FuelConfig) -> str:
    """How an enthalpy-method fuel is valued, for the KPIs' reference."""
    ret = (
        f"the measured return water ({f.return_temperature.device} {f.return_temperature.point or f.return_temperature.role})"
        if f.return_temperature is not None
        else f"return water at the declared {f.return_temperature_c:g} degC"
    )
    p, t, _ = f.enthalpy_points()
    return (
        f"{f.carrier} by the enthalpy method: flow x (h(p, T) - h(return)), IAPWS-IF97 at the measured pressure "
        f"({p.device} {p.point or p.role}, {'absolute' if f.pressure_absolute else 'gauge'}) and temperature "
        f"({t.device} {t.point or t.role}), minus {ret} at the same pressure"
    )
