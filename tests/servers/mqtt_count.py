"""A counting subscriber: the oracle of the delivery tests (after Azure IoT Edge's TestResultCoordinator).

It subscribes with QoS 1 and a persistent session (so a broker restart on persistent storage loses nothing for
it), keys every samples/kpi message on (gateway, boot, seq), and reports what is missing, how many copies arrived
and whether any two copies of one key differ in content.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from types import TracebackType

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

Key = tuple[str, str, int]


@dataclass
class Received:
    first: dict[Key, bytes] = field(default_factory=dict)
    copies: dict[Key, int] = field(default_factory=dict)
    conflicts: list[Key] = field(default_factory=list)
    order: list[Key] = field(default_factory=list)
    status: list[dict[str, object]] = field(default_factory=list)
    status_retained: list[bool] = field(default_factory=list)


class CountingSubscriber:
    def __init__(
        self,
        port: int,
        topic: str = "plant/#",
        client_id: str = "counter",
        username: str | None = None,
        password: str | None = None,
    ) -> None:
        self.port = port
        self.topic = topic
        self.received = Received()
        self._cond = threading.Condition()
        self._subscribed = threading.Event()
        self._client = paho.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, protocol=MQTTProtocolVersion.MQTTv311, clean_session=False
        )
        if username is not None:
            self._client.username_pw_set(username, password)
        self._client.max_inflight_messages_set(1000)
        self._client.reconnect_delay_set(0.05, 0.2)  # type: ignore[arg-type]  # floats work; the stub says int
        self._client.on_connect = self._on_connect
        self._client.on_message = self._on_message

    def __enter__(self) -> CountingSubscriber:
        self._client.connect("127.0.0.1", self.port, keepalive=30)
        self._client.loop_start()
        if not self._subscribed.wait(10):
            raise TimeoutError("the counting subscriber did not get its SUBACK")
        return self

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    def _on_connect(self, client: paho.Client, _u: object, _f: object, reason: object, _p: object) -> None:
        client.subscribe(self.topic, qos=1)
        client.on_subscribe = lambda *a: self._subscribed.set()

    def _on_message(self, _c: paho.Client, _u: object, msg: paho.MQTTMessage) -> None:
        doc = json.loads(msg.payload)
        with self._cond:
            r = self.received
            if doc.get("type") == "status":
                r.status.append(doc)
                r.status_retained.append(bool(msg.retain))
            else:
                key = (doc["gateway"], doc["boot"], doc["seq"])
                payload = bytes(msg.payload)
                if key in r.first:
                    r.copies[key] += 1
                    if r.first[key] != payload:
                        r.conflicts.append(key)
                else:
                    r.first[key] = payload
                    r.copies[key] = 1
                    r.order.append(key)
            self._cond.notify_all()

    def wait_until(self, what: str, condition: Callable[[Received], bool], timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while not condition(self.received):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"counting subscriber: {what} not reached in {timeout_s} s")
                self._cond.wait(min(left, 0.5))

    def wait_for_keys(self, keys: Iterable[Key], timeout_s: float) -> None:
        wanted = set(keys)

        def arrived(r: Received) -> bool:
            # Checked at every message: the length test keeps a 60k-key wait from hogging the GIL, which starved
            # the publisher under test.
            return len(r.first) >= len(wanted) and wanted.issubset(r.first.keys())

        self.wait_until(f"{len(wanted)} messages", arrived, timeout_s)

    def missing(self, keys: Iterable[Key]) -> list[Key]:
        with self._cond:
            return sorted(k for k in keys if k not in self.received.first)

    def duplicates(self) -> int:
        with self._cond:
            return sum(n - 1 for n in self.received.copies.values())
