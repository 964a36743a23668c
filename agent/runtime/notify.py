"""The systemd notify protocol (sd_notify(3)), spoken directly on ``$NOTIFY_SOCKET``: READY, STOPPING, STATUS,
RELOADING and WATCHDOG pings. No libsystemd dependency.

Watchdog: systemd sets ``$WATCHDOG_USEC`` when the unit has ``WatchdogSec=``; we ping every half of it, from a task
on the event loop, and only while the pipeline makes progress (``progress()`` returns True), so a blocked loop or
a stalled pipeline gets the service restarted.
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

    def status(self, status: str) -> None:
        self.notify(f"STATUS={status}\n")

    def stopping(self) -> None:
        self.notify("STOPPING=1\n")

    def reloading(self) -> None:
        # MONOTONIC_USEC lets systemd >= 253 match the reload with its READY=1; older versions ignore it.
        self.notify(f"RELOADING=1\nMONOTONIC_USEC={time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000}\n")

    async def watchdog(self, progress: Callable[[], bool]) -> None:
        """Ping every half of WatchdogSec while ``progress()`` says the pipeline is alive. Runs until cancelled."""
        if self.watchdog_s is None or self._address is None:
            return
        period = self.watchdog_s / 2
        while True:
            await asyncio.sleep(period)
            if progress():
                self.notify("WATCHDOG=1\n")
            else:
                log.warning("watchdog: no progress in the pipeline for %.1f s; not pinging systemd", period)

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
