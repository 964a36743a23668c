"""Every numeric point of the shipped profile library carries a plausible ``range``, so a wrong vendor profile (or
a wrong byte order) shows its garbage as ``uncertain``, not ``good`` (issue 17: ``984102.8125 A good``)."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from agent.config.load import load_profile, shipped_profile_dir
from agent.config.profile import DataType, PointConfig, ProfileConfig
from agent.model import Quality
from agent.sources.modbus.codec import compile_point

PROFILES = sorted(shipped_profile_dir(env=False).glob("*.yaml"))
NOT_NUMBERS = {DataType.BOOL, DataType.BIT, DataType.STRING}
_INT_LIMITS = {
    DataType.INT8_HIGH: (-(2**7), 2**7 - 1),
    DataType.INT8_LOW: (-(2**7), 2**7 - 1),
    DataType.UINT8_HIGH: (0, 2**8 - 1),
    DataType.UINT8_LOW: (0, 2**8 - 1),
    DataType.INT16: (-(2**15), 2**15 - 1),
    DataType.UINT16: (0, 2**16 - 1),
    DataType.INT32: (-(2**31), 2**31 - 1),
    DataType.UINT32: (0, 2**32 - 1),
    DataType.INT64: (-(2**63), 2**63 - 1),
    DataType.UINT64: (0, 2**64 - 1),
}


def numeric_points() -> list[tuple[str, ProfileConfig, PointConfig]]:
    out = []
    for path in PROFILES:
        profile = load_profile(path)
        out += [(path.name, profile, p) for p in profile.points if p.type not in NOT_NUMBERS]
    return out


def test_the_library_is_there() -> None:
    assert len(PROFILES) >= 20 and len(numeric_points()) >= 200


def test_every_numeric_point_of_every_shipped_profile_has_a_range() -> None:
    missing = [f"{name}: {p.name} ({p.unit or 'no unit'})" for name, _, p in numeric_points() if p.range is None]
    assert missing == []


def _beyond(point: PointConfig) -> float | None:
    """A value the point's type can carry that is above its range (or below it), or None when the type cannot."""
    assert point.range is not None
    low, high = point.range
    if point.type in _INT_LIMITS:
        lo_raw, hi_raw = _INT_LIMITS[point.type]
        margin = 0.99  # inside the type even after float rounding of 64-bit raw values
        ends = sorted((lo_raw * margin * point.scale + point.offset, hi_raw * margin * point.scale + point.offset))
        if ends[1] > high:
            return min(float(ends[1]), high * 10 + 1) if high > 0 else float(ends[1])
        return float(ends[0]) if ends[0] < low else None
    return high * 10 + 1 if high > 0 else high + 1e6  # floats carry anything


@pytest.mark.parametrize("name", [p.name for p in PROFILES])
def test_garbage_beyond_the_range_decodes_as_uncertain(name: str) -> None:
    checked = 0
    for file, profile, point in numeric_points():
        if file != name:
            continue
        value = _beyond(point)
        if value is None:
            continue  # the type itself cannot leave the range
        codec = compile_point(point, profile.byte_order)
        quality, decoded, reason = codec.decode_registers(codec.encode(value))
        assert quality is Quality.UNCERTAIN, (point.name, value, decoded)
        assert reason.startswith("out of range"), reason
        checked += 1
    assert checked or name.startswith("fuxin")  # most profiles have a point whose type can leave the range


def test_the_reported_garbage_current_is_uncertain() -> None:
    """The field report: 984102.8125 A shown as good with a wrong vendor profile."""
    profile = load_profile(shipped_profile_dir(env=False) / "generic-3ph-meter.yaml")
    point = next(p for p in profile.points if p.name == "current_l1_a")
    codec = compile_point(point, profile.byte_order)
    registers = codec.encode(984102.8125)  # in the profile's word order (CDAB)
    assert registers == list(struct.unpack(">2H", struct.pack(">f", 984102.8125)))[::-1]
    quality, value, _ = codec.decode_registers(registers)
    assert (quality, value) == (Quality.UNCERTAIN, 984102.8125)


def test_ranges_are_in_the_profile_files(tmp_path: Path) -> None:
    """The ranges are data in each profile (read by the loader), not a table in code."""
    text = (shipped_profile_dir(env=False) / "acrel-adl400.yaml").read_text()
    assert "range: [0, 40000]" in text
