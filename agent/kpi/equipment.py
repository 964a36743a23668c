"""Equipment formulas (engineering definitions; standards in energy.md section 5).

- boiler direct method: heat output rate = D x (h_steam - h_feedwater), enthalpies from IAPWS-IF97 (``iapws``);
  superheated steam from (p, T), refused at or below the saturation temperature (IF97 would return the liquid's
  enthalpy); saturated steam h = h' + x r from the pressure and the declared dryness x;
- pump and fan unit efficiency (pump or fan + motor): hydraulic power rho g Q H or Q dp over electric input;
- transformer losses P0 + beta^2 Pk with beta = S / S_N.

Efficiencies outside a plausible band are uncertain, with the reason. The default bands are engineering judgement,
not a standard: boiler 0.50-1.05 (GB 24500-2020 puts gas condensing boilers' grade 1 at 103 % on LHV, the worst
grade 3 at 82 %), motor 0.30-0.99, pump or fan unit 0.05-0.95; ``efficiency_plausible`` sets a site's own.

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
P_CRITICAL_MPA = 22.064  # no saturation above the critical pressure
PLAUSIBLE_EFFICIENCY: dict[str, tuple[float, float]] = {
    "boiler": (0.50, 1.05),
    "motor": (0.30, 0.99),
    "pump": (0.05, 0.95),
    "fan": (0.05, 0.95),
}


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


@lru_cache(maxsize=4096)
def _saturation(p_mpa_abs: float) -> tuple[float, float, float] | None:
    from iapws import IAPWS97

    try:
        liquid, vapour = IAPWS97(P=p_mpa_abs, x=0.0), IAPWS97(P=p_mpa_abs, x=1.0)
        out = (float(liquid.T) - 273.15, float(liquid.h), float(vapour.h))
    except (NotImplementedError, ValueError, TypeError, ArithmeticError, AttributeError):
        return None
    return out if all(math.isfinite(v) for v in out) else None


def saturation(p_mpa_abs: float) -> tuple[float, float, float] | None:
    """(saturation temperature degC, h' of the liquid, h'' of the vapour, kJ/kg) at an absolute pressure; None above
    the critical point or outside IF97. The pressure is rounded to 1 kPa, as for the enthalpies."""
    if not 0.000611657 <= p_mpa_abs < P_CRITICAL_MPA:
        return None
    return _saturation(round(p_mpa_abs, 3))


def saturated_steam_enthalpy_kj_kg(p_mpa_abs: float, dryness: float) -> float | None:
    """Wet saturated steam: h = h' + x (h'' - h') at the pressure (x = 1: dry saturated)."""
    sat = saturation(p_mpa_abs)
    return None if sat is None else sat[1] + dryness * (sat[2] - sat[1])


def below_saturation(p_mpa: float, t_c: float, *, gauge: bool = True) -> bool:
    """Whether a steam temperature is at or below saturation at the pressure: not superheated steam."""
    sat = saturation(p_mpa + ATM_MPA if gauge else p_mpa)
    return sat is not None and t_c <= sat[0]


def feedwater_enthalpy_kj_kg(p_mpa_abs: float, t_c: float) -> float | None:
    """Enthalpy of compressed feedwater; at boiler pressure where valid, else at saturation pressure."""
    return steam_enthalpy_kj_kg(p_mpa_abs, t_c)


def boiler_heat_gj_per_h(
    steam_tph: float,
    p_mpa: float,
    t_c: float | None,
    t_fw_c: float,
    *,
    gauge: bool = True,
    dryness: float | None = None,
) -> float | None:
    """Useful heat rate of a boiler in GJ/h (t/h x kJ/kg = MJ/h). With ``dryness`` the steam is saturated (the
    temperature is not used); without, superheated, and None at or below the saturation temperature."""
    p_abs = p_mpa + ATM_MPA if gauge else p_mpa
    if dryness is not None:
        h_s = saturated_steam_enthalpy_kj_kg(p_abs, dryness)
    elif t_c is None or below_saturation(p_abs, t_c, gauge=False):
        return None
    else:
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


def plausible(kind: str, band: tuple[float, float] | None) -> Callable[[float | None, Mapping[str, float]], str | None]:
    """The check of an efficiency KPI: the reason when the value is outside the band (the kind's default)."""
    low, high = band or PLAUSIBLE_EFFICIENCY[kind]
    source = "set by the site" if band else "default band, engineering judgement"

    def check(value: float | None, _: Mapping[str, float]) -> str | None:
        if value is None or low <= value <= high:
            return None
        return f"implausible {kind} efficiency {value:.3f}: outside {low:g}..{high:g} ({source}); check the meters"

    return check


SUPERHEAT_MARGIN_K = 10.0  # a "saturated" boiler's steam this far above saturation is superheated, not sensor error


def above_saturation(p_mpa: float, t_c: float, *, gauge: bool = True) -> bool:
    """Whether a steam temperature is more than SUPERHEAT_MARGIN_K above saturation at the pressure."""
    sat = saturation(p_mpa + ATM_MPA if gauge else p_mpa)
    return sat is not None and t_c > sat[0] + SUPERHEAT_MARGIN_K


def _boiler_check(
    band: tuple[float, float] | None, superheated: bool
) -> Callable[[float | None, Mapping[str, float]], str | None]:
    in_band = plausible("boiler", band)

    def check(value: float | None, v: Mapping[str, float]) -> str | None:
        if superheated and v.get("b", 0.0) > 0.0:
            return (
                f"steam at or below saturation {v['b'] * 100:.0f} % of the time: not superheated, heat not counted "
                "then (set steam_state: saturated with steam_dryness if the boiler makes saturated steam)"
            )
        if not superheated and v.get("a", 0.0) > 0.0:
            return (
                f"steam more than {SUPERHEAT_MARGIN_K:g} K above saturation {v['a'] * 100:.0f} % of the time: it is "
                "superheated, and the saturated enthalpy understates the heat (set steam_state: superheated)"
            )
        return in_band(value, v)

    return check


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
        eff = kpi("efficiency", "1", {"s": shaft_mean, "p": p_in}, ratio("s", "p"))
        eff.check = plausible("motor", eq.efficiency_plausible)
        return [kpi("load_factor", "1", {"s": shaft_mean}, lambda v: v["s"] / eq.rated_power_kw), eff]
    if isinstance(eq, BoilerConfig):
        return _boiler(eq, ctx, kpi)
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
        unit_eff = kpi("unit_efficiency", "1", {"h": Term([(hyd, 1.0)], mean=True), "p": p}, ratio("h", "p"))
        unit_eff.check = plausible(eq.kind, eq.efficiency_plausible)
        return [unit_eff]
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
    for f in eq.fuels:  # closed months keep their coefficients, as for a line (agent.kpi.coefficients)
        ctx.register_fuel(src.channel(f, w).key, f, f"kiln {eq.name} fuel {f.carrier} ({f.device})")
    fuel_heat = Term([(src.channel(f, w), ctx.fuel_gj(f)) for f in eq.fuels], history=ctx.fuel_history)
    prod = term(eq.production, Role.PRODUCTION_T)
    return [kpi("heat_kj_per_kg", "kJ/kg", {"h": fuel_heat, "p": prod}, ratio("h", "p", 1000.0))]


def _boiler(
    eq: BoilerConfig, ctx: Context, kpi: Callable[[str, str, dict[str, Term], Callable[..., float | None]], TermKpi]
) -> list[TermKpi]:
    """Efficiency (direct method) and steam output; superheated steam also integrates the share of time the steam
    was at or below saturation (a 0/1 rate), which makes the efficiency uncertain."""
    w = ctx.specs(eq.windows)
    src, d = ctx.source, eq.device
    gauge = not eq.pressure_absolute
    steam = eq.steam or _ref(d, Role.STEAM_FLOW_TPH)
    pressure = eq.pressure or _ref(d, Role.STEAM_PRESSURE_MPA)
    feedwater = eq.feedwater_temperature or _ref(d, Role.FEEDWATER_TEMPERATURE_C)
    ctx.register_fuel(
        src.channel(eq.fuel, w).key, eq.fuel, f"boiler {eq.name} fuel {eq.fuel.carrier} ({eq.fuel.device})"
    )
    fuel = Term([(src.channel(eq.fuel, w), ctx.fuel_gj(eq.fuel))], mean=True, history=ctx.fuel_history)
    terms = {"f": fuel}
    if eq.steam_state == "saturated":
        x = eq.steam_dryness
        heat = src.derived(
            f"{eq.name}/heat_gjh",
            [steam, pressure, feedwater],
            lambda v: boiler_heat_gj_per_h(v[0], v[1], None, v[2], gauge=gauge, dryness=x),
            w,
        )
        temperature = eq.temperature or (
            _ref(d, Role.STEAM_TEMPERATURE_C) if src.has_role(d, Role.STEAM_TEMPERATURE_C) else None
        )
        if temperature is not None:  # a temperature point checks the declaration: superheated steam is flagged
            hot = src.derived(
                f"{eq.name}/above_saturation",
                [steam, pressure, temperature],
                lambda v: 1.0 if above_saturation(v[1], v[2], gauge=gauge) else 0.0,
                w,
            )
            terms["a"] = Term([(hot, 1.0)], mean=True)
    else:
        inputs = [steam, pressure, eq.temperature or _ref(d, Role.STEAM_TEMPERATURE_C), feedwater]
        heat = src.derived(
            f"{eq.name}/heat_gjh", inputs, lambda v: boiler_heat_gj_per_h(v[0], v[1], v[2], v[3], gauge=gauge), w
        )
        wet = src.derived(
            f"{eq.name}/below_saturation",
            inputs,
            lambda v: 1.0 if below_saturation(v[1], v[2], gauge=gauge) else 0.0,
            w,
        )
        terms["b"] = Term([(wet, 1.0)], mean=True)
    terms["h"] = Term([(heat, 1.0)], mean=True)
    by_ratio = ratio("h", "f")
    # never superheated in the window: no heat was counted, so no efficiency (not 0)
    eff = kpi("efficiency", "1", terms, lambda v: None if v.get("b", 0.0) >= 1.0 - 1e-9 else by_ratio(v))
    eff.check = _boiler_check(eq.efficiency_plausible, eq.steam_state == "superheated")
    return [eff, kpi("steam_t", "t", {"s": Term([(src.channel(steam, w), 1.0)])}, total("s"))]
