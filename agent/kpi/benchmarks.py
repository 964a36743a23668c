"""China's energy-efficiency levels per unit of product, and grading a KPI value against them.

Rows come from ``agent/data/energy_levels.yaml`` (edition, standard, source and verification status on each) and
from the site's ``kpi.levels`` overrides. A grade computed from a row that is not status OK is still given, but its
``reference`` text says so: it is never presented as official.

A row may carry corrections its standard defines (ore grade, altitude): :func:`corrected` applies them with the
line's ``corrections`` inputs and says in ``reference`` what it applied, or which input is missing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from functools import cache

from agent.config.kpi import LevelOverrideConfig
from agent.kpi.factors import load_data_yaml
from agent.model import Grade

_STATUS_TEXT = {
    "OK": "status OK",
    "2nd": "status 2nd (not confirmed in the official text)",
    "UNCONF": "status UNCONF (unconfirmed, not an official value)",
    "calc": "status calc (derived from sourced values, not an official value)",
    "site": "set by the site",
}


ALTITUDE_MIN_M = 1500.0  # GB 16780-2021: the clinker correction applies to sites above 1500 m


@dataclass(frozen=True, slots=True)
class Correction:
    """A correction of a row's levels that its standard defines.

    ``linear``: level + ``per_unit`` x (input - ``reference``), the difference limited to ``only`` (below or above
    the reference) and to ``max_units``. ``altitude``: level x K, K = 1.179 - 0.211 x p / 101325 Pa for a site above
    1500 m (GB 16780-2021), p the site's mean atmospheric pressure (``atmospheric_pressure_kpa``, else from the
    altitude by the standard atmosphere). ``levels`` names the levels corrected."""

    kind: str
    input: str
    reference: float
    per_unit: float
    levels: tuple[str, ...]
    status: str
    only: str | None = None
    max_units: float | None = None
    text: str = ""
    if_input: str | None = None  # applies only when this input is given and at least ``if_min`` (e.g. Cr/Fe >= 2.2)
    if_min: float = 0.0

    @property
    def inputs(self) -> set[str]:
        """The line's ``corrections`` keys this correction reads."""
        if self.kind == "altitude":
            return {"altitude_m", "atmospheric_pressure_kpa"}
        return {self.input} | ({self.if_input} if self.if_input else set())


def standard_atmosphere_kpa(altitude_m: float) -> float:
    """ISO 2533 / ICAO standard atmosphere below 11 km: p = 101.325 x (1 - 2.25577e-5 h)^5.25588 kPa."""
    return float(101.325 * (1.0 - 2.25577e-5 * altitude_m) ** 5.25588)


@dataclass(frozen=True, slots=True)
class LevelRow:
    """One indicator's levels. For kind "policy", ``benchmark``/``baseline`` are 标杆/基准; for "gb_quota" they are
    the standard's grade 1 / grade 3; for "site" they are the site's own (e.g. a local authority's) values."""

    indicator: str
    product: str
    kind: str
    kpi: str
    unit: str
    benchmark: float
    baseline: float
    edition: str
    standard: str
    source: str
    status: str
    note: str = ""
    corrections: tuple[Correction, ...] = ()
    adjusted: str = ""  # what corrected() applied or could not apply
    # the indicator's boundary: "included" (feedstock energy counted, e.g. the reductant of a ferroalloy, the feed
    # gas of ammonia) or "excluded" (only process energy, e.g. coke and semi-coke: not the coal charged)
    feedstock: str = "included"
    requires: tuple[str, ...] = ()  # carriers the indicator cannot be computed without: "electricity", "fuel"

    @property
    def needs(self) -> tuple[str, ...]:
        """The carriers the row needs: as declared, else fuel for comprehensive energy (kgce) and electricity for
        kWh per unit."""
        if self.requires:
            return self.requires
        return ("fuel",) if self.kpi == "energy_kgce_per_t" else ("electricity",)

    @property
    def official(self) -> bool:
        return self.status == "OK"

    def reference(self) -> str:
        """E.g. 'GB 16780-2021 cement_clinker, edition 2021, status 2nd (not confirmed in the official text)'."""
        status = _STATUS_TEXT.get(self.status, f"status {self.status}")
        levels = {
            "policy": "benchmark/baseline levels",
            "gb_quota": "grade 1/grade 3 of the quota standard, not the policy levels",
            "site": "site levels",
        }.get(self.kind, self.kind)
        text = f"{self.standard} {self.indicator}, edition {self.edition}, {status}; {levels}, source {self.source}"
        return f"{text}; {self.adjusted}" if self.adjusted else text


