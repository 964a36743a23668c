"""Gap detection: reorder window, once-only reports, boots, late arrivals, and sharing between group members."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from agent.center.gaps import Gap, GapTracker


def feed(t: GapTracker, seqs: list[int], now: float, boot: str = "b1", local: bool = True) -> None:
    for seq in seqs:
        t.observe("s", "gw1", boot, seq, 1000.0 + seq, now, local=local)


def test_in_order_stream_has_no_gap() -> None:
    t = GapTracker(reorder_timeout_s=5)
    feed(t, list(range(100)), now=0)
    assert t.due(now=1000) == []


def test_reordered_messages_inside_the_window_are_not_a_gap() -> None:
    t = GapTracker(reorder_timeout_s=5)
    feed(t, [0, 1, 3, 4], now=0)
    assert t.due(now=4.9) == []
    feed(t, [2], now=4.9)
    assert t.due(now=100) == []


def test_a_hole_older_than_the_timeout_is_reported_once_with_the_next_message_time() -> None:
    t = GapTracker(reorder_timeout_s=5)
    feed(t, [0, 1, 2, 6, 7], now=10)
    assert t.due(now=14.9) == []
    assert t.due(now=15) == [Gap("s", "gw1", "b1", 3, 5, 1006.0)]
    assert t.due(now=100) == []
    assert t.stats.reported == 1 and t.stats.missing == 3


def test_late_arrival_of_a_reported_seq_is_counted_not_reported_again() -> None:
    t = GapTracker(reorder_timeout_s=1)
    feed(t, [0, 2], now=0)
    assert len(t.due(now=1)) == 1
    feed(t, [1], now=2)
    assert t.due(now=10) == []
    assert t.stats.late == 1


def test_two_holes_are_two_gaps_each_timed_from_the_message_after_it() -> None:
    t = GapTracker(reorder_timeout_s=5)
    feed(t, [0, 2], now=0)
    feed(t, [4], now=3)
    gaps = t.due(now=5)
    assert [(g.first_seq, g.last_seq) for g in gaps] == [(1, 1)]
    assert t.due(now=7.9) == []
    assert [(g.first_seq, g.last_seq) for g in t.due(now=8)] == [(3, 3)]


def test_a_new_boot_is_a_new_stream_starting_where_it_is_first_seen() -> None:
    t = GapTracker(reorder_timeout_s=1)
    feed(t, [0, 1, 2], now=0, boot="b1")
    feed(t, [40, 41], now=0, boot="b2")  # the ingestor saw this boot late: not a gap
    feed(t, [3], now=0, boot="b1")
    assert t.due(now=10) == []
    assert t.streams() == 2


def test_idle_streams_are_forgotten() -> None:
    t = GapTracker(reorder_timeout_s=1, idle_expiry_s=60)
    feed(t, [0, 1], now=0)
    t.due(now=61)
    assert t.streams() == 0


def test_the_member_that_got_the_next_message_reports_and_others_stay_quiet() -> None:
    a, b = GapTracker(reorder_timeout_s=5), GapTracker(reorder_timeout_s=5)
    # a receives even seqs, b odd ones; they share what they saw; seq 6 is lost; 7 went to b
    for seq in [0, 1, 2, 3, 4, 5, 7, 8]:
        mine, other = (a, b) if seq % 2 == 0 else (b, a)
        mine.observe("s", "gw1", "b1", seq, float(seq), 0, local=True)
        other.observe("s", "gw1", "b1", seq, float(seq), 0, local=False)
    assert a.due(now=5) == []
    assert b.due(now=5) == [Gap("s", "gw1", "b1", 6, 6, 7.0)]
    for site, gw, boot, low in b.watermarks():
        a.advance_to(site, gw, boot, low, now=5.5)
    assert a.due(now=20) == []


def test_a_silent_owner_is_taken_over_after_twice_the_timeout() -> None:
    a = GapTracker(reorder_timeout_s=5)
    feed(a, [0, 1], now=0)
    feed(a, [3], now=0, local=False)  # the member that got 3 died before reporting the hole at 2
    assert a.due(now=9.9) == []
    assert [(g.first_seq, g.last_seq) for g in a.due(now=10)] == [(2, 2)]


def test_a_late_joiner_adopts_the_group_watermark_instead_of_reporting_history() -> None:
    t = GapTracker(reorder_timeout_s=1)
    feed(t, [100], now=0)  # a redelivered old message
    feed(t, [153], now=0)  # then a fresh one; 101..152 went to peers before we joined
    t.advance_to("s", "gw1", "b1", 153, now=0.5)
    assert t.due(now=10) == []


@settings(max_examples=200)
@given(
    n=st.integers(1, 60),
    lost=st.sets(st.integers(1, 58)),
    swaps=st.lists(st.tuples(st.integers(0, 59), st.integers(0, 59)), max_size=10),
)
def test_every_lost_seq_is_reported_exactly_once_and_nothing_else(
    n: int, lost: set[int], swaps: list[tuple[int, int]]
) -> None:
    """Seq 0 and the last one arrive (a gap is only visible once a later seq arrived); any reordering."""
    order = [s for s in range(n + 1) if s not in lost or s == n]
    for i, j in swaps:  # reorder within the stream, keeping the first message first
        if 0 < i < len(order) and 0 < j < len(order):
            order[i], order[j] = order[j], order[i]
    t = GapTracker(reorder_timeout_s=5)
    feed(t, order, now=0)
    reported: list[int] = []
    for g in t.due(now=1000):
        reported.extend(range(g.first_seq, g.last_seq + 1))
    assert sorted(reported) == sorted(s for s in lost if s < n)


def test_shared_runs_carry_the_ts_of_their_first_seq() -> None:
    """What a member shares: runs of seqs, each with the wire ts of its first seq (the one a gap point is timed by)."""
    from agent.center.ingestor import _ranges  # the share format lives with the ingestor

    assert _ranges({7: 107.0, 3: 103.0, 4: 104.0, 5: 105.0, 9: 109.0}) == [[3, 5, 103.0], [7, 7, 107.0], [9, 9, 109.0]]
    assert _ranges({}) == []
