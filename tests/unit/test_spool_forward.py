"""The sink's flow control over a real spool, without a broker: which record goes out next, how fast the backlog is
replayed, and that a record paho still holds is never handed over twice."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.config.spool import SpoolConfig
from agent.sinks.forward import Forwarder, OutgoingRecord
from agent.spool.sqlite import SqliteSpool


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Paho:
    """Stands in for paho's publish(): records what was handed over and gives message ids."""

    def __init__(self) -> None:
        self.sent: list[int] = []
        self.mids: dict[int, int] = {}  # record id -> mid

    def publish(self, record: OutgoingRecord) -> int | None:
        if "bad" in record.topic:
            return None
        self.sent.append(record.id)
        self.mids[record.id] = len(self.sent)
        return len(self.sent)


@pytest.fixture
def spool(tmp_path: Path) -> SqliteSpool:
    return SqliteSpool.open(tmp_path / "s.sqlite", SpoolConfig())


def append(spool: SqliteSpool, n: int) -> list[int]:
    ids = [spool.append(f"t/{i}", b"x", "samples") for i in range(n)]
    return [i for i in ids if i is not None]


def test_live_first_sends_new_records_before_the_backlog(spool: SqliteSpool) -> None:
    backlog = append(spool, 50)
    paho, clock = Paho(), Clock()
    fw = Forwarder(spool, paho.publish, max_inflight=100, replay_rate_msgs_s=100, backlog_first=False, monotonic=clock)
    fw.session_up()
    live = append(spool, 5)
    fw.forward()
    assert paho.sent[:5] == live
    assert paho.sent[5:] == backlog[: len(paho.sent) - 5], "the backlog follows, oldest first"
    assert len(paho.sent) - 5 <= 10, "the backlog is rate limited (burst of 0.1 s)"
    assert fw.replaying


def test_backlog_first_keeps_strict_spool_order(spool: SqliteSpool) -> None:
    backlog = append(spool, 30)
    paho, clock = Paho(), Clock()
    fw = Forwarder(spool, paho.publish, max_inflight=100, replay_rate_msgs_s=100, backlog_first=True, monotonic=clock)
    fw.session_up()
    live = append(spool, 5)
    while len(paho.sent) < 35:
        fw.forward()
        clock.now += 0.05
    assert paho.sent == backlog + live


def test_replay_rate_is_held_over_simulated_time(spool: SqliteSpool) -> None:
    append(spool, 1000)
    paho, clock = Paho(), Clock()
    fw = Forwarder(spool, paho.publish, max_inflight=1000, replay_rate_msgs_s=200, backlog_first=False, monotonic=clock)
    fw.session_up()
    for _ in range(200):  # two seconds in 10 ms steps
        fw.forward()
        clock.now += 0.01
    assert 400 <= len(paho.sent) <= 400 + 20  # rate x time, plus one burst
    assert fw.idle_wait(1.0) <= 1 / 200


def test_window_bounds_what_is_handed_over_and_acks_free_it(spool: SqliteSpool) -> None:
    append(spool, 10)
    paho = Paho()
    fw = Forwarder(spool, paho.publish, max_inflight=4, replay_rate_msgs_s=1e9, backlog_first=False)
    fw.session_up()
    fw.forward()
    assert fw.inflight == 4 and fw.forward() == 0
    acked = fw.acked(paho.mids[paho.sent[0]])
    assert acked is not None and acked.record_id == paho.sent[0]
    assert fw.acked(999) is None, "an id that is not ours (a status message) is ignored"
    fw.flush_acks()
    assert spool.stats().depth == 9
    assert fw.forward() == 1


def test_records_paho_still_holds_are_not_handed_over_again_after_a_reconnect(spool: SqliteSpool) -> None:
    paho = Paho()
    fw = Forwarder(spool, paho.publish, max_inflight=10, replay_rate_msgs_s=1e9, backlog_first=False)
    fw.session_up()
    first = append(spool, 3)
    fw.forward()  # live: 1, 2, 3 handed to paho, no PUBACK yet
    assert paho.sent == first
    later = append(spool, 3)  # the link dropped; these wait in the spool
    fw.session_up()  # back: 1..6 are backlog now, but paho resends 1, 2, 3 itself
    fw.forward()
    assert paho.sent == first + later, "a record paho holds was handed over twice"
    for rid in paho.sent:
        fw.acked(paho.mids[rid])
    assert (fw.drained() and not fw.replaying) or fw.forward() == 0


def test_a_record_that_can_never_be_published_is_dropped(spool: SqliteSpool) -> None:
    spool.append("bad/+", b"x", "samples")
    good = spool.append("ok", b"x", "samples")
    paho = Paho()
    fw = Forwarder(spool, paho.publish, max_inflight=10, replay_rate_msgs_s=1e9, backlog_first=False)
    fw.forward()
    assert paho.sent == [good]
    fw.flush_acks()
    assert [r.id for r in spool.read(0, 10)] == [good]


def test_the_brokers_receive_maximum_caps_the_window(spool: SqliteSpool) -> None:
    append(spool, 50)
    paho = Paho()
    fw = Forwarder(spool, paho.publish, max_inflight=40, replay_rate_msgs_s=1e9, backlog_first=False)
    fw.session_up(receive_maximum=10)
    fw.forward()
    assert fw.inflight == 10
    fw.session_up(receive_maximum=None)
    fw.forward()
    assert fw.inflight == 40


def test_an_offered_record_goes_out_at_once_only_when_next_in_line_and_the_window_has_room(spool: SqliteSpool) -> None:
    from agent.sinks.forward import LiveRecord

    paho = Paho()
    fw = Forwarder(spool, paho.publish, max_inflight=2, replay_rate_msgs_s=100, backlog_first=False)
    fw.session_up()
    first, second, third = append(spool, 3)
    assert not fw.offer(LiveRecord(second, "t/1", b"x")), "a record ahead of it is not out yet"
    assert fw.offer(LiveRecord(first, "t/0", b"x")) and fw.offer(LiveRecord(second, "t/1", b"x"))
    assert not fw.offer(LiveRecord(third, "t/2", b"x")), "the window is full"
    assert paho.sent == [first, second]
    fw.acked(paho.mids[first])
    fw.forward()  # the declined record is read back from the spool, in order, never twice
    assert paho.sent == [first, second, third]


def test_nothing_is_offered_past_a_backlog_that_must_go_first(spool: SqliteSpool) -> None:
    from agent.sinks.forward import LiveRecord

    append(spool, 3)
    paho = Paho()
    fw = Forwarder(spool, paho.publish, max_inflight=100, replay_rate_msgs_s=100, backlog_first=True)
    fw.session_up()
    (live,) = append(spool, 1)
    assert not fw.offer(LiveRecord(live, "t/0", b"x"))
    assert paho.sent == []
