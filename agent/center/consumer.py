"""The ingestor's MQTT side: one paho 2.x client, MQTT 5, persistent session, shared subscription, manual acks.

Lifecycle: ``start()`` connects in paho's network thread (``loop_start``) and reconnects on its own with backoff;
``stop()`` disconnects normally (the session stays on the broker for ``session_expiry_s``) and joins the thread.
Received messages are handed to ``deliver`` from the network thread, and ``subscribed`` is called there each time
the broker granted the subscriptions; ``ack()`` and ``publish()`` may be called from any one other thread.

Delivery contract, as the broker sees it:

- ``clean_start=False`` with a session expiry: a restarted ingestor (same ``client_id``) gets back every message it
  had received but not acknowledged, and what was queued for it meanwhile.
- ``manual_ack=True``: a PUBACK goes out only when the ingestor calls :meth:`ack`, after InfluxDB accepted the
  message's points.
- Receive Maximum = ``receive_maximum``: the broker sends at most that many un-acked messages, so a stalled
  InfluxDB stops the flow at the broker (back-pressure) instead of filling our memory.
- Every (re)connection gets a new ``generation``. An ack for a message of an older connection is not sent: if the
  broker lost the session, that packet id may now name a different message. The broker redelivers the old one,
  which is written again (idempotent) and acknowledged on the current connection.
"""

from __future__ import annotations

import logging
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from agent.center.config import CenterMqttConfig

log = logging.getLogger("agent.center")


@dataclass(frozen=True, slots=True)
class Inbound:
    generation: int
    mid: int
    qos: int
    topic: str
    payload: bytes
    received_ts: float


def share_topic(config: CenterMqttConfig) -> str:
    """The non-shared topic group members use to tell each other which seqs they received."""
    return f"{config.topic_prefix}/_center/{config.group}/seen"


def subscriptions(config: CenterMqttConfig) -> list[tuple[str, SubscribeOptions]]:
    p, g = config.topic_prefix, config.group
    shared = SubscribeOptions(qos=1)
    return [
        (f"$share/{g}/{p}/+/+/+/samples", shared),
        (f"$share/{g}/{p}/+/+/kpi", shared),
        # Not shared: MQTT 5 sends no retained messages to a shared subscription (mosquitto 2.0 does anyway), and the
        # retained status is how a starting centre learns which gateways are online. Every member writes the same
        # status points (the same keys, so once in InfluxDB).
        (f"{p}/+/+/status", SubscribeOptions(qos=1)),
        (share_topic(config), SubscribeOptions(qos=0, noLocal=True)),
    ]


class MqttConsumer:
    def __init__(
        self,
        config: CenterMqttConfig,
        deliver: Callable[[Inbound], None],
        subscribed: Callable[[], None] = lambda: None,
    ) -> None:
        self.config = config
        self._deliver = deliver
        self._subscribed = subscribed
        self.generation = 0
        self.connected = threading.Event()
        self._was_connected = False
        self._client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=config.client_id,
            protocol=mqtt.MQTTv5,
            manual_ack=True,
            reconnect_on_failure=True,
        )
        if config.tls is not None:
            tls = config.tls
            self._client.tls_set(
                ca_certs=tls.ca_file, certfile=tls.cert_file, keyfile=tls.key_file, cert_reqs=ssl.CERT_REQUIRED
            )
            self._client.tls_insecure_set(tls.insecure_skip_verify)
        if config.username:
            self._client.username_pw_set(config.username, config.password())
        self._client.reconnect_delay_set(min_delay=1, max_delay=max(1, int(config.reconnect_max_s)))
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_message = self._on_message
        self._client.on_subscribe = self._on_subscribe
        self.where = f"mqtt://{config.host}:{config.port}"

    def start(self) -> None:
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]  # reason: paho's Properties is untyped
        props.SessionExpiryInterval = self.config.session_expiry_s
        props.ReceiveMaximum = self.config.receive_maximum
        self._client.connect_async(
            self.config.host, self.config.port, keepalive=self.config.keepalive_s, clean_start=False, properties=props
        )
        self._client.loop_start()

    def stop(self) -> None:
        self.connected.clear()  # a disconnect we asked for is not a lost connection
        self._client.disconnect()
        self._client.loop_stop()

    def ack(self, item: Inbound) -> bool:
        """PUBACK one message; False when it came on an older connection (the broker will redeliver it)."""
        if item.qos == 0:
            return True
        if item.generation != self.generation or not self.connected.is_set():
            return False
        self._client.ack(item.mid, item.qos)
        return True

    def publish(self, topic: str, payload: bytes, qos: int = 0, timeout_s: float = 10.0) -> bool:
        """Publish; for QoS 1 wait (bounded) for the PUBACK. Never call from the network thread."""
        info = self._client.publish(topic, payload, qos=qos)
        if qos == 0:
            return info.rc == mqtt.MQTT_ERR_SUCCESS
        deadline = time.monotonic() + timeout_s
        while not info.is_published():
            if time.monotonic() > deadline:
                return False
            info.wait_for_publish(timeout=0.1)
        return True

    # paho network thread below

    def _on_connect(
        self, client: mqtt.Client, userdata: Any, flags: mqtt.ConnectFlags, rc: ReasonCode, props: Properties | None
    ) -> None:
        if rc.is_failure:
            log.warning("%s: %s refused the connection: %s", self.config.client_id, self.where, rc)
            return
        self.generation += 1
        client.subscribe(subscriptions(self.config))
        self.connected.set()
        state = "resumed its session" if flags.session_present else "started a new session"
        verb = "reconnected to" if self._was_connected else "connected to"
        if self._was_connected and not flags.session_present:
            log.warning(
                "%s: %s had lost this ingestor's session (broker restart without persistence, or expiry); "
                "messages it held for us are gone, gap detection will show them",
                self.config.client_id,
                self.where,
            )
        else:
            log.info("%s: %s %s and %s", self.config.client_id, verb, self.where, state)
        self._was_connected = True

    def _on_disconnect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.DisconnectFlags,
        rc: ReasonCode,
        props: Properties | None,
    ) -> None:
        if self.connected.is_set():
            log.warning("%s: lost the connection to %s: %s", self.config.client_id, self.where, rc)
        self.connected.clear()

    def _on_subscribe(
        self, client: mqtt.Client, userdata: Any, mid: int, rcs: list[ReasonCode], props: Properties | None
    ) -> None:
        refused = [str(rc) for rc in rcs if rc.is_failure]
        if refused:
            log.error("%s: %s refused subscriptions: %s", self.config.client_id, self.where, ", ".join(refused))
        else:
            log.info("%s: subscribed as group %s on %s", self.config.client_id, self.config.group, self.where)
            self._subscribed()

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        self._deliver(Inbound(self.generation, msg.mid, msg.qos, msg.topic, bytes(msg.payload), time.time()))
