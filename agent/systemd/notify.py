"""The systemd notify protocol (sd_notify(3)), spoken directly on ``$NOTIFY_SOCKET``: READY, STOPPING, STATUS,
RELOADING and WATCHDOG pings. No libsystemd dependency.

Watchdog: systemd sets ``$WATCHDOG_USEC`` when the unit has ``WatchdogSec=``; we ping every half of it, from a task
on the event loop, while the service itself is alive (``alive()`` returns None; see ``agent.runtime.monitor.Liveness``
and the centre's ``Ingestor.stalled``): a blocked loop, an ended task or a wedged publisher gets the service restarted. Devices that do not answer do not: the
watchdog vouches for the agent, not for the plant. STATUS= carries a one-line summary whenever it changes.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import Callable

log = logging.getLogger("agent.runtime")


class SystemdNotifier:
    """Sends notify messages; does nothing when not started by systemd (no ``$NOTIFY_SOCKET``)."""

    def __init__(self, env: dict[str, str] | None = None) -> None:
        env = dict(os.environ) if env is None else env
        address = env.get("NOTIFY_SOCKET", "")
        self._address: str | None = None
        if address:
            # An address starting with '@' is in the abstract namespace.
            self._address = "\0" + address[1:] if address.startswith("@") else address
        usec = env.get("WATCHDOG_USEC", "")
        pid = env.get("WATCHDOG_PID", "")
        self.watchdog_s: float | None = None
        if usec.isdigit() and int(usec) > 0 and (not pid or pid == str(os.getpid())):
            self.watchdog_s = int(usec) / 1_000_000
        self._sock: socket.socket | None = None
        self._status_shown = ""

    @property
    def enabled(self) -> bool:
        return self._address is not None

    def notify(self, message: str) -> None:
        if self._address is None:
            return
        if self._sock is None:
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        try:
            self._sock.sendto(message.encode(), self._address)
        except OSError as exc:
            log.warning("systemd notify failed: %s", exc)

    def ready(self, status: str = "") -> None:
        self.notify("READY=1\n" + (f"STATUS={status}\n" if status else ""))
        self._status_shown = status or self._status_shown

    def status(self, status: str) -> None:
        self.notify(f"STATUS={status}\n")
        self._status_shown = status

    def stopping(self) -> None:
        self.notify("STOPPING=1\n")

    def reloading(self) -> None:
        # MONOTONIC_USEC lets systemd >= 253 match the reload with its READY=1; older versions ignore it.
        self.notify(f"RELOADING=1\nMONOTONIC_USEC={time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000}\n")

    async def watchdog(self, alive: Callable[[], str | None]) -> None:
        """Ping every half of WatchdogSec while ``alive()`` finds nothing wrong (returns None); else log its reason
        once per episode and let systemd restart us. Runs until cancelled."""
        if self.watchdog_s is None or self._address is None:
            return
        period = self.watchdog_s / 2
        stalled = False
        while True:
            await asyncio.sleep(period)
            problem = alive()
            if problem is None:
                self.notify("WATCHDOG=1\n")
                if stalled:
                    log.warning("watchdog: alive again; pinging systemd")
                stalled = False
            elif not stalled:
                stalled = True
                log.error("watchdog: %s; not pinging systemd, which restarts the agent after WatchdogSec", problem)

    async def status_updates(self, status: Callable[[], str], period_s: float = 1.0) -> None:
        """Send STATUS= whenever ``status()`` says something new (checked every ``period_s``), so ``systemctl
        status`` shows the agent's state. Runs until cancelled; does nothing without systemd."""
        if self._address is None:
            return
        while True:
            text = status()
            if text != self._status_shown:
                self.status(text)
            await asyncio.sleep(period_s)

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
