"""Quarantine for payloads the ingestor will not write: a JSON-lines file and/or an MQTT topic.

Each record: ``{"ts", "topic", "reason", "payload_b64"}``. The file is appended and fsynced before the original
message is acknowledged, so a quarantined message is never lost either. Publishing to the dead-letter topic is
QoS 1 and waits for the broker's PUBACK; the topic gets the record as JSON.

The file is capped: before a write would take it past ``max_file_bytes`` it is renamed ``<file>.<unix time>`` and a
new one begun; rotated files older than ``max_age_days``, or beyond ``max_total_bytes`` altogether (oldest first),
are deleted. Rotations and deletions are counted (:class:`DeadLetterStats`, reported in the ingestor's stats) and
each deletion is logged, so a misbehaving gateway cannot fill the centre's disk and what was dropped is known.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from agent.center.config import DeadLetterConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class DeadLetter:
    ts: float
    topic: str
    reason: str
    payload: bytes

    def record(self) -> bytes:
        return json.dumps(
            {
                "ts": self.ts,
                "topic": self.topic,
                "reason": self.reason,
                "payload_b64": base64.b64encode(self.payload).decode(),
            },
            separators=(",", ":"),
        ).encode()


@dataclass(slots=True)
class DeadLetterStats:
    rotations: int = 0  # files renamed aside because the next write would pass max_file_bytes
    deleted_files: int = 0  # rotated files deleted for age or for the total cap
    deleted_bytes: int = 0


class DeadLetterSink:
    """Blocking; called from the ingestor's worker thread. ``publish(topic, payload) -> bool`` is the MQTT side;
    ``clock`` (UNIX seconds) names rotated files and ages them."""

    def __init__(
        self,
        config: DeadLetterConfig,
        publish: Callable[[str, bytes], bool],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._path = Path(config.file) if config.file else None
        self._topic = config.topic
        self._publish = publish
        self._config = config
        self._clock = clock
        self.stats = DeadLetterStats()

    def put(self, letters: Sequence[DeadLetter]) -> None:
        """Store every letter; raise OSError (file) or RuntimeError (topic not acknowledged) if it could not."""
        if not letters:
            return
        if self._path is not None:
            data = b"".join(d.record() + b"\n" for d in letters)
            self._path.parent.mkdir(parents=True, exist_ok=True)
            self._rotate(self._path, len(data))
            with self._path.open("ab") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
        if self._topic:
            for d in letters:
                if not self._publish(self._topic, d.record()):
                    raise RuntimeError(f"dead-letter topic {self._topic}: the broker did not acknowledge")

    def rotated(self) -> list[Path]:
        """The rotated files, oldest first."""
        if self._path is None or not self._path.parent.is_dir():
            return []
        prefix = self._path.name + "."
        found = [
            p for p in self._path.parent.iterdir() if p.name.startswith(prefix) and p.name[len(prefix) :].isdigit()
        ]
        return sorted(found, key=lambda p: int(p.name[len(prefix) :]))

    def _rotate(self, path: Path, adding: int) -> None:
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            size = 0
        now = self._clock()
        if size and size + adding > self._config.max_file_bytes:
            stamp = int(now)
            while (aside := path.with_name(f"{path.name}.{stamp}")).exists():
                stamp += 1
            path.rename(aside)
            self.stats.rotations += 1
        files = self.rotated()
        sizes = [p.stat().st_size for p in files]
        total = sum(sizes)
        horizon = now - self._config.max_age_days * 86400.0
        prefix = len(path.name) + 1
        for p, n in zip(files, sizes, strict=True):
            too_old = int(p.name[prefix:]) < horizon
            if not too_old and total <= self._config.max_total_bytes:
                continue
            p.unlink()
            total -= n
            self.stats.deleted_files += 1
            self.stats.deleted_bytes += n
            why = "older than max_age_days" if too_old else "over max_total_bytes"
            log.warning("dead letter: deleted %s (%d bytes, %s)", p.name, n, why)
