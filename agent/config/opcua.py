"""OPC UA devices in the site file. Owned by the OPC UA work (issue 3)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from agent.config.base import StrictModel


class OpcuaDeviceConfig(StrictModel):
    """Placeholder until OPC UA acquisition lands."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
    protocol: Literal["opcua"] = "opcua"
