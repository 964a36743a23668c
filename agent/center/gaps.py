"""Gap detection per (site, gateway, boot) from the wire's ``seq``: pure, synchronous, clock passed in.

Every samples/kpi message of one boot carries a seq that grows by one. The tracker keeps, per stream, ``low``
(every seq below it was seen or already reported missing) and the seqs seen above it. A hole that is still open
``reorder_timeout_s`` after the message right after it arrived is reported once as a :class:`Gap` and skipped; a
late message for a reported hole is counted (``late``), not reported again. A new boot id starts a new stream.
The first seq seen of a stream is its start: an ingestor that starts late does not report the history it never
saw as missing.

Several ingestors in one shared-subscription group each receive a share of the messages, so they tell each other
what they saw (:meth:`GapTracker.observe` with ``local=False``); a gap is reported by the one member that received
the message right after it, so the report is made once and not by every member. The others wait twice the
timeout for the owner's watermark to move past the hole and take over the report only if it did not (the owner
died). Shares must come more often than the reorder timeout. Members also share each stream's
``low``: everything below a peer's low is accounted for (seen by someone, or reported), so a member that joins or
restarts late adopts it instead of reporting the history it missed as a gap.
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
    ts: float  # the message's wire ts
    at: float  # when we learnt of it (tracker clock)
    local: bool


@dataclass(slots=True)
class _Stream:
    low: int
    last_active: float
    above: dict[int, _Seen] = field(default_factory=dict)


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
        stream.above[seq] = _Seen(ts, now, local)
        self._advance(stream)

    def advance_to(self, site: str, gateway: str, boot: str, low: int, now: float) -> None:
        """A peer accounted for every seq below ``low`` of this stream."""
        key = (site, gateway, boot)
        stream = self._streams.get(key)
        if stream is None:
            self._streams[key] = _Stream(low=low, last_active=now)
            return
        if low <= stream.low:
            return
        for seq in [s for s in stream.above if s < low]:
            del stream.above[seq]
        stream.low = low
        self._advance(stream)

    def watermarks(self) -> list[tuple[str, str, str, int]]:
        """(site, gateway, boot, low) of every stream, for peers."""
        return [(*key, stream.low) for key, stream in self._streams.items()]

    def due(self, now: float) -> list[Gap]:
        """Holes older than the reorder timeout that this member reports (each once), skipped afterwards."""
        owned: list[Gap] = []
        for key, stream in list(self._streams.items()):
            while stream.above:
                nxt = min(stream.above)
                seen = stream.above[nxt]
                age = now - seen.at
                if age < self.reorder_timeout_s or (not seen.local and age < 2 * self.reorder_timeout_s):
                    break  # still in the reorder window; or the owner reports it (taken over after 2x)
                gap = Gap(key[0], key[1], key[2], stream.low, nxt - 1, seen.ts)
                self._late_holes.setdefault(key, []).append((gap.first_seq, gap.last_seq))
                del self._late_holes[key][:-16]
                owned.append(gap)
                self.stats.reported += 1
                self.stats.missing += gap.missing
                stream.low = nxt
                self._advance(stream)
            if not stream.above and now - stream.last_active > self.idle_expiry_s:
                del self._streams[key]
                self._late_holes.pop(key, None)
        return owned

    def streams(self) -> int:
        return len(self._streams)

    def _advance(self, stream: _Stream) -> None:
        while stream.low in stream.above:
            del stream.above[stream.low]
            stream.low += 1

    def _was_reported(self, key: StreamKey, seq: int) -> bool:
        return any(lo <= seq <= hi for lo, hi in self._late_holes.get(key, ()))
