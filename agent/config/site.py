"""Site file: one per gateway. Lists the plant's devices, the buses they hang on, and (in their own sections)
MQTT publishing, the spool, KPIs and OPC UA endpoints.

Each section's model lives in its own module (``mqtt.py``, ``spool.py``, ``kpi.py``, ``opcua.py``); this module
only puts them together.
"""

from __future__ import annotations

import functools
import zoneinfo
from collections.abc import Callable
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Discriminator, Field, Tag, field_validator, model_validator

from agent.config.base import NOT_BOOL, StrictModel, exactly_one
from agent.config.diagnostics import did_you_mean
from agent.config.dlt645 import Dlt645DeviceConfig
from agent.config.dtu import DtuBusConfig, DtuListenerConfig
from agent.config.kpi import KpiSectionConfig
from agent.config.mqtt import MqttConfig
from agent.config.opcua import OpcuaDeviceConfig
from agent.config.spool import SpoolConfig
from agent.config.web import WebConfig

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"  # no '/', '+', '#': names become MQTT topic levels
DEFAULT_TIMEOUT_MS = 1000.0  # capped at half the polling interval when timeout_ms is unset


class SerialBusConfig(StrictModel):
    """An RS-485 port on this gateway; devices on it are polled one request at a time."""

    name: str = Field(
        pattern=NAME_PATTERN, description="Name of this bus, used by devices' bus: key. Letters, digits, _ . -"
    )
    transport: Literal["rtu"] = Field("rtu", description="rtu: a serial (RS-485/RS-232) port on this gateway")
    port: str = Field(description="Serial device, e.g. /dev/ttyUSB0")
    baudrate: int = Field(
        9600, ge=300, le=921600, description="Line speed in bit/s, as set on the devices, e.g. 9600 or 19200"
    )
    parity: Literal["N", "E", "O"] = Field(
        "N",
        description="N (none), E (even) or O (odd), as set on the devices; unset: N, or E on a bus of DL/T 645 "
        "meters only (8E1 is their standard setting)",
    )
    stopbits: Annotated[Literal[1, 2], NOT_BOOL] = Field(1, description="Stop bits, 1 or 2, as set on the devices")
    bytesize: Literal[7, 8] = Field(8, description="Data bits per character, 8 for Modbus RTU (7 only for odd devices)")
    pause_ms: float = Field(20.0, ge=0, le=10000, description="Pause between two requests on this bus")


class TcpGatewayConfig(StrictModel):
    """A serial device server or Modbus gateway reached over TCP; its devices share one connection and are
    polled one request at a time. ``framing: rtu`` is RTU-over-TCP (raw RTU frames with CRC in TCP);
    ``framing: tcp`` is a Modbus TCP gateway routing by unit id."""

    model_config = ConfigDict(json_schema_extra={"allOf": [{"required": ["transport"]}]})  # without it: rtu

    name: str = Field(
        pattern=NAME_PATTERN, description="Name of this gateway, used by devices' bus: key. Letters, digits, _ . -"
    )
    transport: Literal["tcp_gateway"] = Field(
        "tcp_gateway", description="tcp_gateway: a serial device server or Modbus gateway reached over TCP"
    )
    host: str = Field(description="Host name or IP address of the gateway")
    port: int = Field(
        502, ge=1, le=65535, description="TCP port of the gateway (502 for Modbus TCP; device servers often use 4001)"
    )
    framing: Literal["tcp", "rtu"] = Field(
        "tcp",
        description="tcp: Modbus TCP frames, the gateway routes by unit id; rtu: raw RTU frames with CRC over TCP",
    )
    pause_ms: float = Field(
        0.0, ge=0, le=10000, description="Pause between two requests through this gateway, in milliseconds"
    )


def _tag_or_default(field: str, default: str) -> Callable[[Any], Any]:
    """Discriminator that lets the tag key be omitted (its model default applies), which ``Field(discriminator=)``
    does not allow."""

    def tag(value: Any) -> Any:
        if isinstance(value, dict):
            return value.get(field, default)
        return getattr(value, field, None)

    return tag


BusConfig = Annotated[
    Annotated[SerialBusConfig, Tag("rtu")]
    | Annotated[TcpGatewayConfig, Tag("tcp_gateway")]
    | Annotated[DtuBusConfig, Tag("dtu")],
    Discriminator(_tag_or_default("transport", "rtu")),
]


