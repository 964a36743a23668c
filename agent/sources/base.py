"""What every source (Modbus, OPC UA) offers the runtime.

Lifecycle: the runtime builds sources from a compiled site (before any I/O), then runs each one's ``run()`` in its
own task of one TaskGroup. ``run`` connects, polls or subscribes until cancelled and hands each device's results
to ``emit``; device faults are handled inside (bad samples, backoff, reconnect) and never raise out of ``run``.
Only bugs propagate. Concurrency: ``emit`` is awaited from the source's own task; it may block (back-pressure).

The unit of restart on a config reload is one source: a Modbus TCP device, a serial bus or TCP gateway with its
devices, or an OPC UA endpoint. ``fingerprint`` changes exactly when the config that source depends on changed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

from agent.model import DeviceHealth, PollResult

Emit = Callable[[PollResult], Awaitable[None]]


class Polling:
    """How many polls, over all sources of the runtime, are between their first request and the return of their
    ``emit``. The runtime's group commit commits its window as soon as none is (the burst of one poll step has
    all come in: its devices wake together, agent.sources.modbus.schedule.SystemClock) instead of waiting out the
    window: no timer wake-up per step. A source that does not report never holds a window open (the window's
    timer still bounds the wait)."""

    __slots__ = ("_on_idle", "active")

    def __init__(self, on_idle: Callable[[], None] | None = None) -> None:
        self.active = 0
        self._on_idle = on_idle

    def start(self) -> None:
        self.active += 1

    def done(self) -> None:
        self.active -= 1
        if self.active == 0 and self._on_idle is not None:
            self._on_idle()


class Source(Protocol):
    @property
    def name(self) -> str:
        """Device name, or bus/endpoint name for a source that serves several devices."""
        ...

    @property
    def fingerprint(self) -> str: ...

    @property
    def devices(self) -> tuple[str, ...]: ...

    async def run(self, emit: Emit) -> None: ...

    def health(self) -> list[DeviceHealth]: ...
