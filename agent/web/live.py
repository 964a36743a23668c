"""What the web page shows that the agent does not keep anyway: the last poll of each device with its points, good
and bad counts, the latest KPI values with a last-hour trend, and the last warnings and errors of the log.

All bounded: one poll per device, one value per KPI and window, a trend of at most ``TREND_POINTS`` per KPI over
``TREND_S``, ``LOG_LINES`` log records. Updated on the event loop by the runtime (``on_poll`` from the agent's emit,
``on_kpis`` after each KPI evaluation): O(points) per poll, no I/O, no copies kept of what the agent holds.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from dataclasses import dataclass, field

from agent.model import KpiValue, PollResult, Quality

TREND_S = 3600.0
TREND_POINTS = 120
LOG_LINES = 100

KpiKey = tuple[str, str, str]  # scope, name, window


@dataclass(slots=True)
class DeviceLive:
    """The last poll of one device and what its polls added up to since the agent started."""

    last: PollResult | None = None
    polls: int = 0
    good_polls: int = 0  # every point read (good or uncertain)
    bad_polls: int = 0  # some point bad or stale
    good_samples: int = 0
    bad_samples: int = 0


@dataclass(slots=True)
class KpiLive:
    value: KpiValue
    trend: deque[tuple[float, float]] = field(default_factory=lambda: deque(maxlen=TREND_POINTS))


class LiveState:
    """Fed by the runtime, read by the web server. ``revision``/``kpi_revision`` tell a reader what changed."""

    def __init__(self, trend_s: float = TREND_S) -> None:
        self.trend_s = trend_s
        self._trend_step_s = trend_s / TREND_POINTS
        self.devices: dict[str, DeviceLive] = {}
        self.kpis: dict[KpiKey, KpiLive] = {}
        self.revision = 0
        self.kpi_revision = 0
        self.kpi_ts: float | None = None

    def on_poll(self, result: PollResult) -> None:
        live = self.devices.get(result.device)
        if live is None:
            live = self.devices[result.device] = DeviceLive()
        live.last = result
        live.polls += 1
        good = result.good
        if good is not None:  # every point read good: no Sample to count
            bad, total = 0, len(good.values)
        else:
            bad = sum(1 for s in result.samples if s.quality in (Quality.BAD, Quality.STALE))
            total = len(result.samples)
        live.bad_samples += bad
        live.good_samples += total - bad
        if bad:
            live.bad_polls += 1
        else:
            live.good_polls += 1
        self.revision += 1

    def on_kpis(self, values: list[KpiValue], now: float) -> None:
        """The values of one evaluation: per KPI and window the newest period wins; the trend takes the value of
        that period at most every ``trend_s / TREND_POINTS`` seconds and forgets what is older than ``trend_s``."""
        for v in values:
            key = (v.scope, v.name, v.window)
            live = self.kpis.get(key)
            if live is None:
                live = self.kpis[key] = KpiLive(v)
            elif (v.window_start, v.final) < (live.value.window_start, live.value.final):
                continue  # a late final of an older period: the table shows the newest
            live.value = v
            if v.value is None:
                continue
            trend = live.trend
            if trend and now - trend[-1][0] < self._trend_step_s:
                trend[-1] = (trend[-1][0], v.value)  # same slot: keep its latest value
            else:
                trend.append((now, v.value))
            while trend and trend[0][0] < now - self.trend_s:
                trend.popleft()
        self.kpi_ts = now
        self.kpi_revision += 1


@dataclass(frozen=True, slots=True)
class LogLine:
    ts: float
    level: str
    logger: str
    message: str


class LogRing(logging.Handler):
    """The last ``size`` records at WARNING and above, formatted once, for the page's log panel."""

    def __init__(self, size: int = LOG_LINES, level: int = logging.WARNING) -> None:
        super().__init__(level)
        self.lines: deque[LogLine] = deque(maxlen=size)
        self.revision = 0

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string must not break logging; say what arrived instead
            message = str(record.msg)
        self.lines.append(LogLine(record.created or time.time(), record.levelname, record.name, message))
        self.revision += 1
