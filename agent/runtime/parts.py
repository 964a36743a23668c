"""Builds the pipeline's parts from a compiled site: sources, KPI engine, spool, MQTT sink and topics.

This is the one place where the sibling packages (sources, kpi, spool, sinks) meet.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from agent import __version__
from agent.config.load import LoadedSite, state_dir
from agent.config.mqtt import MqttConfig
from agent.config.opcua import OpcuaDeviceConfig
from agent.kpi.engine import KpiEngine
from agent.kpi.history import HistoryError, parse_history
from agent.kpi.state import StateError
from agent.runtime.buses import build_bus_sources
from agent.runtime.compile import CompiledSite
from agent.runtime.kpistate import STATE_FILE, KpiStateFile
from agent.sinks.mqtt import MqttSink
from agent.sinks.topics import kpi_topic, samples_topic
from agent.sources.base import Source
from agent.spool.lock import StateDirLock
from agent.spool.sqlite import SqliteSpool
from agent.spool.storage import RESERVE_BYTES

log = logging.getLogger("agent.runtime")


@dataclass(frozen=True, slots=True)
class Topics:
    prefix: str
    site: str
    gateway: str
    _samples: dict[str, str] = field(default_factory=dict)

    def samples(self, device: str) -> str:
        """Checked once per device, then cached: this is on the per-poll path."""
        topic = self._samples.get(device)
        if topic is None:
            topic = self._samples[device] = samples_topic(self.prefix, self.site, self.gateway, device)
        return topic

    def kpi(self) -> str:
        return kpi_topic(self.prefix, self.site, self.gateway)


class Parts:
    """What the running agent holds. ``kpi`` is replaced when a reload changes the KPI section."""

    __slots__ = ("kpi", "kpi_interval_s", "sink", "spool", "topics")

    def __init__(
        self, spool: SqliteSpool, sink: MqttSink | None, kpi: KpiEngine | None, topics: Topics, kpi_interval_s: float
    ) -> None:
        self.spool = spool
        self.sink = sink
        self.kpi = kpi
        self.topics = topics
        self.kpi_interval_s = kpi_interval_s


def build_sources(compiled: CompiledSite, clock: Callable[[], float] | None = None) -> list[Source]:
    """Every source of the site, Modbus and OPC UA, in file order of their first device, from the compiled plans.
    No I/O."""
    loaded = compiled.loaded
    sources: list[Source] = build_bus_sources(loaded, compiled.modbus_plans)
    base_dir = loaded.path.parent
    opcua = [d for d in loaded.site.devices if isinstance(d, OpcuaDeviceConfig) and getattr(d, "enabled", True)]
    if opcua:
        # asyncua costs ~25 MB of RSS: imported only by sites that have OPC UA devices.
        from agent.sources.opcua.source import OpcuaSource

        sources += [
            OpcuaSource(
                device,
                base_dir,
                clock=clock or time.time,
                state_dir=state_dir(loaded),
                plan=compiled.opcua_plans.get(device.name),
            )
            for device in opcua
        ]
    return sources


def build_kpi_engine(
    loaded: LoadedSite,
    clock: Callable[[], float],
    monotonic: Callable[[], float] | None = None,
    saved: KpiStateFile | KpiEngine | None = None,
) -> KpiEngine | None:
    """The site's KPI engine, carrying on from ``saved``: the snapshot file at a start, the running engine at a
    reload (the parts that fit the new KPI section are kept). ``monotonic`` turns on clock-step handling."""
    if loaded.site.kpi is None:
        return None
    engine = KpiEngine.from_site(loaded.site, loaded.profiles, clock, monotonic)
    now = clock()
    if isinstance(saved, KpiStateFile):
        if not saved.load_into(engine, now):
            engine = KpiEngine.from_site(loaded.site, loaded.profiles, clock, monotonic)
    elif saved is not None:
        try:
            log.info("reload: %s", engine.restore(saved.snapshot(now), now))
        except StateError as exc:  # a bug, or a snapshot this engine cannot read: start afresh rather than stop
            log.error("reload: the KPI state could not be carried over (%s); KPI windows start afresh", exc)
            engine = KpiEngine.from_site(loaded.site, loaded.profiles, clock, monotonic)
    seed_histories(loaded, engine)
    return engine


def seed_histories(loaded: LoadedSite, engine: KpiEngine) -> None:
    """Seed each line's calendar months from its ``history_csv`` (agent.kpi.history); a file that no longer fits
    is logged and left out (the compile step refuses one at validate and start)."""
    assert loaded.site.kpi is not None
    for line in loaded.site.kpi.lines:
        if line.history_csv is None:
            continue
        path = loaded.path.parent / line.history_csv
        try:
            log.info("%s", engine.seed_history(line.name, parse_history(path.read_text("utf-8"), str(path)), str(path)))
        except (OSError, HistoryError) as exc:
            log.error("kpi: line %s: history not seeded: %s", line.name, exc)


def kpi_state_file(loaded: LoadedSite) -> KpiStateFile:
    return KpiStateFile(state_dir(loaded) / STATE_FILE)


def open_spool(loaded: LoadedSite, clock: Callable[[], float] = time.time) -> SqliteSpool:
    """Lock the state directory (one agent per directory, for as long as the spool is open), then open the spool:
    a corrupt file is moved aside and a new one started, and a reserve is kept for a full disk. Raises
    StateDirError when an operator must act (not writable, held by another agent), SpoolError otherwise."""
    lock = StateDirLock.acquire(state_dir(loaded))
    try:
        return SqliteSpool.open(
            loaded.site.spool.resolve_path(state_dir(loaded)),
            loaded.site.spool,
            clock,
            replace_corrupt=True,
            reserve_bytes=RESERVE_BYTES,
            lock=lock,
        )
    except BaseException:
        lock.release()
        raise


def topics_of(loaded: LoadedSite) -> Topics:
    prefix = loaded.site.mqtt.topic_prefix if loaded.site.mqtt else MqttConfig.model_fields["topic_prefix"].default
    return Topics(prefix, loaded.site.site, loaded.site.gateway)


@contextlib.asynccontextmanager
async def open_sink(
    loaded: LoadedSite, spool: SqliteSpool, *, boot: str, clock: Callable[[], float]
) -> AsyncIterator[MqttSink | None]:
    """The MQTT sink, or None when the site has no mqtt section (then the spool only fills, and says so)."""
    mqtt = loaded.site.mqtt
    if mqtt is None:
        log.warning("no mqtt section in %s: samples and KPIs are spooled but not published", loaded.path)
        yield None
        return
    sink = MqttSink(
        mqtt,
        spool,
        site=loaded.site.site,
        gateway=loaded.site.gateway,
        boot=boot,
        version=__version__,
        config_hash=loaded.config_hash,
        clock=clock,
    )
    async with sink:
        yield sink
