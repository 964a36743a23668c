"""The centre's limits on what one gateway may write: clock-skew window (injected clock), items per message and
series per gateway. Pure: decoded wire messages in, what may be written and why the rest may not out."""

from __future__ import annotations

from pathlib import Path

from agent.center.config import LimitsConfig
from agent.center.limits import Admission, SeriesFile
from agent.model import KpiValue, Quality, Sample
from agent.wire import KpiMessage, SamplesMessage, StatusMessage, decode, encode_kpis, encode_samples

NOW = 1_767_225_600.0  # 2026-01-01


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def samples(points: list[tuple[str, float]], gateway: str = "gw1", ts: float = NOW, unit: str = "kW") -> SamplesMessage:
    payload = encode_samples(
        site="s1", gateway=gateway, boot="b", seq=1, device="m1", ts=ts, tags={},
        samples=[Sample("m1", name, 1.0, unit, Quality.GOOD, t) for name, t in points],
    )  # fmt: skip
    msg = decode(payload)
    assert isinstance(msg, SamplesMessage)
    return msg


def kpis(stamps: list[tuple[str, float]], ts: float = NOW) -> KpiMessage:
    values = [KpiValue(n, "line1", 1.0, "kWh/t", "1h", t - 3600, t, 1.0, Quality.GOOD, t) for n, t in stamps]
    msg = decode(encode_kpis(site="s1", gateway="gw1", boot="b", seq=1, ts=ts, kpis=values))
    assert isinstance(msg, KpiMessage)
    return msg


def admission(clock: Clock | None = None, **limits: float) -> Admission:
    return Admission(LimitsConfig(**limits), clock or Clock(NOW))


def test_samples_inside_the_window_pass_untouched() -> None:
    msg = samples([("a", NOW - 86400), ("b", NOW + 60)])
    verdict = admission().check(msg)
    assert verdict.message is msg and verdict.refused == () and verdict.skewed == 0


def test_samples_outside_the_window_are_refused_and_the_rest_is_kept() -> None:
    msg = samples([("ok", NOW - 10), ("old", 0.0), ("ahead", NOW + 601), ("edge", NOW - 100)])
    verdict = admission(max_past_s=100, max_future_s=600).check(msg)
    assert isinstance(verdict.message, SamplesMessage)
    assert [s.point for s in verdict.message.samples] == ["ok", "edge"]
    assert verdict.skewed == 2
    assert verdict.refused == (
        "2 sample(s) refused: ts 1970-01-01 00:00:00 UTC is 56 years behind the centre's clock "
        "(limits.max_past_s / max_future_s)",
    )


def test_the_window_moves_with_the_injected_clock() -> None:
    clock = Clock(NOW)
    gate = admission(clock, max_past_s=3600, max_future_s=60)
    msg = samples([("a", NOW)])
    assert gate.check(msg).skewed == 0
    clock.now = NOW + 7200  # two hours later the same message is too old
    verdict = gate.check(msg)
    assert verdict.message is None and verdict.skewed == 1
    assert verdict.refused[0].startswith("message ts 2026-01-01 00:00:00 UTC is 2 h behind")
    clock.now = NOW - 120  # and before, too far ahead
    assert "2 min ahead of the centre's clock" in gate.check(msg).refused[0]


def test_kpis_are_judged_by_the_time_they_were_computed() -> None:
    msg = kpis([("now", NOW), ("ancient", 100_000.0)])
    verdict = admission(max_past_s=86400).check(msg)
    assert isinstance(verdict.message, KpiMessage)
    assert [k.name for k in verdict.message.kpis] == ["now"]
    assert verdict.skewed == 1 and verdict.refused[0].startswith("1 KPI(s) refused: ts 1970-01-02")


def test_a_year_and_a_12mo_value_published_now_pass_though_their_windows_began_long_ago() -> None:
    """Issue 18: the 90-day limit was applied to window_start, so every 12mo value and every year value from April
    on was quarantined. Published at NOW (2026-01-01), a 12mo window starting 2025-01-01 (365 days back) and a year
    window starting 2025-01-01 are current values: both kept. A window starting 14 months back (beyond the 13-month
    bound) or after the clock is refused with its name."""
    year = KpiValue("energy_kgce", "line1", 1.0, "kgce", "year", NOW - 365 * 86400, NOW, 1.0, Quality.GOOD, NOW)
    twelve = KpiValue("energy_kgce", "line1", 1.0, "kgce", "12mo", NOW - 365 * 86400, NOW, 1.0, Quality.GOOD, NOW)
    odd = KpiValue("energy_kgce", "line1", 1.0, "kgce", "month", NOW - 425 * 86400, NOW, 1.0, Quality.GOOD, NOW)
    msg = decode(encode_kpis(site="s1", gateway="gw1", boot="b", seq=1, ts=NOW, kpis=[year, twelve, odd]))
    assert isinstance(msg, KpiMessage)
    verdict = admission().check(msg)  # the default max_past_s: 90 days
    assert isinstance(verdict.message, KpiMessage)
    assert [k.window for k in verdict.message.kpis] == ["year", "12mo"]
    assert verdict.refused == (
        "1 KPI(s) refused (line1/energy_kgce/month): window_start after the centre's clock or more than 13 months "
        "before the KPI's ts",
    )


