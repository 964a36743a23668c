"""Data that flows through the pipeline: samples from sources, KPI values from the engine.

Frozen, slotted dataclasses; standard library only. Timestamps are UNIX seconds (UTC) as floats.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum

Value = float | int | bool | str | None


class Quality(StrEnum):
    """Quality of one reading.

    good: read now and decoded without complaint.
    uncertain: read now, but suspicious (e.g. outside the point's plausible range); not used for KPIs.
    bad: no valid value (read failed, decode failed, device answered an exception); ``value`` is None.
    stale: the source could not refresh the value in time; never presented as fresh.
    """

    GOOD = "good"
    UNCERTAIN = "uncertain"
    BAD = "bad"
    STALE = "stale"


class Role(StrEnum):
    """What a point means to the KPI engine. The suffix is the unit the point must be delivered in.

    Counters (cumulative totals) end in ``_total`` semantics and are listed in ``COUNTER_ROLES``.
    """

    # electricity
    ENERGY_IMPORT_KWH = "energy_import_kwh"
    ENERGY_EXPORT_KWH = "energy_export_kwh"
    REACTIVE_ENERGY_KVARH = "reactive_energy_kvarh"  # import (lagging) reactive energy
    REACTIVE_ENERGY_EXPORT_KVARH = "reactive_energy_export_kvarh"  # reverse (leading) reactive energy
    ACTIVE_POWER_KW = "active_power_kw"
    REACTIVE_POWER_KVAR = "reactive_power_kvar"
    APPARENT_POWER_KVA = "apparent_power_kva"
    POWER_FACTOR = "power_factor"
    VOLTAGE_V = "voltage_v"
    CURRENT_A = "current_a"
    FREQUENCY_HZ = "frequency_hz"
    # production
    PRODUCTION_T = "production_t"
    PRODUCTION_RATE_TPH = "production_rate_tph"
    # fuels
    COAL_T = "coal_t"
    COAL_FEED_TPH = "coal_feed_tph"
    GAS_M3 = "gas_m3"
    GAS_FLOW_M3H = "gas_flow_m3h"
    # steam and heat
    STEAM_T = "steam_t"
    STEAM_FLOW_TPH = "steam_flow_tph"
    STEAM_PRESSURE_MPA = "steam_pressure_mpa"
    STEAM_TEMPERATURE_C = "steam_temperature_c"
    FEEDWATER_TEMPERATURE_C = "feedwater_temperature_c"
    HEAT_RECOVERED_GJ = "heat_recovered_gj"
    # water
    WATER_M3 = "water_m3"
    WATER_FLOW_M3H = "water_flow_m3h"
    # machines
    SPEED_RPM = "speed_rpm"
    SHAFT_POWER_KW = "shaft_power_kw"
    AIR_FLOW_M3MIN = "air_flow_m3min"
    DISCHARGE_PRESSURE_MPA = "discharge_pressure_mpa"
    FLOW_M3H = "flow_m3h"
    HEAD_M = "head_m"
    RUN_HOURS_H = "run_hours_h"
    TEMPERATURE_C = "temperature_c"

    @property
    def is_counter(self) -> bool:
        return self in COUNTER_ROLES


COUNTER_ROLES: frozenset[Role] = frozenset(
    {
        Role.ENERGY_IMPORT_KWH,
        Role.ENERGY_EXPORT_KWH,
        Role.REACTIVE_ENERGY_KVARH,
        Role.REACTIVE_ENERGY_EXPORT_KVARH,
        Role.PRODUCTION_T,
        Role.COAL_T,
        Role.GAS_M3,
        Role.STEAM_T,
        Role.HEAT_RECOVERED_GJ,
        Role.WATER_M3,
        Role.RUN_HOURS_H,
    }
)


@dataclass(frozen=True, slots=True)
class Sample:
    """One reading of one point of one device.

    ``ts`` is the acquisition time (when the agent got the reply); ``source_ts`` is the device's own timestamp
    where the protocol has one (OPC UA). ``reason`` says why quality is not good, e.g. "ILLEGAL DATA ADDRESS",
    "timeout after 1000 ms", "out of range: 812.0 > 600.0", "BadSensorFailure".
    """

    device: str
    point: str
    value: Value
    unit: str
    quality: Quality
    ts: float
    reason: str = ""
    role: Role | None = None
    source_ts: float | None = None


def _sample_factory() -> Callable[[str, str, Value, str, Quality, float, str, Role | None], Sample]:
    """``new_sample``: a Sample as ``Sample(...)`` builds it (no source_ts), in about half the time: the slots are
    set through their descriptors, not through the frozen class's ``object.__setattr__`` by name. For the hot
    path of the sources (20 points a poll, 100 polls a second)."""
    new = object.__new__
    slots = Sample.__dict__
    set_device, set_point, set_value, set_unit = (slots[n].__set__ for n in ("device", "point", "value", "unit"))
    set_quality, set_ts, set_reason, set_role = (slots[n].__set__ for n in ("quality", "ts", "reason", "role"))
    set_source_ts = slots["source_ts"].__set__

    def new_sample(
        device: str, point: str, value: Value, unit: str, quality: Quality, ts: float, reason: str, role: Role | None
    ) -> Sample:
        s: Sample = new(Sample)
        set_device(s, device)
        set_point(s, point)
        set_value(s, value)
        set_unit(s, unit)
        set_quality(s, quality)
        set_ts(s, ts)
        set_reason(s, reason)
        set_role(s, role)
        set_source_ts(s, None)
        return s

    return new_sample


new_sample = _sample_factory()


@dataclass(frozen=True, slots=True, eq=False)
class ReadLayout:
    """The points of a device's requests as columns, built once per read plan and shared by every poll that reads
    them all good (``GoodReads``). ``points``, ``units`` and ``roles`` run in request order (how the values come off
    the wire); ``order`` lists their indexes in the plan's point order (how Samples and messages list them);
    ``request_of`` gives each value's request (its reply time is that request's stamp). Compared and hashed by
    identity: a cache keyed by a layout (the KPI engine's per-layout routes) holds it alive, so an id is never
    reused."""

    device: str
    points: tuple[str, ...]
    units: tuple[str, ...]
    roles: tuple[Role | None, ...]
    order: tuple[int, ...]
    request_of: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class GoodReads:
    """A poll whose every point read good, without a Sample per point: ``values`` in ``layout.points`` order,
    ``stamps`` the reply time of each request. The hot path of a healthy device (encoding and the KPI engine read
    the columns); ``samples()`` builds the Samples that the same poll would have produced, in plan order."""

    layout: ReadLayout
    values: tuple[Value, ...]
    stamps: tuple[float, ...]

    def samples(self) -> tuple[Sample, ...]:
        lay, values, stamps, good = self.layout, self.values, self.stamps, Quality.GOOD
        return tuple(
            new_sample(
                lay.device, lay.points[i], values[i], lay.units[i], good, stamps[lay.request_of[i]], "", lay.roles[i]
            )
            for i in lay.order
        )


@dataclass(frozen=True, slots=True)
class PollResult:
    """What one poll of one device produced: every configured point exactly once, good or not. ``reads`` holds the
    Samples, or, for a poll that read every point good, the same as columns (``GoodReads``, built into Samples only
    when something asks for ``samples``)."""

    device: str
    ts: float
    duration_s: float
    reads: tuple[Sample, ...] | GoodReads
    requests: int
    errors: tuple[str, ...] = ()

    @property
    def samples(self) -> tuple[Sample, ...]:
        reads = self.reads
        return reads if isinstance(reads, tuple) else reads.samples()

    @property
    def good(self) -> GoodReads | None:
        """The columns of a poll that read every point good, else None."""
        reads = self.reads
        return None if isinstance(reads, tuple) else reads


class Grade(StrEnum):
    """Where a KPI stands against China's national energy-efficiency levels (lower energy is better)."""

    BENCHMARK = "benchmark"  # at or better than the benchmark level (标杆)
    BETWEEN = "between"  # between benchmark and baseline
    BELOW_BASELINE = "below_baseline"  # worse than the baseline level (基准)


@dataclass(frozen=True, slots=True)
class KpiValue:
    """One KPI over one window.

    ``coverage`` is the share (0..1) of the whole window with good input data, also while the window is open;
    ``quality`` is good only when coverage reached the KPI's minimum. ``final`` is False for the running value of
    a window not closed yet: provisional, replaced by the final value later. ``grade`` and ``distance`` (in the
    KPI's unit, positive = worse than the level it is compared with) are set for KPIs graded against
    benchmark/baseline levels; ``reference`` names the row used (edition, source, verification status).
    ``grade_indicative`` marks a grade on a window shorter than the grading periods (the national levels are
    annual figures). ``reason`` says what else a reader must know, e.g. a clock step inside the window.
    """

    name: str
    scope: str  # process line or device the KPI belongs to
    value: float | None
    unit: str
    window: str  # e.g. "15m", "1h", "shift", "day"
    window_start: float
    window_end: float
    coverage: float
    quality: Quality
    ts: float
    grade: Grade | None = None
    distance: float | None = None
    reference: str = ""
    detail: dict[str, float] = field(default_factory=dict)
    final: bool = True
    grade_indicative: bool = False
    reason: str = ""


@dataclass(frozen=True, slots=True)
class DeviceHealth:
    """Self-monitoring figures of one device, as its source saw them (published on the status topic)."""

    device: str
    state: str  # "ok", "failed" (consecutive failures past the threshold), "disabled"
    last_success_ts: float | None
    consecutive_failures: int
    last_poll_duration_s: float | None
    requests: int
    errors_by_kind: dict[str, int] = field(default_factory=dict)
    retries: int = 0  # requests or connection attempts repeated after a failure (a timeout, a dropped connection)
    connection_drops: int = 0  # established connections (sessions) lost, including those a resend recovered
