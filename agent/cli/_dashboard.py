"""The demo's live terminal view of what reaches the broker: KPIs with their benchmark/baseline grade, device
health, and where the data went and how to look at it.

It is an MQTT subscriber like any other consumer at the centre: it reads the topics and payloads of agent.wire,
so what it shows is what was really published. :func:`render` is pure (state, clock and places in, lines out) and
fits ``max_lines`` (40 by default); :func:`frame` redraws a screen in place without clearing it (no flicker).
"""

from __future__ import annotations

import math
import shutil
import threading
import time
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from agent.wire import KpiMessage, SamplesMessage, StatusMessage, WireKpi, decode

_GRADE_TEXT = {"benchmark": "BENCHMARK 标杆", "between": "between", "below_baseline": "BELOW BASELINE 基准"}
_FIXED_WINDOWS = {"shift": 8 * 3600.0, "day": 86400.0, "week": 7 * 86400.0, "month": 31 * 86400.0}
_FIXED_WINDOWS |= {"year": 365 * 86400.0, "12mo": 366 * 86400.0}
_UNIT_S = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_GRADE_WORD = {"benchmark": "BENCHMARK", "between": "between", "below_baseline": "BELOW BASELINE"}
PV_HOURS = (6, 18)  # the simulated PV plant generates between these local hours (simulators/process.py)
DEMAND_BLOCK_S = 900.0


@dataclass(frozen=True, slots=True)
class Places:
    """Where the demo's data goes, to tell the viewer how to look at it."""

    workdir: Path
    kept: bool  # the work folder stays after the demo ends
    broker: str  # "mosquitto" or "embedded broker (MQTT 3.1.1)"
    broker_port: int
    topic: str  # "<prefix>/<site>/<gateway>"
    influx_port: int | None  # None: no InfluxDB in this run
    database: str = "energy"
    timezone: str = "UTC"  # the plant's (site file's) zone
    started: float = 0.0  # when the agent started polling (UNIX s)
    first_grade_window_s: float = 60.0  # the shortest graded window (the demo grades 1-minute windows)
    publish_interval_s: float = 10.0  # the agent's KPI publish interval: a closed window shows by then


@dataclass
class DashboardState:
    """What the view shows; filled from MQTT messages (any thread), read by the renderer under ``lock``."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    kpis: dict[tuple[str, str, str], WireKpi] = field(default_factory=dict)  # (scope, name, window) -> last final
    running: dict[tuple[str, str, str], WireKpi] = field(default_factory=dict)  # the open window's value so far
    devices: dict[str, tuple[float, int, int]] = field(default_factory=dict)  # device -> (ts, good, total)
    health: dict[str, Any] = field(default_factory=dict)
    status: str = "unknown"
    messages: int = 0
    sample_messages: int = 0
    kpi_messages: int = 0
    invalid: int = 0
    seqs: set[tuple[str, int]] = field(default_factory=set)

    def take(self, payload: bytes | bytearray) -> None:
        try:
            msg = decode(bytes(payload))
        except ValueError:
            with self.lock:
                self.invalid += 1
            return
        with self.lock:
            self.messages += 1
            if isinstance(msg, SamplesMessage):
                self.sample_messages += 1
                self.seqs.add((msg.boot, msg.seq))
                good = sum(1 for s in msg.samples if s.quality == "good")
                self.devices[msg.device] = (msg.ts, good, len(msg.samples))
            elif isinstance(msg, KpiMessage):
                self.kpi_messages += 1
                self.seqs.add((msg.boot, msg.seq))
                for k in msg.kpis:
                    key = (k.scope, k.name, k.window)
                    if is_provisional(k):
                        self.running[key] = k
                    else:
                        self.kpis[key] = k
                        if key in self.running and self.running[key].window_start <= k.window_start:
                            del self.running[key]  # that window has closed
            elif isinstance(msg, StatusMessage):
                self.status = msg.state
                if msg.health:
                    self.health = msg.health


# ---- text helpers --------------------------------------------------------------------------------------------


def _width(text: str) -> int:
    """Terminal columns: CJK characters take two."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _ljust(text: str, width: int) -> str:
    return text + " " * max(0, width - _width(text))


def _rjust(text: str, width: int) -> str:
    return " " * max(0, width - _width(text)) + text


def _number(value: float) -> str:
    magnitude = abs(value)
    digits = 0 if magnitude >= 1000 else 1 if magnitude >= 100 else 2 if magnitude >= 1 else 3
    return f"{value:,.{digits}f}"


