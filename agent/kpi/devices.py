"""What the KPI engine knows of a device: tags, renewable flag, profile category, point roles, counter widths."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from agent.config.ratios import unit_ratio
from agent.model import Role

if TYPE_CHECKING:
    from agent.config.profile import ProfileConfig

_WIDTH_BITS = {"int16": 16, "uint16": 16, "int32": 32, "uint32": 32, "int64": 64, "uint64": 64}


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    """What the engine needs to know about a device: its tags, whether it meters renewable supply, its profile
    category, the role of each point and where integer counters wrap (engineering units)."""

    name: str
    tags: Mapping[str, str] = field(default_factory=dict)
    renewable: bool = False
    category: str = "other"
    roles: Mapping[str, Role] = field(default_factory=dict)
    counter_modulus: Mapping[str, float] = field(default_factory=dict)
    scales: Mapping[str, float] = field(default_factory=dict)  # the profile's scale of each point

    @classmethod
    def from_config(cls, device: object, profile: ProfileConfig | None) -> DeviceInfo:
        """From a site device entry (``SiteConfig.devices[i]``) and its profile (Modbus), or the device's own
        ``points`` (OPC UA: typed values, no register width)."""
        roles: dict[str, Role] = {}
        modulus: dict[str, float] = {}
        scales: dict[str, float] = {}
        for p in getattr(device, "points", None) or []:
            role = getattr(p, "role", None)
            if isinstance(role, Role):
                roles[str(p.name)] = role
            wrap = getattr(p, "counter_modulus", None)  # DL/T 645: where its BCD counter wraps, ratios applied
            if isinstance(wrap, float):
                modulus[str(p.name)] = wrap
        if profile is not None:
            ct, pt = getattr(device, "ct_ratio", 1.0), getattr(device, "pt_ratio", 1.0)
            for p in profile.points:
                scale = p.scale * unit_ratio(p.unit, ct, pt)  # a Modbus meter's CT/PT ratios, by the point's unit
                scales[p.name] = scale
                if p.role is not None:
                    roles[p.name] = p.role
                bits = _WIDTH_BITS.get(p.type.value)
                if bits is not None and bits < 64:
                    modulus[p.name] = float(2**bits) * abs(scale)
        return cls(
            name=str(getattr(device, "name", "")),
            tags=dict(getattr(device, "tags", {}) or {}),
            renewable=bool(getattr(device, "renewable", False)),
            category=profile.category if profile is not None else "other",
            roles=roles,
            counter_modulus=modulus,
            scales=scales,
        )


def counter_modulus(bits: int | None, point: str, info: DeviceInfo | None) -> float | None:
    """Where a counter wraps, in engineering units: the declared width x the profile's scale, else the profile's
    data type; 64-bit counters never wrap in practice."""
    if bits is None:
        return None if info is None else info.counter_modulus.get(point)
    if bits == 64:
        return None
    scale = 1.0 if info is None else abs(info.scales.get(point, 1.0))
    return float(2**bits) * scale