class ModbusDeviceConfig(StrictModel):
    """One Modbus device. Either ``host`` (its own Modbus TCP connection) or ``bus`` (a serial bus or TCP
    gateway declared under ``buses``)."""

    model_config = ConfigDict(json_schema_extra=exactly_one("host", "bus"))  # _one_transport, for editors

    name: str = Field(
        pattern=NAME_PATTERN,
        description="Device name, unique in the site; it becomes an MQTT topic level. Letters, digits, _ . -",
    )
    protocol: Literal["modbus"] = Field("modbus", description="modbus (the default when left out) or opcua")
    profile: str = Field(
        description="Device profile name: a shipped one (energy-agent list profiles) or one in profile_dirs"
    )
    host: str | None = Field(
        None, description="IP address or host name of a Modbus TCP device (give host or bus, not both)"
    )
    port: int = Field(502, ge=1, le=65535, description="TCP port of a Modbus TCP device (with host)")
    bus: str | None = Field(
        None, description="Name of a serial bus or TCP gateway under buses (give host or bus, not both)"
    )
    unit_id: int = Field(
        1, ge=0, le=255, description="Modbus unit (slave) id set on the device, 0..255; on a serial bus 1..247"
    )
    interval_s: float = Field(1.0, gt=0, le=86400, description="Polling interval in seconds")
    timeout_ms: float = Field(
        DEFAULT_TIMEOUT_MS,
        gt=0,
        le=60000,
        description="Reply timeout; unset: 1000 ms, or half of interval_s when that is shorter",
    )
    retries: int = Field(
        0, ge=0, le=5, description="Times a request is sent again after a timeout before it counts as failed, 0..5"
    )
    max_registers_per_request: int | None = Field(
        None, ge=1, le=125, description="Most registers one read may ask this device for; overrides the profile's value"
    )
    max_gap: int | None = Field(
        None,
        ge=0,
        le=124,
        description="Unused registers one read may span to join points; overrides the profile's value",
    )
    ct_ratio: float = Field(
        1.0, gt=0, le=100000, description="Current transformer ratio: points in A x CT, power and energy x CT x PT"
    )
    pt_ratio: float = Field(
        1.0, gt=0, le=100000, description="Voltage transformer ratio: points in V x PT, power and energy x CT x PT"
    )
    enabled: bool = Field(True, description="false: keep the device in the file but do not poll it")
    renewable: bool = Field(False, description="This meter measures renewable supply (PV, wind, green power)")
    tags: dict[str, str] = Field(
        default_factory=dict, description="Labels sent with the data, e.g. line: kiln1, area: raw-mill"
    )

    @model_validator(mode="before")
    @classmethod
    def _default_timeout(cls, data: Any) -> Any:
        """Without ``timeout_ms``: 1000 ms, or half the interval when that is shorter, so the defaults never draw
        the 'timeout not shorter than the interval' warning (one silent reply must not delay the next poll)."""
        if isinstance(data, dict) and "timeout_ms" not in data:
            interval = data.get("interval_s", 1.0)
            if isinstance(interval, int | float) and not isinstance(interval, bool) and interval > 0:
                return {**data, "timeout_ms": min(DEFAULT_TIMEOUT_MS, interval * 500.0)}
        return data

    @model_validator(mode="after")
    def _one_transport(self) -> ModbusDeviceConfig:
        if (self.host is None) == (self.bus is None):
            raise ValueError("give either host (Modbus TCP) or bus (a serial bus or TCP gateway), not both")
        return self


DeviceConfig = Annotated[
    Annotated[ModbusDeviceConfig, Tag("modbus")]
    | Annotated[OpcuaDeviceConfig, Tag("opcua")]
    | Annotated[Dlt645DeviceConfig, Tag("dlt645")],
    Discriminator(_tag_or_default("protocol", "modbus")),
]


class MonitoringConfig(StrictModel):
    """Self-monitoring: health on the status topic, and optionally Prometheus text on a local port."""

    status_interval_s: float = Field(30.0, ge=1, le=3600, description="How often health goes to the status topic")
    prometheus_port: int | None = Field(None, ge=0, le=65535, description="Serve /metrics here; unset = off")
    prometheus_host: str = Field("127.0.0.1", description="Listen address for /metrics; keep it on loopback")
    failure_threshold: int = Field(3, ge=1, le=1000, description="Consecutive failed polls before 'failed'")


