"""A live terminal view of what reaches the broker: KPIs with their benchmark/baseline grade, and device health.

It is an MQTT subscriber like any other consumer at the centre: it reads the topics and payloads of agent.wire,
so what it shows is what was really published.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from agent.wire import KpiMessage, SamplesMessage, StatusMessage, WireKpi, decode

_GRADE_TEXT = {"benchmark": "BENCHMARK 标杆", "between": "between", "below_baseline": "BELOW BASELINE 基准"}


@dataclass
class DashboardState:
    """What the view shows; filled from MQTT messages (any thread), read by the renderer under ``lock``."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    kpis: dict[tuple[str, str, str], WireKpi] = field(default_factory=dict)
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
                    self.kpis[(k.scope, k.name, k.window)] = k
            elif isinstance(msg, StatusMessage):
                self.status = msg.state
                if msg.health:
                    self.health = msg.health


def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    magnitude = abs(value)
    digits = 0 if magnitude >= 1000 else 1 if magnitude >= 100 else 2 if magnitude >= 1 else 3
    return f"{value:,.{digits}f} {unit}"


def render(state: DashboardState, now: float, width: int = 118) -> str:
    """The screen as text (no terminal control codes): pure, so it can be tested."""
    with state.lock:
        kpis = sorted(state.kpis.values(), key=lambda k: (k.scope, k.name, k.window))
        devices = dict(sorted(state.devices.items()))
        health = dict(state.health)
        head = (
            f"agent {state.status} | messages {state.messages} (samples {state.sample_messages}, "
            f"kpi {state.kpi_messages}, invalid {state.invalid})"
        )
    lines = ["Plant energy agent: live view".ljust(width), head, ""]
    lines.append(f"{'scope':<14}{'KPI':<30}{'window':<8}{'value':>18}  {'cover':>6}  {'grade':<20}{'distance':>14}")
    for k in kpis:
        grade = _GRADE_TEXT.get(k.grade.value, k.grade.value) if k.grade else ""
        distance = _fmt(k.distance, "") if k.distance is not None else ""
        flag = "" if k.quality == "good" else f" ({k.quality.value})"
        lines.append(
            f"{k.scope[:13]:<14}{k.name[:29]:<30}{k.window:<8}{_fmt(k.value, k.unit):>18}  "
            f"{k.coverage * 100:5.1f}%  {grade + flag:<20}{distance:>14}"
        )
    if not kpis:
        lines.append("  (no KPI message yet: the first comes after the KPI publish interval)")
    lines += ["", f"{'device':<18}{'last poll':>10}  {'good/points':>12}  {'state':<8}{'failures':>9}"]
    dev_health: dict[str, Any] = health.get("devices", {})
    for name, (ts, good, total) in devices.items():
        h = dev_health.get(name, {})
        lines.append(
            f"{name:<18}{now - ts:>9.1f}s  {good:>5}/{total:<6}  {h.get('state', '?'):<8}"
            f"{h.get('consecutive_failures', 0):>9}"
        )
    spool = health.get("spool", {})
    if spool:
        lines += ["", f"spool depth {spool.get('depth', '?')}, bytes {spool.get('bytes', '?')}"]
    return "\n".join(lines)


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
