"""The spool's three kinds of episode, each logged when it starts and when it ends, with what it cost:
full (``max_bytes`` reached), expiry (``max_age_s`` passed), and a filesystem that refuses writes. No I/O here
besides logging; SqliteSpool decides, these keep the tallies and say it once."""

from __future__ import annotations

import logging
from pathlib import Path

log = logging.getLogger("agent.spool.sqlite")

Gone = list[tuple[int, str, int]]  # (id, kind, size) of deleted records


class DiskEpisode:
    """From the first refused write to the first append that grows the spool again."""

    def __init__(self, path: Path, reason: str, cap: int | None, now: float, stored: int, released_mib: int) -> None:
        self.reason = reason
        self.cap = cap  # the spool keeps its bytes at or below this; None: try to grow (space seemed back)
        self.blocked_at: float | None = None  # when every way to store an append failed last
        self.last_probe = now
        self.dropped: dict[str, int] = {}
        self.unstored: dict[str, int] = {}
        log.error(
            "spool %s: the filesystem refuses writes (%s) at %d bytes stored%s; keeping to that space by dropping "
            "the oldest status, then samples, then KPI messages (counted) until there is room again",
            path,
            reason,
            stored,
            f"; gave back the {released_mib} MiB reserve" if released_mib else "",
        )

    def end(self, path: Path) -> None:
        unstored = f"; could not store {counts(self.unstored)}" if self.unstored else ""
        log.warning(
            "spool %s: the filesystem takes writes again; in that episode dropped %s to make room%s",
            path,
            counts(self.dropped) or "nothing",
            unstored,
        )


class BoundEpisodes:
    """Drops for ``max_bytes`` and for ``max_age_s``."""

    def __init__(self, path: Path, max_bytes: int, max_age_s: float) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.max_age_s = max_age_s
        self.full: dict[str, int] | None = None
        self.expire: dict[str, int] | None = None

    def note_full(self, dropped: Gone, stored: int) -> None:
        if dropped:
            if self.full is None:
                self.full = {}
                log.warning(
                    "spool %s: full at %d bytes; dropping the oldest status, then samples, then KPI messages",
                    self.path,
                    self.max_bytes,
                )
            for _, kind, _ in dropped:
                self.full[kind] = self.full.get(kind, 0) + 1
        elif self.full is not None and stored <= 0.9 * self.max_bytes:
            log.warning("spool %s: no longer full; dropped %s in this episode", self.path, counts(self.full))
            self.full = None

    def note_expired(self, gone: Gone) -> None:
        if gone:
            if self.expire is None:
                self.expire = {}
                log.warning("spool %s: dropping messages older than %g s", self.path, self.max_age_s)
            for _, kind, _ in gone:
                self.expire[kind] = self.expire.get(kind, 0) + 1
        elif self.expire is not None:
            log.warning("spool %s: expiry stopped; dropped %s as too old", self.path, counts(self.expire))
            self.expire = None


def counts(per_kind: dict[str, int]) -> str:
    return ", ".join(f"{n} {kind}" for kind, n in sorted(per_kind.items()))
