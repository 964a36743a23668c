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
