"""The agent need not replay provisional values of windows it has since finalised (issue 18): the KPI records of a
broker outage go through agent.runtime.supersede on their way from the real spool to the sink's flow control."""

from __future__ import annotations

from pathlib import Path

import orjson

from agent.config.spool import SpoolConfig
from agent.model import KpiValue, Quality
from agent.runtime.supersede import FinalisedWindows, SupersedingReader
from agent.sinks.forward import Forwarder, OutgoingRecord
from agent.spool.sqlite import SqliteSpool
from agent.wire import encode_kpis

W = 1_767_225_600.0  # 08:00 Asia/Shanghai: the 1h window 08:00-09:00
DAY = W - 8 * 3600.0


def kpi(name: str, window: str, start: float, value: float, final: bool) -> KpiValue:
    end = start + (3600.0 if window == "1h" else 86400.0)
    return KpiValue(
        name, "l1", value, "kgce", window, start, end, 1.0, Quality.GOOD, end if final else W + 1800, final=final
    )


class Paho:
    """Stands in for paho's publish(): what was handed over, in order, decoded."""

    def __init__(self) -> None:
        self.sent: list[tuple[int, list[tuple[str, str, float, bool]]]] = []

    def publish(self, record: OutgoingRecord) -> int:
        msg = orjson.loads(record.payload)
        self.sent.append((record.id, [(k["name"], k["window"], k["value"], k["final"]) for k in msg["kpis"]]))
        return len(self.sent)


def test_a_provisional_value_of_a_window_finalised_since_is_not_replayed_after_the_final(tmp_path: Path) -> None:
    """During an outage the spool keeps three KPI messages of the 08:00 hour: #1 energy_kgce 1h provisional 6.68 and
    the day's provisional 6.68, #2 the 1h provisional 12.0 alone, #3 the 1h provisional 18.0 and the day's 18.0. The
    hour closes: #4 carries energy_kgce 1h final 21.06. Live-first replay sends #4 first, then the backlog: #1 and
    #3 without their 1h value (the day is still open: kept), #2 not at all (deleted from the spool). Counted: 3
    provisional values left out, 1 message deleted. The old agent sent the 1h's 6.68, 12.0 and 18.0 after 21.06."""
    spool = SqliteSpool.open(tmp_path / "s.sqlite", SpoolConfig(), clock=lambda: W + 100)
    finals = FinalisedWindows()
    reader = SupersedingReader(spool, finals, clock=lambda: 0.0)
    paho = Paho()
    now = [0.0]
    fw = Forwarder(
        reader, paho.publish, max_inflight=100, replay_rate_msgs_s=100, backlog_first=False, monotonic=lambda: now[0]
    )

    def spool_kpis(seq: int, values: list[KpiValue]) -> int:
        finals.record(values)  # as agent.runtime.agent.Agent._spool_kpis does before spooling
        payload = encode_kpis(site="s", gateway="g", boot="b", seq=seq, ts=W + seq, kpis=values)
        rid = spool.append("energy/s/g/kpi", payload, "kpi", seq, W + seq)
        assert rid is not None
        return rid

    backlog = [
        spool_kpis(1, [kpi("energy_kgce", "1h", W, 6.68, False), kpi("energy_kgce", "day", DAY, 6.68, False)]),
        spool_kpis(2, [kpi("energy_kgce", "1h", W, 12.0, False)]),
        spool_kpis(3, [kpi("energy_kgce", "1h", W, 18.0, False), kpi("energy_kgce", "day", DAY, 18.0, False)]),
    ]
    fw.session_up()
    final = spool_kpis(4, [kpi("energy_kgce", "1h", W, 21.06, True)])
    for tick in range(1, 20):  # live first at once, the backlog at the replay rate
        fw.forward()
        now[0] = tick * 0.05
    assert paho.sent == [
        (final, [("energy_kgce", "1h", 21.06, True)]),
        (backlog[0], [("energy_kgce", "day", 6.68, False)]),
        (backlog[2], [("energy_kgce", "day", 18.0, False)]),
    ]
    assert not fw.replaying
    assert reader.stats() == {"kpi_provisional_superseded": 3, "kpi_records_superseded": 1}
    assert [r.id for r in spool.read(0, 10)] == [backlog[0], backlog[2], final], "#2 is gone, the others wait acks"


def test_without_a_final_nothing_is_left_out(tmp_path: Path) -> None:
    """A provisional value whose window has no final value yet (or a final of another window start, KPI or window
    kind) is sent as it was spooled: the same bytes."""
    spool = SqliteSpool.open(tmp_path / "s.sqlite", SpoolConfig(), clock=lambda: W + 100)
    finals = FinalisedWindows()
    finals.record([kpi("energy_kgce", "1h", W - 3600, 20.0, True), kpi("co2_t", "1h", W, 1.0, True)])
    finals.record([kpi("energy_kgce", "day", DAY, 500.0, False)])  # provisional values are not finals
    values = [kpi("energy_kgce", "1h", W, 6.68, False), kpi("energy_kgce", "day", DAY, 6.68, False)]
    payload = encode_kpis(site="s", gateway="g", boot="b", seq=1, ts=W, kpis=values)
    spool.append("energy/s/g/kpi", payload, "kpi", 1, W)
    spool.append("energy/s/g/samples/m", b"{}", "samples", 2, W)
    reader = SupersedingReader(spool, finals)
    assert [r.payload for r in reader.read(0, 10)] == [payload, b"{}"]
    assert reader.stats() == {"kpi_provisional_superseded": 0, "kpi_records_superseded": 0}
