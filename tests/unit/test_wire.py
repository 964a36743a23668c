"""The MQTT payload: what the agent encodes is what the centre's validator accepts, value for value."""

from __future__ import annotations

import json
import math
from collections.abc import Callable

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from agent.model import Grade, KpiValue, Quality, Role, Sample, Value
from agent.wire import KpiMessage, SamplesMessage, decode, encode_kpis, encode_samples, sample_dict

values = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**63), 2**64 - 1), st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
)  # fmt: skip


@given(
    st.lists(
        st.tuples(st.from_regex(r"[a-z][a-z0-9_]{0,10}", fullmatch=True), values, st.sampled_from(list(Quality))),
        max_size=30,
    ),
    st.integers(0, 2**40),
)
def test_samples_round_trip(points: list[tuple[str, Value, Quality]], seq: int) -> None:
    samples = tuple(
        Sample("kiln1-meter", name, v, "kWh", q, 1_767_225_600.25, "timeout" if q is Quality.BAD else "",
               Role.ENERGY_IMPORT_KWH, None)
        for name, v, q in points
    )  # fmt: skip
    payload = encode_samples(
        site="s1", gateway="gw1", boot="b" * 32, seq=seq, device="kiln1-meter", ts=1_767_225_600.0,
        tags={"line": "line1"}, samples=samples,
    )  # fmt: skip
    msg = decode(payload)
    assert isinstance(msg, SamplesMessage)
    assert (msg.seq, msg.device, msg.tags) == (seq, "kiln1-meter", {"line": "line1"})
    assert [(w.point, w.value, w.quality, w.reason, w.role) for w in msg.samples] == [
        (s.point, s.value, s.quality, s.reason, "energy_import_kwh") for s in samples
    ]


@given(
    st.lists(
        st.tuples(
            values,
            st.sampled_from(list(Quality)),
            st.sampled_from([None, *Role]),
            st.sampled_from(["", "timeout"]),
            st.sampled_from([None, 1_767_225_599.5]),
        ),
        max_size=10,
    )
)
def test_the_payload_holds_each_sample_as_sample_dict_gives_it(
    points: list[tuple[Value, Quality, Role | None, str, float | None]],
) -> None:
    samples = tuple(
        Sample("d", f"p{i}", v, "kW", q, 1_767_225_600.25, r, role, src)
        for i, (v, q, role, r, src) in enumerate(points)
    )
    payload = encode_samples(site="s", gateway="g", boot="b", seq=1, device="d", ts=1.0, tags={}, samples=samples)
    assert orjson.loads(payload)["samples"] == [sample_dict(s) for s in samples]  # the probe's --json lines: same keys
    assert payload == orjson.dumps(
        {"v": 1, "type": "samples", "site": "s", "gateway": "g", "boot": "b", "seq": 1, "device": "d", "ts": 1.0,
         "tags": {}, "samples": [sample_dict(s) for s in samples]}
    )  # fmt: skip


def test_kpi_non_finite_numbers_become_null_and_grades_survive() -> None:
    kpi = KpiValue("energy_kgce_per_t", "line1", math.nan, "kgce/t", "1h", 0.0, 3600.0, 0.95, Quality.GOOD, 3600.0,
                   Grade.BETWEEN, math.inf, "GB 16780-2021, status 2nd", {"final": 1.0, "bad": math.nan})  # fmt: skip
    msg = decode(encode_kpis(site="s1", gateway="gw1", boot="b", seq=3, ts=3600.0, kpis=[kpi]))
    assert isinstance(msg, KpiMessage)
    k = msg.kpis[0]
    assert (k.value, k.distance, k.grade, k.detail) == (None, None, Grade.BETWEEN, {"final": 1.0})


# Numbers that JSON parsers accept but no database can store: the tokens NaN/Infinity, 1e400 (read as inf) and
# integers of any length. Each one used to reach the centre's line-protocol conversion and crash the ingestor.
HOSTILE = [b"NaN", b"Infinity", b"-Infinity", b"1e400", b"-1e400", b"1" + b"0" * 400]
ENVELOPE = b'"v":1,"site":"s1","gateway":"gw1","boot":"b","seq":1'
SAMPLE = b'{"point":"p1","value":%s,"unit":"kW","quality":"good","ts":%s,"source_ts":%s}'
KPI = (
    b'{"name":"sec","scope":"line1","value":%s,"unit":"kWh/t","window":"1h","window_start":1764000000,'
    b'"window_end":%s,"coverage":%s,"quality":"good","ts":1764003600,"distance":%s,"detail":{"x":%s}}'
)
OK_TS = b"1764000000.5"


