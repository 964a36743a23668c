"""Which sources a reload restarts: the diff between the running sources and those built from the new site file.

A source whose fingerprint is unchanged keeps running. A Modbus bus or gateway whose own settings are unchanged
adopts the new device list while it runs (``ModbusSource.adopt``): only its changed devices restart. Any other
changed source is cancelled and started afresh; a source no longer wanted is cancelled. Pure apart from
``adopt`` (which swaps the devices of the running source in place); the runtime cancels and starts tasks.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from agent.sources.base import Source


@dataclass(slots=True)
class ReloadPlan:
    cancel: list[str] = field(default_factory=list)  # running sources to cancel
    start: dict[str, Source] = field(default_factory=dict)  # sources to start (new or replacing a cancelled one)
    adopted: list[Source] = field(default_factory=list)  # running sources that took new devices in place
    restarted: list[str] = field(default_factory=list)  # device or source names, for the log
    started: list[str] = field(default_factory=list)
    stopped: list[str] = field(default_factory=list)
    kept: int = 0  # running sources left untouched


def plan_reload(running: Mapping[str, Source], wanted: Mapping[str, Source]) -> ReloadPlan:
    plan = ReloadPlan()
    for name, source in running.items():
        fresh = wanted.get(name)
        if fresh is not None and fresh.fingerprint == source.fingerprint:
            plan.kept += 1
            continue
        adopt = getattr(source, "adopt", None)
        changes = adopt(fresh) if adopt is not None and fresh is not None and type(fresh) is type(source) else None
        if changes is not None:
            restarted, started, stopped = changes
            plan.restarted += restarted
            plan.started += started
            plan.stopped += stopped
            plan.adopted.append(source)
            continue
        plan.cancel.append(name)
        if fresh is None:
            plan.stopped.append(name)
        else:
            plan.restarted.append(name)
            plan.start[name] = fresh
    for name, fresh in wanted.items():
        if name not in running:
            plan.started.append(name)
            plan.start[name] = fresh
    return plan
