"""``energy-agent spool stats SITE.yaml [--json]``: depth, bytes, oldest message's age and drop counts of the spool.

Reads the spool file named by the site file (``spool.path`` or ``<state_dir>/spool.sqlite``) while the agent runs
or not: SQLite's WAL lets a reader look without stopping the writer. Exit 0, 78 on a bad site file, 1 when the
spool cannot be read.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import time
from pathlib import Path

from agent.config.load import load_site, state_dir
from agent.config.refuse import refuse
from agent.errors import ConfigError
from agent.spool.base import KINDS, SpoolStats

NAME = "spool"
HELP = "inspect the durable spool: `spool stats SITE.yaml` shows depth, bytes, oldest age and drops"


def register(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="spool_command", required=True, metavar="ACTION")
    stats = sub.add_parser("stats", help="depth, bytes, oldest message's age and drop counts")
    stats.add_argument("site", type=Path, help="the gateway's site file")
    stats.add_argument("--json", action="store_true", help="print one JSON object instead of a table")


def run(args: argparse.Namespace) -> int:
    try:
        loaded = load_site(args.site)
    except ConfigError as exc:
        return refuse(exc, f"{args.site}: the site file is invalid:")
    path = loaded.site.spool.resolve_path(state_dir(loaded))  # the same file the running agent uses
    try:
        stats = read_stats(path, loaded.site.spool.max_bytes, time.time())
    except (OSError, sqlite3.Error) as exc:
        print(f"spool {path}: cannot be read: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(stats.as_dict(), indent=2))
    else:
        print(render(stats))
    return 0


def read_stats(path: Path, max_bytes: int, now: float) -> SpoolStats:
    """Figures of the spool at ``path``, read-only (a spool that does not exist yet is empty)."""
    if not path.exists():
        return SpoolStats(str(path), 0, 0, max_bytes, None, None, dict.fromkeys(KINDS, 0))
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5.0)
    try:
        depth: dict[str, int] = dict.fromkeys(KINDS, 0)
        total = 0
        for kind, count, size in db.execute("SELECT kind, count(*), sum(size) FROM records GROUP BY kind"):
            depth[kind] = count
            total += size or 0
        oldest = db.execute("SELECT min(ts) FROM records").fetchone()[0]
        counters = dict(db.execute("SELECT name, value FROM counters").fetchall())
        replaced = db.execute("SELECT value FROM meta WHERE key = 'replaced'").fetchone()
    finally:
        db.close()
    return SpoolStats(
        path=str(path),
        depth=sum(depth.values()),
        bytes=total,
        max_bytes=max_bytes,
        oldest_ts=oldest,
        oldest_age_s=None if oldest is None else max(0.0, now - oldest),
        depth_by_kind=depth,
        dropped_full={k: counters.get(f"dropped_full_{k}", 0) for k in KINDS},
        dropped_expired={k: counters.get(f"dropped_expired_{k}", 0) for k in KINDS},
        dropped_unwritable={k: counters.get(f"dropped_unwritable_{k}", 0) for k in KINDS},
        set_aside={k: counters.get(f"dropped_set_aside_{k}", 0) for k in KINDS},
        corrupt_replaced=counters.get("corrupt_replaced", 0),
        replaced_file=replaced[0] if replaced else "",
    )


def render(stats: SpoolStats) -> str:
    age = "-" if stats.oldest_age_s is None else f"{stats.oldest_age_s:.1f} s"
    used = 100.0 * stats.bytes / stats.max_bytes if stats.max_bytes else 0.0
    lines = [
        f"spool        {stats.path}",
        f"depth        {stats.depth} messages" + "".join(f", {stats.depth_by_kind.get(k, 0)} {k}" for k in KINDS),
        f"bytes        {stats.bytes} of {stats.max_bytes} ({used:.1f} %)",
        f"oldest age   {age}",
        "dropped      " + ", ".join(f"{stats.dropped_full.get(k, 0)} {k}" for k in KINDS) + " (spool full)",
        "expired      "
        + ", ".join(f"{stats.dropped_expired.get(k, 0)} {k}" for k in KINDS)
        + " (older than max_age_s)",
        "unstored     "
        + ", ".join(f"{stats.dropped_unwritable.get(k, 0)} {k}" for k in KINDS)
        + " (the disk refused them)",
    ]
    if any(stats.set_aside.values()):
        lines.append(
            "set aside    "
            + ", ".join(f"{stats.set_aside.get(k, 0)} {k}" for k in KINDS)
            + " (too big for the broker; kept in the set_aside table)"
        )
    if stats.replaced_file:
        lines.append(f"replaced     a corrupt spool at start, kept as {stats.replaced_file}")
    return "\n".join(lines)
