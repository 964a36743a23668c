"""The page's commissioning views, each one the agent's own command run as a child process: ``probe`` of one device
(with ``--orders``), ``plan`` of one device, ``validate`` of the site file.

A child process keeps their work (compiling the site, a poll of its own) off the agent's event loop, and shows
exactly what the technician would see on a terminal. One runs at a time; each is bounded in time (``TIMEOUT_S``) and
output (``MAX_OUTPUT``). They only read: ``probe`` polls like the agent does (the Modbus client cannot build a
write request), ``plan`` and ``validate`` do no device I/O at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from dataclasses import dataclass
from pathlib import Path

TIMEOUT_S = 30.0
MAX_OUTPUT = 256 * 1024
ACTIONS = ("probe", "plan", "validate")


@dataclass(frozen=True, slots=True)
class ActionResult:
    command: str  # as a technician would type it
    exit_code: int | None  # None: stopped after TIMEOUT_S
    output: str


def argv_for(action: str, site: Path, device: str | None) -> list[str]:
    if action == "probe":
        if not device:
            raise ValueError("probe needs a device")
        return ["probe", str(site), "--device", device, "--orders"]
    if action == "plan":
        return ["plan", str(site)] + (["--device", device] if device else [])
    if action == "validate":
        return ["validate", str(site)]
    raise ValueError(f"unknown action {action!r}; known: {', '.join(ACTIONS)}")


class Actions:
    """Runs one action at a time in a child ``python -m agent`` process."""

    def __init__(self, site: Path, timeout_s: float = TIMEOUT_S, python: str = sys.executable) -> None:
        self.site = site
        self.timeout_s = timeout_s
        self.python = python
        self._one = asyncio.Lock()

    @property
    def busy(self) -> bool:
        return self._one.locked()

    async def run(self, action: str, device: str | None) -> ActionResult:
        args = argv_for(action, self.site, device)
        command = "energy-agent " + " ".join(args)
        async with self._one:
            proc = await asyncio.create_subprocess_exec(
                self.python,
                "-m",
                "agent",
                *args,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
            )
            assert proc.stdout is not None
            try:
                output = await asyncio.wait_for(proc.stdout.read(MAX_OUTPUT), self.timeout_s)
                code: int | None = await asyncio.wait_for(proc.wait(), self.timeout_s)
            except TimeoutError:
                output, code = b"", None
            finally:
                if proc.returncode is None:
                    with contextlib.suppress(ProcessLookupError):
                        proc.kill()
                    await proc.wait()
        text = output.decode("utf-8", errors="replace")
        if code is None:
            text += f"\n(stopped after {self.timeout_s:g} s)"
        return ActionResult(command, code, text)
