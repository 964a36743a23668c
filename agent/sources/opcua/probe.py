"""``probe`` for OPC UA devices: one connect, one Read of every configured point, one PollResult.

``agent/cli/probe.py`` (the Modbus work) calls ``probe_opcua(loaded, device_name)`` for devices with
``protocol: opcua``. Relative paths in the device (certificates, trust folder, password file) are taken relative
to the site file's folder, as the running agent does.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from agent.config.opcua import OpcuaDeviceConfig
from agent.model import PollResult
from agent.sources.opcua.source import OpcuaSource, read_once


def find_device(loaded: Any, device_name: str) -> OpcuaDeviceConfig:
    """The OPC UA device of that name in a ``LoadedSite``; KeyError naming the OPC UA devices there is if absent."""
    devices = [d for d in loaded.site.devices if isinstance(d, OpcuaDeviceConfig)]
    for device in devices:
        if device.name == device_name:
            return device
    names = ", ".join(d.name for d in devices) or "none"
    raise KeyError(f"no OPC UA device {device_name!r} in {loaded.path} (OPC UA devices: {names})")


async def probe_opcua(loaded: Any, device_name: str) -> PollResult:
    """Read every point of one OPC UA device once. Raises KeyError (no such device) or SourceError."""
    config = find_device(loaded, device_name)
    source = OpcuaSource(config, Path(loaded.path).parent)
    return await read_once(source)
