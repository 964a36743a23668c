"""Read plan: a device's points compiled into the fewest Modbus read requests, before any I/O.

Per register table (function code 1, 2, 3, 4) the points, sorted by protocol address, are swept left to right:
a request starts at the first point not yet covered and takes the next point while the request stays within the
size limit (125 registers, 2000 bits, or the device's / profile's ``max_registers_per_request``) and the unused
registers between the points already taken and the next one do not exceed ``max_gap``. For bit tables the limit
is 2000 bits and the gap is ``max_gap * 16`` bits (one register's worth of bits per allowed register).

Why the sweep is minimal: take any feasible grouping and its group G that holds the first point. The sweep's
first request holds the longest feasible prefix of the sorted points; a group holding the first point covers a
range [s, e) that is a feasible read, and every point starting inside it with no over-long gap is a prefix of the
sorted points, so the sweep's prefix is at least as long, and swapping it in never increases the count (standard
exchange argument; ``minimum_requests`` checks it by dynamic programming, and tests compare both with a
brute-force search over all groupings).

Addresses: ``protocol address = manual address - profile.address_base`` (base 1: manual 1 = protocol 0).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from agent.config.profile import PointConfig, ProfileConfig, RegisterKind
from agent.config.ratios import unit_ratio
from agent.config.site import ModbusDeviceConfig
from agent.errors import ConfigError, ConfigIssue
from agent.sources.modbus.codec import PointCodec, compile_point

MAX_REGISTERS = 125
MAX_BITS = 2000
FUNCTION_CODE: dict[RegisterKind, int] = {
    RegisterKind.COIL: 1,
    RegisterKind.DISCRETE_INPUT: 2,
    RegisterKind.HOLDING_REGISTER: 3,
    RegisterKind.INPUT_REGISTER: 4,
}
TABLE_NAME: dict[int, str] = {1: "coil", 2: "discrete", 3: "holding", 4: "input"}


@dataclass(frozen=True, slots=True)
class PlannedPoint:
    """A point inside a request: ``offset`` is its register (bit, for fc 1/2) index within the reply."""

    config: PointConfig
    codec: PointCodec
    address: int  # protocol address
    offset: int

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def end(self) -> int:
        return self.address + self.codec.width


@dataclass(frozen=True, slots=True)
class ReadRequest:
    """One read: function code, protocol start address, count, and the points it decodes."""

    function: int
    start: int
    count: int
    points: tuple[PlannedPoint, ...]
    needs_swapped: bool  # some point decodes from byte-swapped words

    @property
    def table(self) -> str:
        return TABLE_NAME[self.function]

    @property
    def is_bits(self) -> bool:
        return self.function in (1, 2)

    @property
    def gap(self) -> int:
        """Unused registers (bits) this request reads through."""
        covered: set[int] = set()
        for p in self.points:
            covered.update(range(p.address, p.end))
        return self.count - len(covered)

    def describe(self) -> str:
        """e.g. 'holding 0..39'."""
        return f"{self.table} {self.start}..{self.start + self.count - 1}"


@dataclass(frozen=True, slots=True)
class ReadPlan:
    device: str
    requests: tuple[ReadRequest, ...]
    minimum: int  # theoretical minimum number of requests (dynamic programming), equal to len(requests)
    point_names: tuple[str, ...]  # every configured point, in profile order

    @property
    def registers_read(self) -> int:
        return sum(r.count for r in self.requests)


@dataclass(frozen=True, slots=True)
class Limits:
    max_count: int
    max_gap: int


def _limits(function: int, max_registers: int, max_gap: int) -> Limits:
    if function in (1, 2):
        return Limits(MAX_BITS, max_gap * 16)
    return Limits(min(max_registers, MAX_REGISTERS), max_gap)


def sweep(spans: Sequence[tuple[int, int]], limits: Limits) -> list[list[int]]:
    """Group spans ``(start, end)`` (sorted by start) greedily; returns lists of span indices per request."""
    groups: list[list[int]] = []
    start = end = 0
    for i, (s, e) in enumerate(spans):
        if groups and s - end <= limits.max_gap and max(end, e) - start <= limits.max_count:
            groups[-1].append(i)
            end = max(end, e)
        else:
            groups.append([i])
            start, end = s, e
    return groups


def feasible(spans: Sequence[tuple[int, int]], limits: Limits) -> bool:
    """Can one read cover these spans (any order)? Read [min start, max end) within the size limit, and no run of
    registers covered by none of the spans longer than max_gap."""
    ordered = sorted(spans)
    start, end = ordered[0][0], ordered[0][1]
    for s, e in ordered[1:]:
        if s - end > limits.max_gap:
            return False
        end = max(end, e)
    return end - start <= limits.max_count


def minimum_requests(spans: Sequence[tuple[int, int]], limits: Limits) -> int:
    """Fewest requests covering ``spans`` (sorted by start), by dynamic programming over contiguous runs."""
    n = len(spans)
    best = [0] + [n + 1] * n
    for j in range(1, n + 1):
        for i in range(j):
            if best[i] + 1 < best[j] and feasible(spans[i:j], limits):
                best[j] = best[i] + 1
    return best[n]


def _issue(profile: ProfileConfig, index: int, message: str) -> ConfigIssue:
    return ConfigIssue(f"profile {profile.profile}", 0, 0, f"points[{index}]", message)


def build_read_plan(profile: ProfileConfig, device: ModbusDeviceConfig) -> ReadPlan:
    """Compile the device's profile into its read plan. Raises ConfigError for points that cannot be read."""
    max_registers = device.max_registers_per_request or profile.max_registers_per_request
    max_gap = device.max_gap if device.max_gap is not None else profile.max_gap
    issues: list[ConfigIssue] = []
    by_function: dict[int, list[tuple[int, int, PointConfig, PointCodec]]] = {}
    for index, profiled in enumerate(profile.points):
        point = _with_ratio(profiled, device)
        codec = compile_point(point, profile.byte_order)
        address = point.address - profile.address_base
        function = FUNCTION_CODE[point.kind]
        limits = _limits(function, max_registers, max_gap)
        if address < 0:
            issues.append(
                _issue(profile, index, f"address 0 does not exist when address_base is {profile.address_base}")
            )
            continue
        if address + codec.width > 65536:
            issues.append(_issue(profile, index, f"{point.name} runs past the last register 65535"))
            continue
        if codec.width > limits.max_count:
            issues.append(
                _issue(
                    profile,
                    index,
                    f"{point.name} spans {codec.width} registers, more than one request may read "
                    f"({limits.max_count}, max_registers_per_request)",
                )
            )
            continue
        by_function.setdefault(function, []).append((address, index, point, codec))
    if issues:
        raise ConfigError(issues)
    requests: list[ReadRequest] = []
    minimum = 0
    for function in sorted(by_function):
        entries = sorted(by_function[function], key=lambda e: (e[0], e[1]))
        limits = _limits(function, max_registers, max_gap)
        spans = [(a, a + c.width) for a, _, _, c in entries]
        minimum += minimum_requests(spans, limits) if len(spans) <= 400 else len(sweep(spans, limits))
        for group in sweep(spans, limits):
            requests.append(make_request(function, [(entries[i][2], entries[i][3], entries[i][0]) for i in group]))
    return ReadPlan(device.name, tuple(requests), minimum, tuple(p.name for p in profile.points))


