"""Gap detection per (site, gateway, boot) from the wire's ``seq``: pure, synchronous, clock passed in.

Every samples/kpi message of one boot carries a seq that grows by one. The tracker keeps, per stream, ``low``
(every seq below it was seen or already reported missing) and the seqs seen above it. A hole at ``low`` that is
still open ``reorder_timeout_s`` after it was first noticed is reported once as a :class:`Gap` and skipped; a
late message for a reported hole is counted (``late``), not reported again. A new boot id starts a new stream.
The first seq seen of a stream is its start: an ingestor that starts late does not report the history it never
saw as missing.

Several ingestors in one shared-subscription group each receive a share of the messages, so they tell each other
what they saw (:meth:`GapTracker.observe` with ``local=False``); a gap is reported by the one member that received
the message right after it, so the report is made once and not by every member.
"""

from __future__ import annotations

from dataclasses import dataclass, field

StreamKey = tuple[str, str, str]  # site, gateway, boot


@dataclass(frozen=True, slots=True)
class Gap:
    site: str
    gateway: str
    boot: str
    first_seq: int
    last_seq: int
    ts: float  # wire ts of the message right after the gap (used as the gap point's time)

    @property
    def missing(self) -> int:
        return self.last_seq - self.first_seq + 1


@dataclass(slots=True)
class _Seen:
    ts: float
    local: bool


@dataclass(slots=True)
class _Stream:
    low: int
    last_active: float
    above: dict[int, _Seen] = field(default_factory=dict)
    hole_since: float | None = None


@dataclass(slots=True)
class GapStats:
    reported: int = 0
    missing: int = 0
    late: int = 0


class GapTracker:
    """Not thread-safe: one owner calls observe() and due()."""

    def __init__(self, reorder_timeout_s: float = 5.0, idle_expiry_s: float = 3600.0) -> None:
        self.reorder_timeout_s = reorder_timeout_s
        self.idle_expiry_s = idle_expiry_s
        self._streams: dict[StreamKey, _Stream] = {}
        self._late_holes: dict[StreamKey, list[tuple[int, int]]] = {}
        self.stats = GapStats()

    def observe(self, site: str, gateway: str, boot: str, seq: int, ts: float, now: float, local: bool = True) -> None:
        key = (site, gateway, boot)
        stream = self._streams.get(key)
        if stream is None:
            self._streams[key] = _Stream(low=seq + 1, last_active=now)
            return
        stream.last_active = now
        if seq < stream.low:
            if self._was_reported(key, seq):
                self.stats.late += 1
            return
        if seq in stream.above:
            if local:
                stream.above[seq].local = True
            return
        stream.above[seq] = _Seen(ts, local)
        self._advance(stream, now)

    def due(self, now: float) -> list[Gap]:
        """Holes older than the reorder timeout, reported (and forgotten) once; returns those this member owns."""
        owned: list[Gap] = []
        for key, stream in list(self._streams.items()):
            while stream.hole_since is not None and now - stream.hole_since >= self.reorder_timeout_s:
                nxt = min(stream.above)
                gap = Gap(key[0], key[1], key[2], stream.low, nxt - 1, stream.above[nxt].ts)
                self._late_holes.setdefault(key, []).append((gap.first_seq, gap.last_seq))
                del self._late_holes[key][:-16]
                if stream.above[nxt].local:
                    owned.append(gap)
                    self.stats.reported += 1
                    self.stats.missing += gap.missing
                stream.low = nxt
                stream.hole_since = None
                self._advance(stream, now)
            if not stream.above and now - stream.last_active > self.idle_expiry_s:
                del self._streams[key]
                self._late_holes.pop(key, None)
        return owned

    def streams(self) -> int:
        return len(self._streams)

    def _advance(self, stream: _Stream, now: float) -> None:
        before = stream.low
        while stream.low in stream.above:
            del stream.above[stream.low]
            stream.low += 1
        if not stream.above:
            stream.hole_since = None
        elif stream.hole_since is None or stream.low != before:
            stream.hole_since = now

    def _was_reported(self, key: StreamKey, seq: int) -> bool:
        return any(lo <= seq <= hi for lo, hi in self._late_holes.get(key, ()))