def fmt_value(value: float | None, unit: str) -> str:
    """A KPI value with its unit; a ratio (unit "1") as a percentage, so no bare "1" is printed as a unit."""
    if value is None or not math.isfinite(value):
        return "-"
    if unit == "1":
        return f"{value * 100:.1f} %"
    return f"{_number(value)} {unit}".strip()


def _window_s(name: str) -> float:
    if name in _FIXED_WINDOWS:
        return _FIXED_WINDOWS[name]
    try:
        return float(name[:-1]) * _UNIT_S[name[-1]]
    except (KeyError, ValueError, IndexError):
        return math.inf


def is_provisional(k: WireKpi) -> bool:
    """True while the KPI's window is still open (its value will change): ``final`` false on the wire, or
    ``detail.final`` 0 from agents before that field."""
    final = getattr(k, "final", None)
    if isinstance(final, bool) and not final:
        return True
    return k.detail.get("final", 1.0) == 0.0


def _indicative(k: WireKpi) -> bool:
    """A grade on a window shorter than the grading periods (the national levels are annual figures)."""
    return bool(getattr(k, "grade_indicative", False))


def _local(ts: float, tz: str) -> str:
    return datetime.fromtimestamp(ts, ZoneInfo(tz)).strftime("%H:%M")


def first_whole_block_end(started: float) -> float:
    """End of the first 15-minute demand block that starts after ``started`` (the block the demo began in is
    incomplete and does not count). Quarter hours are the same in every time zone."""
    return math.ceil(started / DEMAND_BLOCK_S) * DEMAND_BLOCK_S + DEMAND_BLOCK_S


# ---- the screen ----------------------------------------------------------------------------------------------


def _cell(k: WireKpi | None, places: Places) -> str:
    """One window's value: ``*`` marks a provisional one; an empty peak demand says when it fills."""
    if k is None:
        return ""
    if k.value is None and k.name.startswith("max_demand"):
        fills = max(first_whole_block_end(places.started), k.window_start + DEMAND_BLOCK_S)
        return f"after {_local(fills, places.timezone)}"
    return fmt_value(k.value, k.unit) + ("*" if is_provisional(k) else " ")


def _notes(last: dict[str, WireKpi], places: Places, now: float) -> list[str]:
    """Why a value is empty or zero, for the cases a newcomer asks about (by KPI name, longest window)."""
    notes = []
    if any(name.startswith("max_demand") and k.value is None for name, k in last.items()):
        ends = first_whole_block_end(places.started)
        if now < ends:
            notes.append(
                "Peak demand counts whole 15-minute blocks only: empty until the first whole one ends, "
                f"{_local(ends, places.timezone)}."
            )
        else:
            notes.append("Peak demand is empty: no whole 15-minute block with enough good data yet.")
    share = last.get("renewable_share")
    hour = datetime.fromtimestamp(now, ZoneInfo(places.timezone)).hour
    if share is not None and not share.value and not PV_HOURS[0] <= hour < PV_HOURS[1]:
        notes.append(
            f"Renewable share is 0 % at night: the simulated PV generates {PV_HOURS[0]:02d}:00-{PV_HOURS[1]:02d}:00 "
            f"plant time, and it is {_local(now, places.timezone)} there."
        )
    return notes


def first_grade(places: Places) -> tuple[float, float, float]:
    """(start, end, shown by) of the first graded window: the first whole one that starts at least 10 s after the
    agent (its first polls complete the window's coverage), on screen one publish interval after it ends."""
    size = places.first_grade_window_s
    start = math.ceil((places.started + 10.0) / size) * size
    return start, start + size, start + size + places.publish_interval_s + 5.0