def _with_ratio(point: PointConfig, device: ModbusDeviceConfig) -> PointConfig:
    """The point as read from this device: scale, offset and range times its CT/PT ratio (by the point's unit)."""
    r = unit_ratio(point.unit, device.ct_ratio, device.pt_ratio)
    if r == 1.0 or point.kind.is_bit:
        return point
    scaled = (point.range[0] * r, point.range[1] * r) if point.range is not None else None
    return point.model_copy(update={"scale": point.scale * r, "offset": point.offset * r, "range": scaled})


def make_request(function: int, members: Iterable[tuple[PointConfig, PointCodec, int]]) -> ReadRequest:
    """A request covering exactly ``members`` (config, codec, protocol address): from the first start to the last
    end, offsets precomputed."""
    items = list(members)
    start = min(a for _, _, a in items)
    end = max(a + c.width for _, c, a in items)
    points = tuple(PlannedPoint(p, c, a, a - start) for p, c, a in items)
    return ReadRequest(function, start, end - start, points, any(c.swapped for _, c, _ in items))


def split_request(request: ReadRequest) -> list[ReadRequest]:
    """Split after ILLEGAL DATA ADDRESS: first into the largest sub-requests that read no unused register (runs of
    touching points); a request that already reads no gap splits into one request per point. A single-point
    request cannot be split (returns it unchanged)."""
    if len(request.points) == 1:
        return [request]
    ordered = sorted(request.points, key=lambda p: (p.address, p.end))
    runs: list[list[PlannedPoint]] = [[ordered[0]]]
    end = ordered[0].end
    for p in ordered[1:]:
        if p.address <= end:
            runs[-1].append(p)
        else:
            runs.append([p])
        end = max(end, p.end)
    if len(runs) == 1:
        runs = [[p] for p in ordered]
    return [make_request(request.function, [(p.config, p.codec, p.address) for p in run]) for run in runs]
