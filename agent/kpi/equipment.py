"""Equipment formulas (engineering definitions; standards in energy.md section 5).

- boiler direct method: heat output rate = D x (h_steam - h_feedwater), enthalpies from IAPWS-IF97 (``iapws``);
- pump hydraulic power rho g Q H, fan air power Q dp;
- transformer losses P0 + beta^2 Pk with beta = S / S_N.

Rates are per hour so they integrate like every other rate: GJ/h, kW.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from functools import lru_cache

from agent.config.kpi import (
    BoilerConfig,
    CompressorConfig,
    EquipmentConfig,
    KilnConfig,
    MotorConfig,
    PointRefConfig,
    PumpConfig,
    TransformerConfig,
)
from agent.kpi.channels import Term
from agent.kpi.indicators import Context, TermKpi, ratio, total
from agent.model import Role

G = 9.80665
ATM_MPA = 0.101325


@lru_cache(maxsize=65536)
def _steam_h(p_mpa_abs: float, t_c: float) -> float | None:
    # iapws pulls in scipy (~50 MB of RSS): imported on the first boiler evaluation only.
    from iapws import IAPWS97

    try:
        h = IAPWS97(P=p_mpa_abs, T=t_c + 273.15).h
    except (NotImplementedError, ValueError, TypeError, ArithmeticError):
        return None
    return float(h) if h is not None and math.isfinite(h) else None


def steam_enthalpy_kj_kg(p_mpa_abs: float, t_c: float) -> float | None:
    """Specific enthalpy of water/steam at (p, T); None outside IF97's range. Inputs are rounded (1 kPa,
    0.01 degC, well inside meter accuracy) so a steady boiler hits the cache."""
    if not (0.0 < p_mpa_abs <= 100.0 and 0.0 <= t_c <= 800.0):
        return None
    return _steam_h(round(p_mpa_abs, 3), round(t_c, 2))


def feedwater_enthalpy_kj_kg(p_mpa_abs: float, t_c: float) -> float | None:
    """Enthalpy of compressed feedwater; at boiler pressure where valid, else at saturation pressure."""
    return steam_enthalpy_kj_kg(p_mpa_abs, t_c)


def boiler_heat_gj_per_h(
    steam_tph: float, p_mpa: float, t_c: float, t_fw_c: float, *, gauge: bool = True
) -> float | None:
    """Useful heat rate of a boiler in GJ/h (t/h x kJ/kg = MJ/h)."""
    p_abs = p_mpa + ATM_MPA if gauge else p_mpa
    h_s = steam_enthalpy_kj_kg(p_abs, t_c)
    h_fw = feedwater_enthalpy_kj_kg(p_abs, t_fw_c)
    if h_s is None or h_fw is None:
        return None
    return steam_tph * (h_s - h_fw) / 1000.0


def pump_hydraulic_kw(flow_m3h: float, head_m: float, density_kg_m3: float = 1000.0) -> float:
    return density_kg_m3 * G * flow_m3h / 3600.0 * head_m / 1000.0


def fan_air_kw(flow_m3h: float, pressure_rise_mpa: float) -> float:
    return flow_m3h / 3600.0 * pressure_rise_mpa * 1e6 / 1000.0


def transformer_loss_kw(s_kva: float, rated_kva: float, p0_kw: float, pk_kw: float) -> float:
    beta = s_kva / rated_kva
    return p0_kw + beta * beta * pk_kw


def _ref(device: str, role: Role) -> PointRefConfig:
    return PointRefConfig.model_validate({"device": device, "role": role})


def equipment_kpis(eq: EquipmentConfig, ctx: Context) -> list[TermKpi]:
    """KPIs of one piece of equipment (see the module docstring for the formulas)."""
    w = ctx.specs(eq.windows)
    cov = ctx.coverage_min if eq.coverage_min is None else eq.coverage_min
    src = ctx.source
    d = eq.device

    def kpi(name: str, unit: str, terms: dict[str, Term], fn: Callable[[Mapping[str, float]], float | None]) -> TermKpi:
        return TermKpi(name, eq.name, unit, terms, fn, w, cov)

    def term(ref: PointRefConfig | None, role: Role, mean: bool = False) -> Term:
        return Term([(src.channel(ref or _ref(d, role), w), 1.0)], mean=mean)

    # Ratios of power-like quantities are ratios of time-weighted means, so a gap in one input (a derived rate
    # starts a reading later, a point goes stale) does not bias the ratio; coverage reports the gap.
    if isinstance(eq, MotorConfig):
        p_in = term(eq.input_power, Role.ACTIVE_POWER_KW, mean=True)
        shaft_ref = eq.shaft_power or (_ref(d, Role.SHAFT_POWER_KW) if src.has_role(d, Role.SHAFT_POWER_KW) else None)
        if shaft_ref is None:
            eta = eq.rated_efficiency or 1.0
            p_mean = term(eq.input_power, Role.ACTIVE_POWER_KW, mean=True)
            return [kpi("load_factor", "1", {"p": p_mean}, lambda v: v["p"] * eta / eq.rated_power_kw)]
        shaft_mean = term(shaft_ref, Role.SHAFT_POWER_KW, mean=True)
        return [
            kpi("load_factor", "1", {"s": shaft_mean}, lambda v: v["s"] / eq.rated_power_kw),
            kpi("efficiency", "1", {"s": shaft_mean, "p": p_in}, ratio("s", "p")),
        ]
    if isinstance(eq, BoilerConfig):
        gauge = not eq.pressure_absolute
        inputs = [
            eq.steam or _ref(d, Role.STEAM_FLOW_TPH),
            eq.pressure or _ref(d, Role.STEAM_PRESSURE_MPA),
            eq.temperature or _ref(d, Role.STEAM_TEMPERATURE_C),
            eq.feedwater_temperature or _ref(d, Role.FEEDWATER_TEMPERATURE_C),
        ]
        heat = src.derived(
            f"{eq.name}/heat_gjh", inputs, lambda x: boiler_heat_gj_per_h(x[0], x[1], x[2], x[3], gauge=gauge), w
        )
        fuel = Term([(src.channel(eq.fuel, w), ctx.fuel_gj(eq.fuel))], mean=True)
        return [
            kpi("efficiency", "1", {"h": Term([(heat, 1.0)], mean=True), "f": fuel}, ratio("h", "f")),
            kpi("steam_t", "t", {"s": Term([(src.channel(inputs[0], w), 1.0)])}, total("s")),
        ]
    if isinstance(eq, CompressorConfig):
        p = term(eq.input_power, Role.ACTIVE_POWER_KW, mean=True)
        q = term(eq.air_flow, Role.AIR_FLOW_M3MIN, mean=True)
        return [kpi("specific_power_kw_per_m3min", "kW/(m3/min)", {"p": p, "q": q}, ratio("p", "q"))]
    if isinstance(eq, PumpConfig):
        p = term(eq.input_power, Role.ACTIVE_POWER_KW, mean=True)
        flow = eq.flow or _ref(d, Role.FLOW_M3H)
        rho = eq.density_kg_m3
        if eq.kind == "pump":
            inputs = [flow, eq.head or _ref(d, Role.HEAD_M)]
            hyd = src.derived(f"{eq.name}/hydraulic_kw", inputs, lambda x: pump_hydraulic_kw(x[0], x[1], rho), w)
        else:
            inputs = [flow, eq.pressure or _ref(d, Role.DISCHARGE_PRESSURE_MPA)]
            hyd = src.derived(f"{eq.name}/air_kw", inputs, lambda x: fan_air_kw(x[0], x[1]), w)
        return [kpi("efficiency", "1", {"h": Term([(hyd, 1.0)], mean=True), "p": p}, ratio("h", "p"))]
    if isinstance(eq, TransformerConfig):
        s_ref = eq.apparent_power or _ref(d, Role.APPARENT_POWER_KVA)
        s_mean = term(s_ref, Role.APPARENT_POWER_KVA, mean=True)
        rated, p0, pk = eq.rated_kva, eq.no_load_loss_kw, eq.load_loss_kw
        loss_ch = src.derived(f"{eq.name}/loss_kw", [s_ref], lambda x: transformer_loss_kw(x[0], rated, p0, pk), w)
        p_out = term(eq.active_power, Role.ACTIVE_POWER_KW, mean=True)
        return [
            kpi("load_factor", "1", {"s": s_mean}, lambda v: v["s"] / rated),
            kpi("losses_kwh", "kWh", {"l": Term([(loss_ch, 1.0)])}, total("l")),
            kpi(
                "efficiency",
                "1",
                {"p": p_out, "l": Term([(loss_ch, 1.0)], mean=True)},
                lambda v: v["p"] / (v["p"] + v["l"]) if v["p"] + v["l"] > 0 else None,
            ),
        ]
    assert isinstance(eq, KilnConfig)
    fuel_heat = Term([(src.channel(f, w), ctx.fuel_gj(f)) for f in eq.fuels])
    prod = term(eq.production, Role.PRODUCTION_T)
    return [kpi("heat_kj_per_kg", "kJ/kg", {"h": fuel_heat, "p": prod}, ratio("h", "p", 1000.0))]
