"""Ground truth of a simulated run as JSON lines, and a reader that answers "how much really flowed".

One line per device per model step (and one more whenever a fault is injected, carrying it in ``events``)::

    {"t": 1767225601.0, "device": "kiln1-meter", "values": {"energy_import_kwh": 123.4, ...},
     "events": [], "true": {"energy_import_kwh": 1.94, ...}}

``values`` are what the device showed (counters include resets and jumps); ``true`` holds each counter's exact
integral since the model started, which never jumps, so ``totals`` is right across meter resets and wraps.
Floats are written with ``repr`` precision, so they read back bit for bit.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any


class GroundTruthWriter:
    """Appends ground-truth lines to ``path`` (created, or truncated if it exists)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._f: IO[str] | None = self.path.open("w", encoding="utf-8")
        self.lines = 0

    def write(
        self, t: float, device: str, values: dict[str, float], events: list[dict[str, Any]], true: dict[str, float]
    ) -> None:
        if self._f is None:
            raise ValueError(f"ground truth {self.path} is closed")
        rec = {"t": t, "device": device, "values": values, "events": events, "true": true}
        self._f.write(json.dumps(rec, separators=(",", ":")) + "\n")
        self.lines += 1

    def flush(self) -> None:
        if self._f is not None:
            self._f.flush()

    def close(self) -> None:
        if self._f is not None:
            self._f.close()
            self._f = None


class GroundTruth:
    """A ground-truth file read back into memory."""

    def __init__(self, records: list[dict[str, Any]]) -> None:
        self.records = records
        self._true: dict[tuple[str, float], dict[str, float]] = {}
        for r in records:
            self._true[(r["device"], float(r["t"]))] = r["true"]

    @classmethod
    def load(cls, path: str | Path) -> GroundTruth:
        with Path(path).open(encoding="utf-8") as f:
            return cls([json.loads(line) for line in f if line.strip()])

    def times(self, device: str) -> list[float]:
        return sorted({float(r["t"]) for r in self.records if r["device"] == device})

    def series(self, device: str, key: str) -> Iterator[tuple[float, float]]:
        """(t, value) of one shown value, in file order."""
        for r in self.records:
            if r["device"] == device and key in r["values"]:
                yield float(r["t"]), float(r["values"][key])

    def events(self, device: str) -> list[dict[str, Any]]:
        return [e for r in self.records if r["device"] == device for e in r["events"]]

    def totals(self, device: str, counter: str, t0: float, t1: float) -> float:
        """True amount of ``counter`` between two recorded step times (exact; ignores resets and wraps)."""
        try:
            a = self._true[(device, float(t0))][counter]
            b = self._true[(device, float(t1))][counter]
        except KeyError as exc:
            raise KeyError(f"{device} {counter}: no ground truth at t0={t0} and t1={t1} ({exc})") from None
        return b - a
