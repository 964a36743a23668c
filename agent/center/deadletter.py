"""Quarantine for payloads the ingestor will not write: a JSON-lines file and/or an MQTT topic.

Each record: ``{"ts", "topic", "reason", "payload_b64"}``. The file is appended and fsynced before the original
message is acknowledged, so a quarantined message is never lost either. Publishing to the dead-letter topic is
QoS 1 and waits for the broker's PUBACK; the topic gets the record as JSON.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from agent.center.config import DeadLetterConfig


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


class DeadLetterSink:
    """Blocking; called from the ingestor's worker thread. ``publish(topic, payload) -> bool`` is the MQTT side."""

    def __init__(self, config: DeadLetterConfig, publish: Callable[[str, bytes], bool]) -> None:
        self._path = Path(config.file) if config.file else None
        self._topic = config.topic
        self._publish = publish

    def put(self, letters: Sequence[DeadLetter]) -> None:
        """Store every letter; raise OSError (file) or RuntimeError (topic not acknowledged) if it could not."""
        if not letters:
            return
        if self._path is not None:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            with self._path.open("ab") as f:
                f.write(b"".join(d.record() + b"\n" for d in letters))
                f.flush()
                os.fsync(f.fileno())
        if self._topic:
            for d in letters:
                if not self._publish(self._topic, d.record()):
                    raise RuntimeError(f"dead-letter topic {self._topic}: the broker did not acknowledge")