def _grade_lines(rows: dict[tuple[str, str], dict[str, WireKpi]], places: Places, now: float) -> list[str]:
    """Which window each grade and distance belong to, with the unit; before the first grade, when it comes."""
    lines = []
    for (scope, name), per in sorted(rows.items()):
        done = [k for k in per.values() if k.grade is not None and not is_provisional(k)]
        if not done:
            continue
        k = max(done, key=lambda k: (_window_s(k.window), k.window_end))
        when = f"{_local(k.window_start, places.timezone)}-{_local(k.window_end, places.timezone)}"
        grade = _GRADE_WORD.get(k.grade.value, k.grade.value) if k.grade is not None else ""
        grade = f"({grade}, indicative)" if _indicative(k) else grade
        distance = f", distance {k.distance:+,.2f} {k.unit} (+ is worse)" if k.distance is not None else ""
        lines.append(f"Grade of {scope} {name}: {grade} in the {k.window} window {when}{distance}.")
    if lines:
        return lines
    start, end, shown = first_grade(places)
    if now >= shown + 60.0:
        return ["No grade yet: the graded windows lack coverage (see 'cover'); grades need good data for the window."]
    minutes = f"{places.first_grade_window_s / 60:g}-minute"
    return [
        f"First grade: the {minutes} window {_local(start, places.timezone)}-{_local(end, places.timezone)} "
        f"(the first whole one since the start), on screen by about "
        f"{datetime.fromtimestamp(shown, ZoneInfo(places.timezone)).strftime('%H:%M:%S')}."
    ]


def _grade_cell(k: WireKpi) -> str:
    if k.quality != "good" and k.value is not None and not is_provisional(k):
        return "low coverage"  # an open window's coverage is still growing: not flagged
    if k.grade is None:
        return ""
    text = _GRADE_TEXT.get(k.grade.value, k.grade.value)
    return f"({text})" if _indicative(k) else text


def _other_windows(others: list[WireKpi]) -> str:
    """The windows without a column (e.g. a graded KPI's grading periods), on one line under the KPI's row."""
    graded = any(k.grade is not None and not _indicative(k) for k in others)
    parts = []
    for k in others:
        grade = f" {_GRADE_WORD.get(k.grade.value, k.grade.value)}" if k.grade is not None else ""
        value = fmt_value(k.value, k.unit if k.unit == "1" else "") + ("*" if is_provisional(k) else "")
        parts.append(f"{k.window} {value}{grade}")
    return " " * 13 + ("└ grading periods: " if graded else "└ ") + " | ".join(parts)


def _kpi_lines(kpis: list[WireKpi], places: Places, now: float) -> tuple[list[str], list[str]]:
    """(header + one line per KPI with a value column for each of the two windows most KPIs have, notes that
    explain empty or zero values). A KPI's other windows (its grading periods) go on a line under its row.
    Graded KPIs come first; coverage is the longest column window's, the grade that of the longest column window
    with one; a grade in parentheses is indicative (window shorter than the grading periods)."""
    count = Counter(k.window for k in kpis)
    windows = sorted(sorted(count, key=lambda w: (-count[w], _window_s(w)))[:2], key=_window_s)
    rows: dict[tuple[str, str], dict[str, WireKpi]] = {}
    for k in kpis:
        rows.setdefault((k.scope, k.name), {})[k.window] = k
    head = _ljust("scope", 13) + _ljust("KPI   (* = window still open)", 28)
    lines = [
        head
        + "".join(_rjust(w, 18) for w in windows)
        + f"  {'cover':>5}  {_ljust('grade (indic.)', 16)}{'distance':>9}"
    ]
    longest: dict[str, WireKpi] = {}
    graded_first = sorted(rows, key=lambda key: (all(k.grade is None for k in rows[key].values()), key))
    for key in graded_first:
        per = rows[key]
        shown = [w for w in windows if w in per]
        last = longest[key[1]] = per[shown[-1] if shown else max(per, key=_window_s)]
        cells = "".join(_rjust(_cell(per.get(w), places), 18) for w in windows)
        # the grade of the longest column window that has one (an open window may have none yet)
        graded = next((per[w] for w in reversed(shown) if per[w].grade is not None), last)
        distance = _number(graded.distance) if graded.distance is not None else ""
        row = _ljust(key[0][:12], 13) + _ljust(key[1][:27], 28) + cells
        lines.append(f"{row}  {last.coverage * 100:4.0f}%  {_ljust(_grade_cell(graded), 16)}{distance:>9}".rstrip())
        others = [per[w] for w in sorted(per, key=_window_s) if w not in windows]
        if others:
            lines.append(_other_windows(others))
    return lines, _grade_lines(rows, places, now) + _notes(longest, places, now)


