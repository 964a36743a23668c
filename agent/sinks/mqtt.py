"""MqttSink: publishes what the spool holds over one paho-mqtt 2.x connection, QoS 1, and acks the spool on PUBACK.

Lifecycle::

    async with MqttSink(config, spool, site=..., gateway=..., boot=..., version=..., config_hash=...) as sink:
        await sink.run()      # connects in the background and forwards until cancelled; wake() after appends
    # on exit: a retained "offline" status, then a clean DISCONNECT

Event-loop integration (``loopio``): paho's network loop runs on the asyncio loop through ``add_reader``/
``add_writer`` and a one-second ``loop_misc`` tick for keepalive. Every paho callback, hence every spool call, runs
on the event-loop thread: no locks, no thread handing PUBACKs over, and the SQLite connection stays on one thread.
The only blocking paho call, ``connect()`` (DNS, TCP, TLS handshake, bounded by ``connect_timeout_s``), runs in a
worker thread; sockets are registered with the loop once it returns.

CONNACK wait: bounded by the keepalive (paho closes a connection that stays silent for ``keepalive_s``); a hung
broker in session is detected within about two keepalives.

Flow control: at most ``max_inflight`` spooled messages (capped by an MQTT 5 broker's Receive Maximum, which
paho itself ignores) are handed to paho and not yet acknowledged. paho keeps
them across a reconnect and resends them (DUP) itself, so the sink never republishes what paho still holds.
Records in the spool when a connection comes up are the *backlog*; they are replayed oldest first at
``replay_rate_msgs_s``. ``replay_order: live_first`` sends fresh records first and fills the rest of the window
with backlog; ``backlog_first`` keeps strict spool order until the backlog is drained.

A v5 PUBACK with a failure reason (e.g. 0x87 Not authorized from a broker ACL) is final: the record is deleted,
counted as ``refused`` and logged once per topic; the sink keeps running. (An MQTT 3.1.1 broker cannot report
an ACL refusal; mosquitto acknowledges and discards.)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from agent.config.mqtt import MqttConfig
from agent.errors import SinkError
from agent.sinks.connect import ClosingContext, backoff_s, describe, tls_context
from agent.sinks.forward import Forwarder, LiveRecord, OutgoingRecord, SpoolReader
from agent.sinks.loopio import CoalescingClient, LoopIo
from agent.sinks.topics import check_level, status_topic
from agent.wire import StatusMessage, encode_status

log = logging.getLogger(__name__)

_TICK_S = 1.0
_STABLE_S = 10.0  # a session that lasted this long resets the reconnect backoff


class MqttSink:
    def __init__(
        self,
        config: MqttConfig,
        spool: SpoolReader,
        *,
        site: str,
        gateway: str,
        boot: str,
        version: str,
        config_hash: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._config = config
        self._spool = spool
        self._site = check_level(site, "site")
        self._gateway = check_level(gateway, "gateway")
        self._boot = boot
        self._version = version
        self._config_hash = config_hash
        self._clock = clock
        self._where = f"mqtt {config.host}:{config.effective_port}"
        self._status_topic = status_topic(config.topic_prefix, site, gateway)
        self._client: paho.Client | None = None
        self._tls: ssl.SSLContext | None = None
        self._io = LoopIo()
        self._connected = asyncio.Event()
        self._down = asyncio.Event()
        self._wake = asyncio.Event()
        self._closing = False
        self._refused = False  # the broker answered this attempt's CONNECT with a refusal
        self._session_ok = False  # the broker accepted this attempt's CONNECT
        self._need_birth = False
        self._forward = Forwarder(
            spool,
            self._publish_record,
            max_inflight=config.max_inflight,
            replay_rate_msgs_s=config.replay_rate_msgs_s,
            backlog_first=config.replay_order == "backlog_first",
        )
        self._refused_topics: set[str] = set()
        self._failing: str | None = None
        self._down_since: float | None = None
        self._counts = dict.fromkeys(("acked", "refused", "rejected", "connects", "failures"), 0)
        self.last_error = ""

    # -- lifecycle ----------------------------------------------------------------------------------------------

    async def __aenter__(self) -> MqttSink:
        self._client = self._make_client()
        self._io.attach(self._client)
        for warning in self._config.warnings():
            log.warning("%s", warning)
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        client = self._client
        if client is None:
            return
        self._closing = True
        if self._connected.is_set():
            client.publish(self._status_topic, self._status("offline"), qos=1, retain=True)
            client.disconnect()
            for _ in range(100):  # the socket is non-blocking; a few small packets go out at once
                if not client.want_write() or client.loop_write() != MQTTErrorCode.MQTT_ERR_SUCCESS:
                    break
        self._forward.flush_acks()
        sock = client.socket()
        if sock is not None:
            self._io.unwatch(sock)
        with contextlib.suppress(Exception):
            client._sock_close()  # paho has no public close; the socket must not outlive the sink
        self._connected.clear()

    async def run(self) -> None:
        """Connect, reconnect with backoff, and forward spooled records until cancelled."""
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._connection_loop(), name="mqtt-connection")
            tg.create_task(self._forward_loop(), name="mqtt-forward")
            tg.create_task(self._tick_loop(), name="mqtt-tick")

    def wake(self) -> None:
        """Tell the sink that records were appended. Cheap; call after every append."""
        self._wake.set()

    def offer(self, record_id: int, topic: str, payload: bytes) -> None:
        """Like :meth:`wake` for a record just appended, but publish it at once when the session is up and it is
        next in line (no read-back, no wait for the forwarding task); else the forwarding task takes it."""
        if (
            self._connected.is_set()
            and not self._need_birth
            and self._forward.offer(LiveRecord(record_id, topic, payload))
        ):
            return
        self._wake.set()

    def stats(self) -> dict[str, Any]:
        lat = sorted(self._forward.latencies)
        pick = (lambda q: round(lat[min(len(lat) - 1, int(q * len(lat)))] * 1000.0, 3)) if lat else (lambda q: None)
        return {
            "connected": self._connected.is_set(),
            "inflight": self._forward.inflight,
            "published": self._forward.published,
            **self._counts,
            "replaying": self._forward.replaying,
            "publish_latency_ms": {"p50": pick(0.5), "p99": pick(0.99), "max": pick(1.0)},
            "last_error": self.last_error,
        }

    async def flush(self, timeout_s: float) -> bool:
        """Wait (at most ``timeout_s``) until every spooled record is acknowledged; True if the spool is empty.
        Returns False at once when there is no session: nothing would drain. For a clean stop; run() must run."""
        deadline = time.monotonic() + timeout_s
        self._wake.set()
        while True:
            if self._forward.drained():
                return True
            if not self._connected.is_set() or time.monotonic() >= deadline:
                return False
            await asyncio.sleep(0.02)

    def publish_health(self, health: dict[str, Any]) -> bool:
        """Publish the retained status ("online") with these health figures now, if a session is up. A status is
        a snapshot, not spooled: when down, the next one replaces it. Returns whether it was handed to paho."""
        if not self._connected.is_set():
            return False
        self._publish_status("online", health)
        return True

    async def wait_connected(self, timeout_s: float) -> None:
        """Wait until a session is up (CONNACK accepted); TimeoutError otherwise. For tests and ``validate``."""
        async with asyncio.timeout(timeout_s):
            await self._connected.wait()

    # -- connection ---------------------------------------------------------------------------------------------

    def _make_client(self) -> paho.Client:
        cfg = self._config
        v5 = cfg.protocol == "5"
        client = CoalescingClient(
            CallbackAPIVersion.VERSION2,
            client_id=cfg.client_id or f"{self._site}-{self._gateway}",
            protocol=MQTTProtocolVersion.MQTTv5 if v5 else MQTTProtocolVersion.MQTTv311,
            clean_session=None if v5 else True,
            reconnect_on_failure=False,
        )
        client.connect_timeout = cfg.connect_timeout_s
        client.max_inflight_messages_set(cfg.max_inflight + 2)  # + birth and offline status
        client.max_queued_messages_set(0)
        try:
            password = cfg.read_password()
        except ValueError as exc:
            raise SinkError(f"{self._where}: {exc}") from exc
        if cfg.username is not None:
            client.username_pw_set(cfg.username, password)
        if cfg.tls is not None:
            try:
                self._tls = tls_context(cfg.tls)
            except (OSError, ssl.SSLError) as exc:
                raise SinkError(f"{self._where}: TLS files cannot be used: {describe(exc)}") from exc
            client.tls_set_context(self._tls)
            client.tls_insecure_set(not cfg.tls.check_hostname)
        client.will_set(self._status_topic, self._status("offline"), qos=1, retain=True)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        return client

    async def _connection_loop(self) -> None:
        client = self._client
        assert client is not None, "use `async with sink:` before run()"
        cfg = self._config
        attempt = 0
        while True:
            self._down.clear()
            self._refused = False
            self._session_ok = False
            started = time.monotonic()
            self._io.connecting = True
            try:
                kwargs: dict[str, Any] = {"clean_start": True} if cfg.protocol == "5" else {}
                await asyncio.to_thread(client.connect, cfg.host, cfg.effective_port, cfg.keepalive_s, **kwargs)
            except (OSError, ssl.SSLError, ValueError) as exc:
                self._io.connecting = False
                if isinstance(self._tls, ClosingContext):
                    self._tls.close_last()  # paho leaves the socket of a failed TLS handshake open
                self._failed(describe(exc))
            else:
                self._io.connecting = False
                if not self._io.watch_after_connect():
                    self._down.set()
                await self._down.wait()
            stable = self._session_ok and time.monotonic() - started > _STABLE_S
            attempt = 0 if stable else attempt + 1
            await asyncio.sleep(backoff_s(attempt, cfg.reconnect_min_s, cfg.reconnect_max_s))

    def _failed(self, why: str) -> None:
        self._counts["failures"] += 1
        message = f"{self._where}: {why}"
        self.last_error = message
        if self._down_since is None:
            self._down_since = time.monotonic()
        if why != self._failing:
            log.warning("%s; retrying with backoff up to %g s", message, self._config.reconnect_max_s)
            self._failing = why

    def _on_connect(self, client: paho.Client, _u: Any, _f: Any, reason: ReasonCode, props: Properties | None) -> None:
        if reason.is_failure:
            self._refused = True
            self._failed(f"broker refused the connection: {reason} (check mqtt.username and the password)")
            return
        self._counts["connects"] += 1
        self._session_ok = True
        if self._failing is not None or self._down_since is not None:
            down = time.monotonic() - (self._down_since or time.monotonic())
            log.warning("%s: connected again after %.1f s", self._where, down)
        else:
            log.info("%s: connected", self._where)
        self._failing = None
        self._down_since = None
        self._forward.session_up(getattr(props, "ReceiveMaximum", None))
        self._need_birth = True
        self._connected.set()
        self._wake.set()

    def _on_disconnect(self, _c: paho.Client, _u: Any, _f: Any, reason: ReasonCode, _p: Properties | None) -> None:
        if self._down.is_set():
            return  # paho reports a keepalive timeout twice (_check_keepalive, then loop_misc)
        was_connected = self._connected.is_set()
        self._connected.clear()
        self._down.set()
        if self._closing:
            return
        if was_connected:
            self._failed(f"connection lost: {reason}")
        elif not self._refused:
            hint = " (does it require a client certificate? check mqtt.tls)" if self._config.tls else ""
            self._failed(f"the broker closed the connection before accepting the session: {reason}{hint}")

    def _on_publish(self, _c: paho.Client, _u: Any, mid: int, reason: ReasonCode, _p: Properties | None) -> None:
        acked = self._forward.acked(mid)
        if acked is None:
            return
        if reason.is_failure:
            self._counts["refused"] += 1
            if acked.topic not in self._refused_topics:
                self._refused_topics.add(acked.topic)
                self.last_error = f"{self._where}: broker refused a message on {acked.topic}: {reason}"
                log.error("%s; the message is dropped and counted as refused (check the broker's ACL)", self.last_error)
        else:
            self._counts["acked"] += 1
        self._forward.flush_acks()  # cheap: the spool writes the deletions with its next transaction
        if self._forward.wants_more():  # else the forwarding task has nothing to do: no wake-up per PUBACK
            self._wake.set()

    async def _tick_loop(self) -> None:
        while True:
            await asyncio.sleep(_TICK_S)
            if self._client is not None and not self._io.connecting:
                self._client.loop_misc()
            self._forward.flush_acks()
            self._spool.flush()

    # -- forwarding ---------------------------------------------------------------------------------------------

    async def _forward_loop(self) -> None:
        while True:
            self._forward.flush_acks()
            if not self._connected.is_set():
                await self._connected.wait()
                continue
            if self._need_birth:
                self._need_birth = False
                self._publish_status("online")
            if self._forward.forward() == 0:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._forward.idle_wait(_TICK_S)):
                        await self._wake.wait()

    def _publish_record(self, record: OutgoingRecord) -> int | None:
        assert self._client is not None
        try:
            info = self._client.publish(record.topic, record.payload, qos=self._config.qos)
        except ValueError as exc:  # a topic paho refuses (wildcard) or a payload over 256 MB: never publishable
            self._counts["rejected"] += 1
            log.error(
                "%s: record %d on %r cannot be published and is dropped: %s", self._where, record.id, record.topic, exc
            )
            return None
        return info.mid

    def _publish_status(self, state: str, health: dict[str, Any] | None = None) -> None:
        assert self._client is not None
        self._client.publish(self._status_topic, self._status(state, health), qos=1, retain=True)

    def _status(self, state: str, health: dict[str, Any] | None = None) -> bytes:
        return encode_status(
            StatusMessage(
                site=self._site,
                gateway=self._gateway,
                state="online" if state == "online" else "offline",
                boot=self._boot,
                ts=self._clock(),
                version=self._version,
                config_hash=self._config_hash,
                health=health or {},
            )
        )
