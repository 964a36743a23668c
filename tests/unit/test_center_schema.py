"""Wire message -> InfluxDB points: tags, field types, timestamps, and the idempotence the schema promises."""

from __future__ import annotations

from agent.center.schema import gap_line, kpi_lines, sample_lines, status_lines
from agent.model import Grade, KpiValue, Quality, Role, Sample
from agent.wire import KpiMessage, SamplesMessage, StatusMessage, decode, encode_kpis, encode_samples

TS = 1_764_000_000.123456


def samples_msg(seq: int = 7, tags: dict[str, str] | None = None) -> SamplesMessage:
    samples = [
        Sample("m1", "P_total", 12.5, "kW", Quality.GOOD, TS, role=Role.ACTIVE_POWER_KW),
        Sample("m1", "E_imp", 1000, "kWh, import", Quality.GOOD, TS, role=Role.ENERGY_IMPORT_KWH),
        Sample("m1", "running", True, "", Quality.GOOD, TS),
        Sample("m1", "state", 'on "auto"', "", Quality.GOOD, TS),
        Sample("m1", "temp", None, "°C", Quality.BAD, TS, reason="ILLEGAL DATA ADDRESS"),
    ]
    payload = encode_samples(
        site="plant1", gateway="gw1", boot="boot-a", seq=seq, device="m1", ts=TS, tags=tags or {}, samples=samples
    )
    msg = decode(payload)
    assert isinstance(msg, SamplesMessage)
    return msg


def test_samples_become_one_point_per_sample_with_stable_keys() -> None:
    lines = list(sample_lines(samples_msg(), "ns"))
    assert lines == [
        'sample,device=m1,gateway=gw1,point=P_total,role=active_power_kw,site=plant1,unit=kW value=12.5,quality="good"'
        " 1764000000123456000",
        "sample,device=m1,gateway=gw1,point=E_imp,role=energy_import_kwh,site=plant1,unit=kWh\\,\\ import value=1000.0,"
        'quality="good" 1764000000123456000',
        'sample,device=m1,gateway=gw1,point=running,site=plant1 value=1.0,quality="good" 1764000000123456000',
        'sample,device=m1,gateway=gw1,point=state,site=plant1 value_str="on \\"auto\\"",quality="good" 1764000000123456000',
        'sample,device=m1,gateway=gw1,point=temp,site=plant1,unit=°C quality="bad",reason="ILLEGAL DATA ADDRESS"'
        " 1764000000123456000",
    ]


def test_a_redelivered_message_writes_exactly_the_same_points() -> None:
    """Boot and seq differ between a first delivery and a replay only in the envelope: they are never in a key."""
    first = list(sample_lines(samples_msg(seq=7), "ns"))
    again = list(sample_lines(samples_msg(seq=7), "ns"))
    assert first == again
    assert all("boot" not in line and "seq" not in line for line in first)


def test_only_allowed_device_tags_become_tags() -> None:
    msg = samples_msg(tags={"line": "kiln1", "serial": "SN-123456"})
    lines = list(sample_lines(msg, "ns", extra_tags=["line"]))
    assert all(",line=kiln1," in line for line in lines)
    assert not any("serial" in line for line in lines)


def test_kpi_point_is_keyed_by_window_start_and_carries_the_grade() -> None:
    """At window start: the open window's point is not in the future and a day's point is dated that day."""
    k = KpiValue(
        name="sec_clinker",
        scope="kiln1",
        value=101.5,
        unit="kgce/t",
        window="1h",
        window_start=TS - 3600,
        window_end=TS,
        coverage=0.98,
        quality=Quality.GOOD,
        ts=TS + 5,
        grade=Grade.BETWEEN,
        distance=1.5,
        reference="GB 16780-2021 clinker, edition 2021, status 2nd",
        detail={"energy_kwh": 1000.0},
    )
    msg = decode(encode_kpis(site="plant1", gateway="gw1", boot="b", seq=1, ts=TS + 5, kpis=[k]))
    assert isinstance(msg, KpiMessage)
    (text,) = kpi_lines(msg, "ms")
    head, fields, ts = text.split(" ", 1)[0], text.split(" ", 1)[1].rsplit(" ", 1)[0], text.rsplit(" ", 1)[1]
    assert head == "kpi,gateway=gw1,name=sec_clinker,scope=kiln1,site=plant1,state=final,unit=kgce/t,window=1h"
    assert ts == "1763996400123"
    assert "window_start=1763996400.123456" in fields and "window_end=1764000000.123456" in fields
    assert 'grade="between"' in fields and "grade_level=1i" in fields and "distance=1.5" in fields
    assert "detail_energy_kwh=1000.0" in fields and "coverage=0.98" in fields