def test_status_with_a_skewed_ts_is_refused_but_a_bare_last_will_passes() -> None:
    gate = admission(max_future_s=60)
    ahead = StatusMessage(site="s1", gateway="gw1", state="online", ts=NOW + 3600)
    assert gate.check(ahead).message is None and gate.check(ahead).skewed == 1
    will = StatusMessage(site="s1", gateway="gw1", state="offline")  # ts 0: stamped on arrival
    assert gate.check(will).message is will


def test_too_many_items_refuse_the_whole_message() -> None:
    msg = samples([(f"p{i}", NOW) for i in range(11)])
    verdict = admission(max_items_per_message=10).check(msg)
    assert verdict.message is None and verdict.over_limit == 11
    assert verdict.refused == ("11 samples, more than limits.max_items_per_message (10)",)


def test_series_quota_per_gateway_refuses_only_new_series_and_not_other_gateways() -> None:
    gate = admission(max_series_per_gateway=3)
    assert gate.check(samples([("a", NOW), ("b", NOW)])).refused == ()
    verdict = gate.check(samples([("a", NOW), ("c", NOW), ("d", NOW), ("e", NOW)]))
    assert isinstance(verdict.message, SamplesMessage)
    assert [s.point for s in verdict.message.samples] == ["a", "c"]
    assert verdict.over_limit == 2
    assert verdict.refused == (
        "2 sample(s) of new series refused (d, e): the gateway already has limits.max_series_per_gateway (3) series",
    )
    # the known series keep flowing; a new unit is a new series (a new tag set in InfluxDB)
    assert gate.check(samples([("a", NOW), ("b", NOW), ("c", NOW)])).refused == ()
    assert gate.check(samples([("a", NOW)], unit="W")).over_limit == 1
    assert gate.series_count("s1", "gw1") == 3
    # another gateway has its own quota
    assert gate.check(samples([("x", NOW), ("y", NOW), ("z", NOW)], gateway="gw2")).refused == ()


def test_kpi_series_and_health_devices_count_against_the_same_quota() -> None:
    gate = admission(max_series_per_gateway=2)
    assert gate.check(kpis([("k1", NOW)])).refused == ()
    health = {"devices": {"m1": {"state": "ok"}, "m2": {"state": "ok"}}}
    status = StatusMessage(site="s1", gateway="gw1", state="online", ts=NOW, health=health)
    verdict = gate.check(status)
    assert verdict.message is None and verdict.over_limit == 1
    assert verdict.refused[0].startswith("1 device health(s) of new series refused (m2)")


def test_the_series_quota_survives_a_restart_through_its_file(tmp_path: Path) -> None:
    """The field report: the quota was relearnt after each restart, so one gateway grew to 100,000 series in five
    restarts. A new Admission reading the same file refuses new series at once and still admits the known ones."""
    path = tmp_path / "series-quota.txt"
    first = Admission(LimitsConfig(max_series_per_gateway=3), Clock(NOW), SeriesFile(path))
    assert first.check(samples([("a", NOW), ("b", NOW), ("c", NOW)])).refused == ()
    first.save()
    with path.open("a") as f:
        f.write("s1 gw1 0123")  # a torn last line (power cut while appending) is skipped
    again = Admission(LimitsConfig(max_series_per_gateway=3), Clock(NOW), SeriesFile(path))
    assert again.series_count("s1", "gw1") == 3
    verdict = again.check(samples([("a", NOW), ("d", NOW)]))
    assert isinstance(verdict.message, SamplesMessage)
    assert [s.point for s in verdict.message.samples] == ["a"]
    assert verdict.over_limit == 1
    other = again.check(samples([("d", NOW)], gateway="gw2"))  # another gateway's quota is its own
    assert other.refused == ()
    again.save()
    third = Admission(LimitsConfig(max_series_per_gateway=3), Clock(NOW), SeriesFile(path))
    assert (third.series_count("s1", "gw1"), third.series_count("s1", "gw2")) == (3, 1)