@functools.cache
def _zones() -> list[str]:
    return sorted(zoneinfo.available_timezones())


def timezone_problem(name: str) -> str | None:
    """None when ``name`` is an IANA zone this machine knows, else why not (with a did-you-mean)."""
    try:
        zoneinfo.ZoneInfo(name)
        return None
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        pass
    hint = did_you_mean(name, _zones())
    return (
        f"unknown time zone {name!r}{hint}: write an IANA name such as Asia/Shanghai, Europe/Berlin or UTC "
        "(list: timedatectl list-timezones)"
    )


class SiteConfig(StrictModel):
    """The site file for one gateway."""

    site: str = Field(
        pattern=NAME_PATTERN,
        description="Plant or site name; the first MQTT topic level after the prefix. Letters, digits, _ . -",
    )
    gateway: str = Field(pattern=NAME_PATTERN, description="This gateway's name, unique in the site")
    timezone: str = Field("Asia/Shanghai", description="IANA zone for shifts and calendar days")

    profile_dirs: list[str] = Field(
        default_factory=list,
        description="Folders with device profiles, relative to this file; the shipped library is searched last",
    )
    state_dir: str = Field("/var/lib/energy-agent", description="Spool and state; systemd's StateDirectory")
    buses: list[BusConfig] = Field(
        default_factory=list,
        description="Serial buses and TCP gateways that devices share (devices name them with bus:)",
    )
    devices: list[DeviceConfig] = Field(
        default_factory=list,
        description="The devices this gateway reads: Modbus (with a profile) or OPC UA (with its points)",
    )
    mqtt: MqttConfig | None = Field(
        None, description="The broker this gateway publishes to; unset: nothing is published, data stays in the spool"
    )
    spool: SpoolConfig = Field(
        default_factory=lambda: SpoolConfig(),
        description="The local store-and-forward buffer that holds data until the broker acknowledged it",
    )
    kpi: KpiSectionConfig | None = Field(
        None, description="Energy KPIs computed on the gateway (see energy-agent reference kpi); unset: no KPIs"
    )
    poll_phase: Literal["spread", "aligned"] = Field(
        "spread",
        description="spread: each Modbus device polls at its own stable offset within its interval (a hash of its "
        "name, in steps of poll_phase_step_ms), so replies do not queue behind each other at the top of the "
        "second; sample timestamps stay the read times; aligned: every device at the multiples of its interval",
    )
    poll_phase_step_ms: Annotated[float, Field(ge=0, le=60000)] | Literal["auto"] = Field(
        "auto",
        description="spread: devices whose offsets fall in one step are polled together in one wake-up; smaller: "
        "fewer devices per burst (lower latency), more wake-ups (more CPU); 0: every device its own offset; auto: "
        "about 20 devices a step, the interval divided by ceil(devices polled at that interval / 20) (100 devices "
        "at 1 s: 200 ms; up to 20: one step, all together)",
    )
    monitoring: MonitoringConfig = Field(
        default_factory=lambda: MonitoringConfig(),
        description="Self-monitoring: health on the status topic and optional Prometheus metrics",
    )
    web: WebConfig | None = Field(
        None, description="The agent's local read-only web page for technicians (off unless web.enabled)"
    )
    dtu_listener: DtuListenerConfig | None = Field(
        None, description="The TCP port 4G DTUs dial in to (needed by buses with transport: dtu)"
    )

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        if (why := timezone_problem(value)) is not None:
            raise ValueError(why)
        return value

    @model_validator(mode="after")
    def _dlt645_parity(self) -> SiteConfig:
        """A serial bus whose parity is unset and that carries only DL/T 645 meters runs 8E1, their standard
        setting; with any Modbus device on it the Modbus default (N) stays."""
        protocols: dict[str, set[str]] = {}
        for d in self.devices:
            bus = getattr(d, "bus", None)
            if bus is not None:
                protocols.setdefault(bus, set()).add(d.protocol)
        for i, bus in enumerate(self.buses):
            if (
                isinstance(bus, SerialBusConfig)
                and "parity" not in bus.model_fields_set
                and protocols.get(bus.name) == {"dlt645"}
            ):
                self.buses[i] = bus.model_copy(update={"parity": "E"})
        return self
