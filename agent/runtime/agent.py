# size: one class, the agent process (run, emit, KPI and status loops, reload, signals) over shared state
"""The agent process: compiled site -> sources -> samples -> KPI engine -> spool -> MQTT sink.

Structured concurrency: one TaskGroup holds a task per source (a Modbus TCP device, a serial bus or TCP gateway,
an OPC UA endpoint), the group commit, the sink, the KPI timer, the status publisher, the loop-lag monitor and the systemd watchdog.
A device's fault stays inside its source's task (sources never raise for device faults); a bug in any task
propagates, the group cancels the rest, the process exits non-zero and systemd restarts it.

Order of work for one poll (all on the event loop): allocate the next ``seq``, encode the payload, append it to
the spool (group commit: the polls that finish within ``spool.group_commit_ms`` of the first share one
transaction, committed before anything is published), offer it to the sink (published at once when the session is
up and nothing is queued ahead of it); the KPI engine is fed as the poll arrives.
Back-pressure: a source awaits ``emit``; nothing is buffered in memory outside the spool but the polls of the open
group commit window (``spool.group_commit_ms``, committed by a task of their own).

Signals: SIGTERM/SIGINT stop polling, evaluate and spool the KPIs once more, give the sink ``flush_timeout_s`` to
publish what is spooled, and close the spool. SIGHUP reloads the site file: sources whose fingerprint is
unchanged keep polling without a gap, changed ones restart, removed ones stop, new ones start; an invalid new
config is logged with its errors and the running one goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
import uuid
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from agent import __version__
from agent.config.load import LoadedSite
from agent.errors import ConfigError
from agent.model import PollResult
from agent.runtime.compile import CompiledSite, compile_site
from agent.runtime.kpistate import KpiStateFile
from agent.runtime.monitor import Liveness, LoopLagMonitor, Percentiles, Ring, poll_jitter_s, status_line
from agent.runtime.outbox import Turn, encode_poll
from agent.runtime.parts import (
    Parts,
    build_kpi_engine,
    build_sources,
    kpi_state_file,
    open_sink,
    open_spool,
    topics_of,
)
from agent.runtime.prometheus import Family, PrometheusServer, families
from agent.runtime.reload import plan_reload
from agent.runtime.supersede import FinalisedWindows, SupersedingReader
from agent.runtime.webview import Hints, web_page
from agent.sinks.limits import MAX_MESSAGE_BYTES
from agent.sources.base import Polling, Source
from agent.sources.modbus.device import DevicePoller
from agent.sources.modbus.schedule import Clock, SystemClock
from agent.sources.modbus.source import ModbusSource
from agent.systemd.notify import SystemdNotifier
from agent.web.live import LiveState
from agent.wire import encode_kpis

log = logging.getLogger("agent.runtime")


class Agent:
    """One running agent. ``await Agent(path).run()`` returns when stopped by ``stop()`` or a signal."""

    def __init__(
        self,
        site_path: Path,
        *,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] | None = None,
        notifier: SystemdNotifier | None = None,
        flush_timeout_s: float = 5.0,
        install_signal_handlers: bool = True,
        hints: Hints | None = None,
        poll_clock: Clock | None = None,
    ) -> None:
        self.site_path = site_path
        self.clock = clock
        # the polls' schedule (tests inject a simulated one); one wall clock for every source, so the devices due at
        # one instant share its timer, after a reload too
        self.poll_clock: Clock = poll_clock if poll_clock is not None else SystemClock()
        # the KPI engine's clock-step handling compares the wall clock with this one (not with a simulated clock)
        self.monotonic = monotonic if monotonic is not None else time.monotonic if clock is time.time else None
        self._kpi_state: KpiStateFile | None = None
        self._kpi_snapshot: tuple[int, bytes] | None = None
        self._finals = FinalisedWindows()  # finalised windows: their provisional values are not replayed
        self._replay: SupersedingReader | None = None
        self.notifier = notifier or SystemdNotifier()
        self.flush_timeout_s = flush_timeout_s
        self.install_signal_handlers = install_signal_handlers
        self.boot = uuid.uuid4().hex
        self.hints = hints  # probe's fault hints, for the web page (the command starting the agent passes them)
        self.live: LiveState | None = None  # what the web page shows beyond health(); None while it is off
        self.started_ts = clock()
        self.reloaded_ts: float | None = None
        self.seq = 0
        # on the wall clock, the lag probe wakes with the devices polled at whole seconds: no wake-up of its own
        wall = self.poll_clock if isinstance(self.poll_clock, SystemClock) else None
        self.loop_lag = LoopLagMonitor(1.0, wall) if wall is not None else LoopLagMonitor()
        self.jitter = Ring()
        self.spool_latency = Ring()
        self.polls = 0
        self._turn = Turn()  # polls of the open group commit window, not yet spooled
        self._commit_due = asyncio.Event()  # set by the first poll of a window; _commit_loop commits the window
        self._burst_done = asyncio.Event()  # set when no source is mid-poll (or the window passed): commit now
        self.polling = Polling(self._burst_done.set)  # shared by the Modbus sources
        self._stopping = asyncio.Event()
        self._reload_requested = asyncio.Event()
        self._source_tasks: dict[str, tuple[Source, asyncio.Task[None]]] = {}
        self._other_tasks: list[asyncio.Task[None]] = []
        self._tg: asyncio.TaskGroup | None = None
        self._liveness: Liveness | None = None
        self.compiled: CompiledSite = compile_site(site_path)  # plans and checks before any socket or READY
        self.loaded: LoadedSite = self.compiled.loaded
        self.parts: Parts | None = None
        self._intervals: dict[str, float] = {}
        self._tags: dict[str, dict[str, str]] = {}
        self._apply_device_meta(self.loaded)

    # ---- lifecycle -------------------------------------------------------------------------------------------

    def stop(self) -> None:
        self._stopping.set()

    def reload(self) -> None:
        self._reload_requested.set()

    async def run(self) -> None:
        loaded = self.loaded
        site = loaded.site
        spool = open_spool(loaded, self.clock)
        try:
            self._kpi_state = kpi_state_file(loaded)
            kpi = build_kpi_engine(loaded, self.clock, self.monotonic, self._kpi_state)
            self._replay = SupersedingReader(spool, self._finals)
            async with open_sink(loaded, spool, self._replay, boot=self.boot, clock=self.clock) as sink:
                kpi_interval = site.kpi.publish_interval_s if site.kpi is not None else 60.0
                self.parts = Parts(spool, sink, kpi, topics_of(loaded), kpi_interval)
                self._install_signals()
                mon = site.monitoring
                metrics: contextlib.AbstractAsyncContextManager[Any] = (
                    PrometheusServer(mon.prometheus_host, mon.prometheus_port, self.prometheus_metrics)
                    if mon.prometheus_port is not None
                    else contextlib.nullcontext()
                )
                async with web_page(self, self.hints) as web, metrics:  # page first: /metrics up = page up
                    self.notifier.ready(f"polling {len(site.devices)} devices")
                    log.info(
                        "agent %s started: site %s, gateway %s, %d devices, boot %s",
                        __version__,
                        site.site,
                        site.gateway,
                        len(site.devices),
                        self.boot,
                    )
                    await self._run_tasks(web.run if web is not None else None)
        finally:
            spool.close()
            self.notifier.close()
            self._remove_signals()

    async def _run_tasks(self, web: Callable[[], Coroutine[Any, Any, None]] | None) -> None:
        assert self.parts is not None
        async with asyncio.TaskGroup() as tg:
            self._tg = tg
            for source in build_sources(self.compiled, self.clock, self.poll_clock):
                self._start_source(source)
            self._other_tasks.append(tg.create_task(self._commit_loop(), name="group-commit"))
            if self.parts.sink is not None:
                self._other_tasks.append(tg.create_task(self.parts.sink.run(), name="sink"))
            self._other_tasks.append(tg.create_task(self._kpi_loop(), name="kpi"))
            self._other_tasks.append(tg.create_task(self._status_loop(), name="status"))
            self._other_tasks.append(tg.create_task(self.loop_lag.run(), name="loop-lag"))
            self._other_tasks.append(tg.create_task(self.notifier.watchdog(self._alive), name="watchdog"))
            self._other_tasks.append(tg.create_task(self.notifier.status_updates(self._status_line), name="sd-status"))
            self._other_tasks.append(tg.create_task(self._reload_loop(), name="reload"))
            if web is not None:  # the page's push to its viewers
                self._other_tasks.append(tg.create_task(web(), name="web"))
            await self._stopping.wait()
            await self._shutdown()

    async def _shutdown(self) -> None:
        self.notifier.stopping()
        log.info("stopping: %d sources", len(self._source_tasks))
        for _, task in self._source_tasks.values():
            task.cancel()
        await asyncio.gather(*(t for _, t in self._source_tasks.values()), return_exceptions=True)
        self._commit_turn()
        self._spool_kpis(self.clock())
        if self._kpi_snapshot is not None and self._kpi_state is not None:
            self._kpi_state.save(self._kpi_snapshot)
        parts = self.parts
        if parts is not None and parts.sink is not None:
            parts.sink.wake()
            drained = await parts.sink.flush(self.flush_timeout_s)
            if not drained:
                log.info("stopping: %d messages stay in the spool for the next start", parts.spool.stats().depth)
        for task in self._other_tasks:
            task.cancel()

    # ---- sources ---------------------------------------------------------------------------------------------

    def _start_source(self, source: Source) -> None:
        assert self._tg is not None
        if isinstance(source, ModbusSource):
            source.polling = self.polling
        task = self._tg.create_task(source.run(self._emit), name=f"source:{source.name}")
        self._source_tasks[source.name] = (source, task)

    async def _emit(self, result: PollResult) -> None:
        """Durable first: the poll reaches the sink only once the spool committed it (the commit task, within
        ``spool.group_commit_ms``); the KPI engine takes its samples at once (in memory only)."""
        parts = self.parts
        assert parts is not None
        site = self.loaded.site
        topic = parts.topics.samples(result.device)
        payloads = encode_poll(
            result, site=site.site, gateway=site.gateway, boot=self.boot, first_seq=self.seq + 1,
            tags=self._tags.get(result.device, {}), topic=topic,
            max_message_bytes=site.mqtt.max_message_bytes if site.mqtt is not None else MAX_MESSAGE_BYTES,
        )  # fmt: skip
        for payload in payloads:
            self.seq += 1
            self._turn.items.append((topic, payload, "samples", self.seq, result.ts))
        if len(self._turn.items) == len(payloads):  # the first poll of a window: commit it in group_commit_ms
            self._burst_done.clear()  # or once the sources' polls in progress are all in (Polling)
            self._commit_due.set()
        if parts.kpi is not None:
            good = result.good
            if good is not None:
                parts.kpi.ingest_good(good)
            else:
                parts.kpi.ingest(result.samples)
        # PollResult.ts is when the poll started (its slot); the last reply came duration_s later.
        self.spool_latency.add(self.clock() - (result.ts + result.duration_s))
        interval = self._intervals.get(result.device)
        if interval:
            self.jitter.add(abs(poll_jitter_s(result.ts, interval)))
        self.polls += 1
        if self.live is not None:
            self.live.on_poll(result)

    async def _commit_loop(self) -> None:
        """Group commit: the polls that reach ``_emit`` within ``spool.group_commit_ms`` of the first go to the spool
        in one transaction, then to the sink; the window closes early once no source is mid-poll (``Polling``: the
        step's burst is complete), so a burst costs no timer wake-up of its own. A task of its own, so no source
        waits for the window (a serial bus polls its next device at once) and a failing commit propagates like any
        bug. Stopping commits what is left (``_shutdown``)."""
        window_s = self.loaded.site.spool.group_commit_ms / 1000.0  # a spool setting: applied on restart
        loop = asyncio.get_running_loop()
        while True:
            await self._commit_due.wait()
            self._commit_due.clear()
            if window_s <= 0 or self._burst_done.is_set():
                await asyncio.sleep(0)  # the polls that finish in this loop turn
            else:
                timer = loop.call_later(window_s, self._burst_done.set)
                try:
                    await self._burst_done.wait()
                finally:
                    timer.cancel()
            self._commit_turn()

    def _commit_turn(self) -> None:
        parts = self.parts
        assert parts is not None
        self._turn.commit(parts.spool, parts.sink)

    def _alive(self) -> str | None:
        """For the watchdog: None while the loop, the spool and the publisher are alive (devices may all be down)."""
        parts = self.parts
        assert parts is not None
        if self._liveness is None:
            keepalive_s = self.loaded.site.mqtt.keepalive_s if self.loaded.site.mqtt is not None else 30
            self._liveness = Liveness(self.loop_lag, max(3.0 * keepalive_s, self.notifier.watchdog_s or 0.0))
        tasks = {t.get_name(): t for t in self._other_tasks if t.get_name() in ("sink", "loop-lag")}
        sink = parts.sink.stats() if parts.sink is not None else None
        return self._liveness.check(tasks, parts.spool.stats().depth, sink)

    def _status_line(self) -> str:
        parts = self.parts
        assert parts is not None
        devices = [h for source, _ in self._source_tasks.values() for h in source.health()]
        return status_line(devices, parts.spool.stats().depth, parts.sink.stats() if parts.sink is not None else None)

    # ---- KPIs and status -------------------------------------------------------------------------------------

    def _spool_kpis(self, now: float) -> None:
        parts = self.parts
        if parts is None or parts.kpi is None:
            return
        values = parts.kpi.evaluate(now)
        if self.live is not None:
            self.live.on_kpis(values, now)
        for notice in parts.kpi.notices():
            log.warning("%s", notice)
        if self._kpi_state is not None:
            self._kpi_snapshot = self._kpi_state.snapshot(parts.kpi, now)
        if not values:
            return
        site = self.loaded.site
        self._finals.record(values)
        self.seq += 1
        payload = encode_kpis(site=site.site, gateway=site.gateway, boot=self.boot, seq=self.seq, ts=now, kpis=values)
        topic = parts.topics.kpi()
        self._commit_turn()  # ids in seq order
        record_id = parts.spool.append(topic, payload, "kpi", self.seq, now)
        if parts.sink is not None and record_id is not None:
            parts.sink.offer(record_id, topic, payload)

    async def _kpi_loop(self) -> None:
        parts = self.parts
        if parts is None or parts.kpi is None:
            return
        interval = parts.kpi_interval_s
        while True:
            now = self.clock()
            await asyncio.sleep(interval - now % interval)
            self._spool_kpis(self.clock())
            taken, self._kpi_snapshot = self._kpi_snapshot, None
            if taken is not None and self._kpi_state is not None:
                await asyncio.to_thread(self._kpi_state.save, taken)  # fsync off the event loop

    async def _status_loop(self) -> None:
        parts = self.parts
        if parts is None or parts.sink is None:
            return
        while True:
            await asyncio.sleep(self.loaded.site.monitoring.status_interval_s)
            parts.sink.publish_health(self.health())

    def health(self) -> dict[str, Any]:
        """Everything the status topic and /metrics report."""
        parts = self.parts
        devices = [h for source, _ in self._source_tasks.values() for h in source.health()]
        lag = Percentiles.of(self.loop_lag.lag)
        jitter = Percentiles.of(self.jitter)
        latency = Percentiles.of(self.spool_latency)
        spool = parts.spool.stats() if parts else None
        return {
            "devices": {
                h.device: {
                    "state": h.state,
                    "last_success_ts": h.last_success_ts,
                    "consecutive_failures": h.consecutive_failures,
                    "last_poll_duration_s": h.last_poll_duration_s,
                    "requests": h.requests,
                    "retries": h.retries,
                    "connection_drops": h.connection_drops,
                    "errors": dict(h.errors_by_kind),
                }
                for h in devices
            },
            "polls": self.polls,
            "loop_lag_s": {"p50": lag.p50, "p99": lag.p99, "max": lag.max},
            "poll_jitter_s": {"p50": jitter.p50, "p99": jitter.p99},
            "poll_to_spool_s": {"p50": latency.p50, "p99": latency.p99},
            "spool": spool.as_dict() if spool is not None else {},
            "sink": {**parts.sink.stats(), **self._replay.stats()} if parts and parts.sink and self._replay else {},
        }

    def modbus_pollers(self) -> list[DevicePoller]:
        """The running Modbus sources' device pollers (for the web page's raw registers)."""
        sources = [s for s, _ in self._source_tasks.values() if isinstance(s, ModbusSource)]
        return [p for source in sources for p in source.pollers]

    def prometheus_metrics(self) -> list[Family]:
        """/metrics: the same snapshot as the status topic, in Prometheus' conventions."""
        return families(self.health())

    # ---- reload ----------------------------------------------------------------------------------------------

    async def _reload_loop(self) -> None:
        while True:
            await self._reload_requested.wait()
            self._reload_requested.clear()
            self.notifier.reloading()
            try:
                self._apply_reload()
            finally:
                self.notifier.ready("reloaded")

    def _apply_reload(self) -> None:
        try:
            compiled = compile_site(self.site_path)
        except ConfigError as exc:
            log.error("reload: %s is invalid, the running config goes on:", self.site_path)
            for issue in exc.issues:
                log.error("reload: %s", issue)
            return
        new, old = compiled.loaded, self.loaded
        if (
            new.site.mqtt != old.site.mqtt
            or new.site.web != old.site.web
            or new.site.spool != old.site.spool
            or new.site.site != old.site.site
            or new.site.gateway != old.site.gateway
        ):
            log.warning("reload: mqtt, web, spool, site or gateway changed; restart the service to apply those")
        wanted = {s.name: s for s in build_sources(compiled, self.clock, self.poll_clock)}
        plan = plan_reload({name: source for name, (source, _) in self._source_tasks.items()}, wanted)
        for name in plan.cancel:
            self._source_tasks.pop(name)[1].cancel()
        self.compiled, self.loaded = compiled, new
        self._apply_device_meta(new)
        for source in plan.start.values():
            self._start_source(source)
        self.reloaded_ts = self.clock()
        if self.parts is not None and new.site.kpi != old.site.kpi:
            self.parts.kpi = build_kpi_engine(new, self.clock, self.monotonic, self.parts.kpi)
        log.info(
            "reload: %s applied; restarted %s; started %s; stopped %s; %d unchanged sources kept polling",
            self.site_path,
            plan.restarted or "none",
            plan.started or "none",
            plan.stopped or "none",
            plan.kept,
        )

    def _apply_device_meta(self, loaded: LoadedSite) -> None:
        self._intervals = {d.name: d.interval_s for d in loaded.site.devices if hasattr(d, "interval_s")}
        self._tags = {d.name: dict(getattr(d, "tags", {})) for d in loaded.site.devices}

    # ---- signals ---------------------------------------------------------------------------------------------

    def _install_signals(self) -> None:
        if not self.install_signal_handlers:
            return
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, self.stop)
        loop.add_signal_handler(signal.SIGINT, self.stop)
        loop.add_signal_handler(signal.SIGHUP, self.reload)

    def _remove_signals(self) -> None:
        if not self.install_signal_handlers:
            return
        with contextlib.suppress(RuntimeError):
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                loop.remove_signal_handler(sig)