def corrected(row: LevelRow, inputs: Mapping[str, float]) -> LevelRow:
    """The row with its corrections applied to the line's inputs (``LineConfig.corrections``); each one applied,
    or missing its input, is named in ``reference``."""
    if not row.corrections:
        return row
    levels = {"benchmark": row.benchmark, "baseline": row.baseline}
    said: list[str] = []
    for c in row.corrections:
        x = inputs.get(c.input)
        if c.kind == "altitude":
            alt = inputs.get("altitude_m")
            if alt is None:
                said.append(f"altitude correction not applied (set corrections.altitude_m) [{c.status}]")
                continue
            if alt <= ALTITUDE_MIN_M:
                continue
            p_kpa = inputs.get("atmospheric_pressure_kpa") or standard_atmosphere_kpa(alt)
            k = 1.179 - 0.211 * p_kpa * 1000.0 / 101325.0
            for lv in c.levels:
                levels[lv] *= k
            said.append(f"{'/'.join(c.levels)} x altitude factor {k:.4f} ({alt:g} m, {p_kpa:.1f} kPa) [{c.status}]")
            continue
        if x is None:
            said.append(f"{c.text or c.input} correction not applied (set corrections.{c.input}) [{c.status}]")
            continue
        if c.if_input is not None:
            cond = inputs.get(c.if_input)
            if cond is None or cond < c.if_min:
                got = f"{c.if_input} {cond:g}" if cond is not None else f"no corrections.{c.if_input}"
                said.append(f"{c.text or c.input} correction not applied: it needs {c.if_input} >= {c.if_min:g}, {got}")
                continue
        units = x - c.reference
        if (c.only == "below" and units > 0) or (c.only == "above" and units < 0):
            units = 0.0
        if c.max_units is not None:
            units = max(-c.max_units, min(c.max_units, units))
        for lv in c.levels:
            levels[lv] += c.per_unit * units
        said.append(
            f"{'/'.join(c.levels)} {c.per_unit * units:+g} {row.unit} for {c.input} {x:g} "
            f"(reference {c.reference:g}) [{c.status}]"
        )
    return replace(row, benchmark=levels["benchmark"], baseline=levels["baseline"], adjusted="; ".join(said))


def missing_carriers(row: LevelRow, electricity: bool, fuels: bool, no_fuel: bool) -> str | None:
    """Why ``row`` cannot grade a line with these inputs (a kgce/t of clinker from electricity alone is 6 kgce/t,
    not 100), or None. ``no_fuel`` is the line's explicit statement that it burns nothing."""
    if "fuel" in row.needs and not fuels and not no_fuel:
        return (
            f"not graded: indicator '{row.indicator}' ({row.unit}) needs the line's fuels; declare them, or "
            "no_fuel: true with no_fuel_reason"
        )
    if "electricity" in row.needs and not electricity:
        return f"not graded: indicator '{row.indicator}' ({row.unit}) needs the line's electricity meters"
    return None


@dataclass(frozen=True, slots=True)
class Grading:
    grade: Grade
    distance: float  # in the KPI's unit; positive = worse than the level compared with
    compared_with: str  # "benchmark" or "baseline"
    to_benchmark: float
    to_baseline: float


def grade(value: float, row: LevelRow) -> Grading:
    """Lower is better. At or below the benchmark: ``benchmark`` (distance to it, <= 0). Between the levels:
    ``between`` (distance still to go to the benchmark, > 0). Above the baseline: ``below_baseline`` (distance
    above the baseline, > 0)."""
    to_bm = value - row.benchmark
    to_bl = value - row.baseline
    if value <= row.benchmark:
        return Grading(Grade.BENCHMARK, to_bm, "benchmark", to_bm, to_bl)
    if value <= row.baseline:
        return Grading(Grade.BETWEEN, to_bm, "benchmark", to_bm, to_bl)
    return Grading(Grade.BELOW_BASELINE, to_bl, "baseline", to_bm, to_bl)


@dataclass(frozen=True, slots=True)
class LevelTable:
    rows: tuple[LevelRow, ...]

    def indicators(self) -> set[str]:
        return {r.indicator for r in self.rows}

    def find(self, indicator: str, edition: str | None = None) -> LevelRow | None:
        """The row for ``indicator`` in ``edition``, or in its newest edition when none is asked for."""
        rows = [r for r in self.rows if r.indicator == indicator and (edition is None or r.edition == edition)]
        return max(rows, key=lambda r: r.edition) if rows else None

    def with_rows(self, extra: Iterable[LevelRow]) -> LevelTable:
        """Site rows replace shipped rows with the same indicator and edition, and add new ones."""
        extra = tuple(extra)
        keys = {(r.indicator, r.edition) for r in extra}
        return LevelTable(tuple(r for r in self.rows if (r.indicator, r.edition) not in keys) + extra)


def site_levels(overrides: Iterable[LevelOverrideConfig], base: LevelTable | None = None) -> LevelTable:
    """The shipped table with a site's ``kpi.levels`` rows applied."""
    return (base or load_levels()).with_rows(
        LevelRow(
            lv.indicator,
            lv.product,
            "site" if lv.status == "site" else "policy",
            lv.kpi,
            lv.unit,
            lv.benchmark,
            lv.baseline,
            lv.edition,
            lv.standard,
            lv.source,
            lv.status,
            feedstock=lv.feedstock,
            requires=tuple(lv.requires or ()),
        )
        for lv in overrides
    )


@cache
def load_levels() -> LevelTable:
    """The shipped level table (read once)."""
    raw = load_data_yaml("energy_levels.yaml")
    rows = tuple(
        LevelRow(
            indicator=r["indicator"],
            product=r["product"],
            kind=r["kind"],
            kpi=r["kpi"],
            unit=r["unit"],
            benchmark=float(r["benchmark"]),
            baseline=float(r["baseline"]),
            edition=str(r["edition"]),
            standard=r["standard"],
            source=str(r["source"]),
            status=r["status"],
            note=r.get("note", ""),
            feedstock=r.get("feedstock", "included"),
            requires=tuple(r.get("requires", ())),
            corrections=tuple(
                Correction(
                    kind=c["kind"],
                    input=c.get("input", "altitude_m"),
                    reference=float(c.get("reference", 0.0)),
                    per_unit=float(c.get("per_unit", 0.0)),
                    levels=tuple(c["levels"]),
                    status=c["status"],
                    only=c.get("only"),
                    max_units=c.get("max_units"),
                    text=c.get("text", ""),
                    if_input=c.get("if_input"),
                    if_min=float(c.get("if_min", 0.0)),
                )
                for c in r.get("corrections", ())
            ),
        )
        for r in raw["levels"]
    )
    return LevelTable(rows)
