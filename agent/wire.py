"""The MQTT payload, shared by the agent (encode) and the centre ingestor (decode and validate).

Version 1, JSON. Every message carries the gateway's ``boot`` id (a UUID made at each start of the agent) and
``seq``, a number that grows by one for every samples or kpi message of that boot, so the centre can detect gaps
per (gateway, boot). A message replayed from the spool keeps its original boot and seq, so a redelivery is a
duplicate with the same content and the centre deduplicates on (gateway, boot, seq).

Topics (``prefix`` defaults to ``plant``)::

    <prefix>/<site>/<gateway>/<device>/samples   one message per device per poll
    <prefix>/<site>/<gateway>/kpi                KPI values of one engine update
    <prefix>/<site>/<gateway>/status             retained; birth "online", Last Will "offline"

The JSON Schema of these payloads is ``agent/data/wire-v1.schema.json``, written from the models below by
``energy-agent schema --wire``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from agent.model import Grade, KpiValue, Quality, Sample, Value

WIRE_VERSION = 1
_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"


class _Wire(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class WireSample(_Wire):
    point: str
    value: float | int | bool | str | None
    unit: str = ""
    quality: Quality
    ts: float = Field(description="Acquisition time, UNIX seconds UTC")
    reason: str = ""
    role: str | None = None
    source_ts: float | None = None


class SamplesMessage(_Wire):
    v: Literal[1] = 1
    type: Literal["samples"] = "samples"
    site: str = Field(pattern=_NAME)
    gateway: str = Field(pattern=_NAME)
    boot: str
    seq: int = Field(ge=0)
    device: str = Field(pattern=_NAME)
    ts: float = Field(description="Poll time, UNIX seconds UTC")
    tags: dict[str, str] = Field(default_factory=dict)
    samples: list[WireSample]


class WireKpi(_Wire):
    name: str
    scope: str
    value: float | None
    unit: str
    window: str
    window_start: float
    window_end: float
    coverage: float = Field(ge=0, le=1)
    quality: Quality
    ts: float
    grade: Grade | None = None
    distance: float | None = None
    reference: str = ""
    detail: dict[str, float] = Field(default_factory=dict)


class KpiMessage(_Wire):
    v: Literal[1] = 1
    type: Literal["kpi"] = "kpi"
    site: str = Field(pattern=_NAME)
    gateway: str = Field(pattern=_NAME)
    boot: str
    seq: int = Field(ge=0)
    ts: float
    kpis: list[WireKpi]


class StatusMessage(_Wire):
    v: Literal[1] = 1
    type: Literal["status"] = "status"
    site: str = Field(pattern=_NAME)
    gateway: str = Field(pattern=_NAME)
    state: Literal["online", "offline"]
    boot: str = ""
    ts: float = 0.0
    version: str = ""
    config_hash: str = ""
    health: dict[str, Any] = Field(default_factory=dict)


Message = Annotated[SamplesMessage | KpiMessage | StatusMessage, Field(discriminator="type")]
_MESSAGE: TypeAdapter[SamplesMessage | KpiMessage | StatusMessage] = TypeAdapter(Message)


def decode(payload: bytes | str) -> SamplesMessage | KpiMessage | StatusMessage:
    """Parse and validate one payload. Raises pydantic.ValidationError (or ValueError for bad JSON)."""
    return _MESSAGE.validate_json(payload)


def json_schema() -> dict[str, Any]:
    schema = _MESSAGE.json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://plant-energy-agent/wire-v1.schema.json"
    schema["title"] = "Plant energy agent MQTT payload, version 1"
    return schema


def sample_dict(s: Sample) -> dict[str, Value | float]:
    """One sample as it goes on the wire (also what ``energy-agent probe --json`` prints, with the device)."""
    d: dict[str, Value | float] = {
        "point": s.point,
        "value": s.value,
        "unit": s.unit,
        "quality": s.quality.value,
        "ts": s.ts,
    }
    if s.reason:
        d["reason"] = s.reason
    if s.role is not None:
        d["role"] = s.role.value
    if s.source_ts is not None:
        d["source_ts"] = s.source_ts
    return d


def encode_samples(
    *,
    site: str,
    gateway: str,
    boot: str,
    seq: int,
    device: str,
    ts: float,
    tags: dict[str, str],
    samples: tuple[Sample, ...] | list[Sample],
) -> bytes:
    """Encode one poll of one device. Hot path: plain dicts and orjson (about 7 µs for 20 samples, 5x faster
    than the standard library), no model validation. Sources never deliver NaN/Inf as a good value (the codec
    makes such a reading bad with value None); orjson would write one as null."""
    msg = {
        "v": WIRE_VERSION,
        "type": "samples",
        "site": site,
        "gateway": gateway,
        "boot": boot,
        "seq": seq,
        "device": device,
        "ts": ts,
        "tags": tags,
        "samples": [sample_dict(s) for s in samples],
    }
    return orjson.dumps(msg)


def encode_kpis(*, site: str, gateway: str, boot: str, seq: int, ts: float, kpis: list[KpiValue]) -> bytes:
    items = []
    for k in kpis:
        d: dict[str, Any] = {
            "name": k.name,
            "scope": k.scope,
            "value": _finite(k.value),
            "unit": k.unit,
            "window": k.window,
            "window_start": k.window_start,
            "window_end": k.window_end,
            "coverage": k.coverage,
            "quality": k.quality.value,
            "ts": k.ts,
        }
        if k.grade is not None:
            d["grade"] = k.grade.value
            d["distance"] = _finite(k.distance)
        if k.reference:
            d["reference"] = k.reference
        if k.detail:
            d["detail"] = {key: v for key, v in k.detail.items() if _finite(v) is not None}
        items.append(d)
    msg = {
        "v": WIRE_VERSION,
        "type": "kpi",
        "site": site,
        "gateway": gateway,
        "boot": boot,
        "seq": seq,
        "ts": ts,
        "kpis": items,
    }
    return orjson.dumps(msg)


def encode_status(status: StatusMessage) -> bytes:
    return status.model_dump_json(exclude_defaults=False).encode()


def _finite(v: float | None) -> float | None:
    if v is None or v != v or v in (float("inf"), float("-inf")):
        return None
    return v
