"""The agent's exception tree. Lower-layer exceptions (pymodbus, asyncua, paho, sqlite, ruamel) are mapped into
these at one boundary per package, so callers handle our types only.

AgentError                    base of everything we raise on purpose
├── ConfigError               a site file or profile is wrong; carries every ConfigIssue found (exit 78)
├── SourceError               a device could not be read
│   ├── DeviceTimeout         no reply within the device's timeout
│   ├── DeviceException       the device answered with a protocol exception (Modbus code / OPC UA status)
│   ├── FrameError            a reply was malformed: wrong byte count, CRC, function code, transaction id
│   ├── ConnectionLost        the transport closed or could not be opened
│   └── SecurityError         TLS / OPC UA certificate or authentication refused
├── DecodeError               raw registers could not be decoded as the declared type
├── SpoolError                the durable spool could not be opened or written
│   └── StateDirError         the state directory is unusable (not writable, held by another agent): exit 78
└── SinkError                 publishing failed (broker refused, TLS, ACL)
"""

from __future__ import annotations

from dataclasses import dataclass


class AgentError(Exception):
    """Base class of every error the agent raises on purpose."""


@dataclass(frozen=True, slots=True)
class ConfigIssue:
    """One problem in a config file, formatted compiler-style: ``file:line:col: path: message``."""

    file: str
    line: int
    col: int
    path: str
    message: str
    severity: str = "error"  # "error" or "warning"

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.col}"
        path = f" {self.path}:" if self.path else ""
        prefix = "warning: " if self.severity == "warning" else ""
        return f"{where}:{path} {prefix}{self.message}"


EX_CONFIG = 78  # sysexits.h: the exit status of every command that refuses a config (systemd does not restart on it)


class ConfigError(AgentError):
    """A config could not be accepted. ``issues`` holds every error found, sorted by file, line, column."""

    def __init__(self, issues: list[ConfigIssue]) -> None:
        self.issues = sorted(issues, key=lambda i: (i.file, i.line, i.col, i.path))
        super().__init__("\n".join(str(i) for i in self.issues))


class SourceError(AgentError):
    """A device could not be read. The message starts with the device name."""


class DeviceTimeout(SourceError):
    pass


class DeviceException(SourceError):
    """The device answered with a protocol exception; ``code_name`` is e.g. ILLEGAL DATA ADDRESS."""

    def __init__(self, message: str, code: int, code_name: str) -> None:
        super().__init__(message)
        self.code = code
        self.code_name = code_name


class FrameError(SourceError):
    pass


class ConnectionLost(SourceError):
    pass


class SecurityError(SourceError):
    pass


class DecodeError(AgentError):
    pass


class SpoolError(AgentError):
    pass


class StateDirError(SpoolError):
    """The state directory cannot be used: not writable, not creatable, or locked by another running agent. An
    operator must act; restarting does not help, so ``run`` exits with EX_CONFIG (systemd does not restart on it)."""


class SinkError(AgentError):
    pass