def test_status_with_per_device_health() -> None:
    msg = StatusMessage(
        site="plant1",
        gateway="gw1",
        state="online",
        boot="b",
        ts=TS,
        version="0.1.0",
        health={
            "devices": {"m1": {"state": "ok", "consecutive_failures": 0, "errors": {"timeout": 2}}},
            "spool": {"depth": 3, "dropped_full": {"samples": 1}},
            "loop_lag_s": {"p50": 0.001, "max": None},
        },
    )
    lines = list(status_lines(msg, "s", received_ts=0))
    assert lines == [
        'device_health,device=m1,gateway=gw1,site=plant1 state="ok",consecutive_failures=0.0,errors_timeout=2.0'
        " 1764000000",
        'gateway_status,gateway=gw1,site=plant1 state="online",online=1i,boot="b",version="0.1.0",'
        "health_spool_depth=3.0,health_spool_dropped_full_samples=1.0,health_loop_lag_s_p50=0.001 1764000000",
    ]


def test_last_will_without_ts_is_stamped_on_arrival() -> None:
    msg = StatusMessage(site="plant1", gateway="gw1", state="offline")
    (text,) = status_lines(msg, "s", received_ts=TS)
    assert text == 'gateway_status,gateway=gw1,site=plant1 state="offline",online=0i 1764000000'


def test_gap_line() -> None:
    assert (
        gap_line("plant1", "gw1", "b", 10, 12, TS, "s")
        == 'gap,gateway=gw1,site=plant1 boot="b",first_seq=10i,last_seq=12i,missing=3i 1764000000'
    )


def test_cached_series_keep_different_tag_sets_apart() -> None:
    """The series part is cached; two devices whose allowed tags differ only in the key must not share a line."""
    a = list(sample_lines(samples_msg(tags={"line": "k1"}), "ns", extra_tags=["line", "area"]))
    b = list(sample_lines(samples_msg(tags={"area": "k1"}), "ns", extra_tags=["line", "area"]))
    assert all(",line=k1," in x for x in a)
    assert all(",area=k1," in x and "line=" not in x for x in b)


def test_a_provisional_value_is_another_series_than_the_final_value_of_the_same_window() -> None:
    """Issue 18: both were one point (time = window_start, ``final`` a field), so the last write won; after a
    broker outage a live-first replay sends the final 21.06 before the backlog's provisional 6.68 and 6.68 stayed.
    Now the two carry tag state=final / state=provisional: different series keys, same timestamp, so neither
    write can replace the other in InfluxDB (a point is measurement + tag set + time)."""

    def one(value: float, final: bool) -> str:
        k = KpiValue("energy_kgce", "kiln1", value, "kgce", "15m", TS - 900, TS, 1.0, Quality.GOOD, TS, final=final)
        msg = decode(encode_kpis(site="plant1", gateway="gw1", boot="b", seq=1, ts=TS, kpis=[k]))
        assert isinstance(msg, KpiMessage)
        (text,) = kpi_lines(msg, "s")
        return text

    def key(text: str) -> tuple[str, str]:  # series and time
        return text.split(" ", 1)[0], text.rsplit(" ", 1)[1]

    final, provisional = one(21.06, True), one(6.68, False)
    assert key(final)[1] == key(provisional)[1]  # same window, same time
    assert key(final)[0] != key(provisional)[0]
    assert "state=final" in key(final)[0] and "state=provisional" in key(provisional)[0]