def _samples(value: bytes = b"1.5", ts: bytes = OK_TS, source_ts: bytes = b"null", msg_ts: bytes = OK_TS) -> bytes:
    sample = SAMPLE % (value, ts, source_ts)
    return b'{"type":"samples",%s,"device":"m1","ts":%s,"samples":[%s]}' % (ENVELOPE, msg_ts, sample)


def _kpis(
    value: bytes = b"1.5", end: bytes = b"1764003600", cov: bytes = b"1", dist: bytes = b"0", det: bytes = b"1"
) -> bytes:
    return b'{"type":"kpi",%s,"ts":1764003600,"kpis":[%s]}' % (ENVELOPE, KPI % (value, end, cov, dist, det))


def _status(ts: bytes = OK_TS, health: bytes = b"{}") -> bytes:
    return b'{"type":"status","site":"s1","gateway":"gw1","state":"online","ts":%s,"health":%s}' % (ts, health)


def test_well_formed_messages_with_extreme_but_storable_numbers_pass() -> None:
    msg = decode(_samples(value=str(2**64 - 1).encode(), source_ts=OK_TS))
    assert isinstance(msg, SamplesMessage) and msg.samples[0].value == 2**64 - 1
    decode(_samples(value=b"-1.7976931348623157e308"))
    decode(_kpis())
    decode(_status(health=b'{"devices":{"m1":{"errors":{"timeout":3},"ok":true,"t":null}},"lag":[0.1,2]}'))


@pytest.mark.parametrize("bad", HOSTILE)
@pytest.mark.parametrize(
    "build",
    [
        lambda b: _samples(value=b),
        lambda b: _samples(ts=b),
        lambda b: _samples(source_ts=b),
        lambda b: _samples(msg_ts=b),
        lambda b: _kpis(value=b),
        lambda b: _kpis(end=b),
        lambda b: _kpis(cov=b),
        lambda b: _kpis(dist=b),
        lambda b: _kpis(det=b),
        lambda b: _status(ts=b),
        lambda b: _status(health=b'{"polls":%s}' % b),
        lambda b: _status(health=b'{"devices":{"m1":{"lag":[1,%s]}}}' % b),
    ],
    ids=[
        "sample.value", "sample.ts", "sample.source_ts", "samples.ts", "kpi.value", "kpi.window_end",
        "kpi.coverage", "kpi.distance", "kpi.detail", "status.ts", "status.health", "status.health.nested",
    ],
)  # fmt: skip
def test_numbers_that_cannot_be_stored_are_refused(build: Callable[[bytes], bytes], bad: bytes) -> None:
    with pytest.raises(ValidationError):
        decode(build(bad))


@pytest.mark.parametrize("ts", [b"-1", b"9223372037", b"1e300"])
def test_timestamps_outside_what_influxdb_can_hold_are_refused(ts: bytes) -> None:
    with pytest.raises(ValidationError):
        decode(_samples(ts=ts))


@pytest.mark.parametrize("point", ["", "p" * 65, "P total", "E,imp", "a\nb", "x=1"])
def test_point_names_follow_the_profile_rule(point: str) -> None:
    payload = _samples().replace(b'"point":"p1"', b'"point":' + json.dumps(point).encode())
    with pytest.raises(ValidationError):
        decode(payload)


def test_health_nesting_and_text_are_bounded() -> None:
    deep = b'{"a":' * 7 + b"1" + b"}" * 7
    with pytest.raises(ValidationError):
        decode(_status(health=deep))
    with pytest.raises(ValidationError):
        decode(_status(health=b'{"note":"%s"}' % (b"x" * 1025)))


def test_bounds_leave_room_for_what_a_site_file_may_say() -> None:
    """Units, device tags and KPI names come from site files and profiles, which do not bound their length: the
    wire's bounds are far above any real one, so a real gateway is never quarantined for them."""
    sample = Sample("m1", "p1", 1.0, "Nm3/h at 0 °C, 101.325 kPa" * 5, Quality.GOOD, 1_767_225_600.0)
    tags = {f"tag{i}": "kiln line 1, raw mill area, building 7 " * 10 for i in range(100)}
    payload = encode_samples(
        site="s1", gateway="gw1", boot="b", seq=1, device="m1", ts=1_767_225_600.0, tags=tags, samples=[sample]
    )
    msg = decode(payload)
    assert isinstance(msg, SamplesMessage) and msg.tags == tags
