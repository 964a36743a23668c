"""4G DTUs that dial in: the agent listens as a TCP server, each DTU connects out to it and announces itself with a
registration packet (its ID string or IMEI, configured per DTU), then carries the serial bus behind it
transparently; its heartbeat packets are dropped from the stream.

``DtuBusConfig`` is a bus (``transport: dtu``) that Modbus RTU and DL/T 645 devices name with ``bus:``;
``DtuListenerConfig`` is the site's one listening socket (``dtu_listener:``), needed when any DTU bus exists.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from agent.config.base import StrictModel

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"


class DtuBusConfig(StrictModel):
    """A serial bus reached through a 4G DTU that connects to the agent (the agent is the TCP server)."""

    name: str = Field(pattern=NAME_PATTERN, description="Name of this bus, used by devices' bus: key")
    transport: Literal["dtu"] = Field(description="dtu: a 4G DTU that dials in to dtu_listener")
    registration: str | None = Field(
        None, min_length=1, max_length=128, description="The DTU's registration packet as text, e.g. its ID or IMEI"
    )
    registration_hex: str | None = Field(
        None, pattern=r"^([0-9A-Fa-f]{2} ?){1,128}$", description="The registration packet as hex bytes instead"
    )
    heartbeat: str | None = Field(None, min_length=1, max_length=128, description="Heartbeat packet as text")
    heartbeat_hex: str | None = Field(
        None, pattern=r"^([0-9A-Fa-f]{2} ?){1,128}$", description="Heartbeat packet as hex bytes instead"
    )
    pause_ms: float = Field(50.0, ge=0, le=10000, description="Pause between two requests through this DTU")

    @model_validator(mode="after")
    def _one_registration(self) -> DtuBusConfig:
        if (self.registration is None) == (self.registration_hex is None):
            raise ValueError("give either registration (text) or registration_hex, not both")
        if self.heartbeat is not None and self.heartbeat_hex is not None:
            raise ValueError("give heartbeat or heartbeat_hex, not both")
        return self

    @property
    def registration_bytes(self) -> bytes:
        if self.registration_hex is not None:
            return bytes.fromhex(self.registration_hex.replace(" ", ""))
        assert self.registration is not None
        return self.registration.encode()

    @property
    def heartbeat_bytes(self) -> bytes | None:
        if self.heartbeat_hex is not None:
            return bytes.fromhex(self.heartbeat_hex.replace(" ", ""))
        return self.heartbeat.encode() if self.heartbeat is not None else None


class DtuListenerConfig(StrictModel):
    """Where DTUs connect to."""

    host: str = Field("0.0.0.0", description="Listen address; 0.0.0.0 for every interface")
    port: int = Field(ge=1, le=65535, description="TCP port the DTUs are configured to connect to")
    registration_timeout_s: float = Field(
        30.0, gt=0, le=3600, description="A connection that sends no known registration packet within this is closed"
    )
    idle_timeout_s: float = Field(
        600.0,
        gt=0,
        le=86400,
        description="A registered DTU that sends nothing (not even a heartbeat) this long is closed",
    )