def _device_lines(devices: dict[str, tuple[float, int, int]], health: dict[str, Any], now: float) -> list[str]:
    """Three devices per line: name, seconds since the last poll, good/points, state (and failures in a row)."""
    cells = []
    for name, (ts, good, total) in devices.items():
        h = health.get(name, {})
        state = str(h.get("state", "?"))
        fails = int(h.get("consecutive_failures", 0) or 0)
        if fails:
            state = f"{state[:6]} {fails}"
        cells.append(f"{name[:14]:<14}{min(now - ts, 999.0):>4.0f}s {good:>3}/{total:<3} {state:<8}")
    head = f"{'device':<14}{'ago':>5} {'good':>7} {'state':<8}"
    lines = ["  ".join([head] * min(3, max(1, len(cells)))).rstrip()]
    for i in range(0, len(cells), 3):
        lines.append("  ".join(cells[i : i + 3]).rstrip())
    return lines


def _place_lines(places: Places) -> list[str]:
    folder = "kept after exit" if places.kept else "deleted on exit; --keep keeps it"
    lines = [
        f"Work folder  {places.workdir}  (site.yaml, logs, spool; {folder})",
        f"MQTT         {places.broker} 127.0.0.1:{places.broker_port}, topics {places.topic}/<device>/samples, "
        "/kpi, /status",
        f"  watch it:  mosquitto_sub -h 127.0.0.1 -p {places.broker_port} -t '{places.topic}/kpi' -v",
    ]
    if shutil.which("mosquitto_sub") is None:  # print only commands that exist here
        lines[-1] = "  watch it:  sudo apt-get install mosquitto-clients; then " + lines[-1].removeprefix(
            "  watch it:  "
        )
    if places.influx_port is None:
        lines.append("InfluxDB     not in this run (needs Debian's influxdb and mosquitto)")
    else:
        url = f"http://127.0.0.1:{places.influx_port}"
        lines.append(f"InfluxDB     {url}, database {places.database}, written by energy-center; query it:")
        lines.append(
            f"curl -G 127.0.0.1:{places.influx_port}/query -d db={places.database} "
            """--data-urlencode 'q=SELECT last("value") FROM "kpi" GROUP BY "name"'"""
        )
    return lines


def render(state: DashboardState, now: float, places: Places, max_lines: int = 40) -> list[str]:
    """The screen as lines of text (no control codes), at most ``max_lines``: KPI rows are cut first, with a line
    saying how many more there are and where to see them."""
    with state.lock:
        # a window's last complete value where there is one (full coverage, a grade); else the open one so far
        kpis = list((state.running | state.kpis).values())
        devices = dict(sorted(state.devices.items()))
        health = dict(state.health)
        counts = (state.messages, state.sample_messages, state.kpi_messages, state.invalid)
        status = state.status
    spool = health.get("spool", {})
    top = [
        f"Energy demo  {_local(now, places.timezone)} {places.timezone} | agent {status} | "
        f"{counts[0]} messages: {counts[1]} samples, {counts[2]} KPI, {counts[3]} invalid | "
        f"spool {spool.get('depth', '?')}"
    ]
    if kpis:
        kpi_lines, notes = _kpi_lines(kpis, places, now)
    else:
        kpi_lines = ["(no KPI message yet: the first comes after the KPI publish interval)"]
        notes = _grade_lines({}, places, now)
    bottom = ["", *_device_lines(devices, health.get("devices", {}), now), *_place_lines(places), *notes]
    room = max_lines - len(top) - len(bottom)
    if len(kpi_lines) > room:
        hidden = len(kpi_lines) - room + 1
        kpi_lines = [*kpi_lines[: room - 1], f"... {hidden} more KPIs: query InfluxDB or watch MQTT (below)"]
    return [*top, *kpi_lines, *bottom][:max_lines]


def frame(lines: list[str]) -> str:
    """One redraw: cursor home, each line followed by clear-to-end-of-line, then clear below. The screen is never
    cleared as a whole, so it does not flicker."""
    return "\x1b[H" + "".join(f"{line}\x1b[K\n" for line in lines) + "\x1b[J"


class Subscriber:
    """A paho subscriber on its own network thread (the view is a separate consumer, not part of the agent)."""

    def __init__(self, host: str, port: int, prefix: str, state: DashboardState) -> None:
        self.state = state
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"demo-view-{int(time.time())}")
        topics = [(f"{prefix}/+/+/+/samples", 1), (f"{prefix}/+/+/kpi", 1), (f"{prefix}/+/+/status", 1)]
        self.client.on_connect = lambda c, _u, _f, _rc, _p: c.subscribe(topics)
        self.client.on_message = lambda _c, _u, m: state.take(m.payload)
        self.host, self.port = host, port

    def start(self) -> None:
        self.client.connect(self.host, self.port, keepalive=30)
        self.client.loop_start()

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
