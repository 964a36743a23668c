"""The KPI engine's snapshot on disk: ``<state_dir>/kpi-state.json`` (format and semantics: agent.kpi.state).

Written at every KPI publish (the encoding on the event loop, the write and fsyncs on a helper thread) and at a
clean stop, atomically: a temporary file in the same directory, fsync, rename over the old file, fsync of the
directory. A crash leaves the previous snapshot or the new one, never a torn file. A snapshot that cannot be read
(corrupt, another format or version) is moved aside as ``kpi-state.json.unusable-<unix time>`` with one log line,
and the engine starts afresh. A failing write is logged once, and its recovery once.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from pathlib import Path

from agent.kpi.engine import KpiEngine
from agent.kpi.state import StateError, decode, encode

log = logging.getLogger("agent.runtime")

STATE_FILE = "kpi-state.json"


class KpiStateFile:
    """One snapshot file. ``save`` may run on a helper thread (one at a time: a lock orders them)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._failing = False
        self._lock = threading.Lock()
        self._taken = 0  # snapshots taken; a save never replaces a newer one with an older one
        self._written = 0

    def load_into(self, engine: KpiEngine, now: float) -> bool:
        """Restore the snapshot into ``engine`` (freshly built). False when the snapshot was unusable and moved
        aside: the engine may hold part of it, build a fresh one."""
        try:
            payload = self.path.read_bytes()
        except FileNotFoundError:
            log.info("kpi: no saved state at %s: KPI windows start afresh", self.path)
            return True
        except OSError as exc:
            log.warning("kpi: cannot read %s (%s): KPI windows start afresh", self.path, exc.strerror or exc)
            return True
        try:
            log.info("%s", engine.restore(decode(payload), now))
        except StateError as exc:
            aside = self.path.with_name(f"{self.path.name}.unusable-{int(now)}")
            try:
                os.replace(self.path, aside)
                where = f"moved aside to {aside.name}"
            except OSError as move:
                where = f"could not be moved aside ({move.strerror or move})"
            log.warning("kpi: saved state %s is unusable (%s); %s; KPI windows start afresh", self.path, exc, where)
            return False
        return True

    def snapshot(self, engine: KpiEngine, now: float) -> tuple[int, bytes]:
        """What to save; take it on the event loop, right after ``evaluate``."""
        self._taken += 1
        return self._taken, encode(engine.snapshot(now))

    def save(self, taken: tuple[int, bytes]) -> None:
        number, payload = taken
        with self._lock:
            if number <= self._written:
                return
            try:
                write_atomic(self.path, payload)
                self._written = number
            except OSError as exc:
                if not self._failing:
                    log.error("kpi: cannot save state to %s: %s", self.path, exc.strerror or exc)
                self._failing = True
                return
            if self._failing:
                log.info("kpi: state saved to %s again", self.path)
            self._failing = False


def write_atomic(path: Path, payload: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    try:
        with tmp.open("wb") as f:
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
