"""The MQTT payload: what the agent encodes is what the centre's validator accepts, value for value."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from agent.model import Grade, KpiValue, Quality, Role, Sample, Value
from agent.wire import KpiMessage, SamplesMessage, decode, encode_kpis, encode_samples

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


def test_kpi_non_finite_numbers_become_null_and_grades_survive() -> None:
    kpi = KpiValue("energy_kgce_per_t", "line1", math.nan, "kgce/t", "1h", 0.0, 3600.0, 0.95, Quality.GOOD, 3600.0,
                   Grade.BETWEEN, math.inf, "GB 16780-2021, status 2nd", {"final": 1.0, "bad": math.nan})  # fmt: skip
    msg = decode(encode_kpis(site="s1", gateway="gw1", boot="b", seq=3, ts=3600.0, kpis=[kpi]))
    assert isinstance(msg, KpiMessage)
    k = msg.kpis[0]
    assert (k.value, k.distance, k.grade, k.detail) == (None, None, Grade.BETWEEN, {"final": 1.0})
