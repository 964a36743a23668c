"""Driving a KpiEngine through a stream of sample batches, as the runtime does: ingest every batch, evaluate now
and then."""

from __future__ import annotations

from collections.abc import Iterator

from agent.kpi.engine import KpiEngine
from agent.model import KpiValue, Sample

Stream = Iterator[tuple[float, list[Sample]]]  # (time, the samples read then)


def drive(eng: KpiEngine, stream: Stream, every: float = 60.0, since: float = float("-inf")) -> list[KpiValue]:
    """Ingest each batch; evaluate after a batch at least ``every`` s after the last evaluation (or ``since``, for
    the first one). Returns every value evaluated."""
    out: list[KpiValue] = []
    last = since
    for t, samples in stream:
        eng.ingest(samples)
        if t - last >= every:
            out += eng.evaluate(t)
            last = t
    return out
