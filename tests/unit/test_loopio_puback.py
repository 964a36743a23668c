"""CoalescingClient's own PUBACK path: a plain successful PUBACK (two bytes, or three with reason 0) leaves paho's
state exactly as paho's own handler does (on_publish and its arguments, the message out of the queue, its info
published, the in-flight count, the next queued message released), with one shared success ReasonCode instead of new
objects; a PUBACK with a failure reason goes through paho's handler. Each case runs on a plain paho client and on
ours and compares the two. The clients are not connected: the PUBACK bytes are handed to the handler as paho's
reader would, after the messages were put in the state they have while waiting for their PUBACK."""

from __future__ import annotations

from typing import Any

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from agent.sinks import loopio
from agent.sinks.loopio import CoalescingClient

_PUBACK = 0x40


def _client(cls: type[paho.Client], max_inflight: int) -> tuple[paho.Client, list[tuple[int, Any]]]:
    client = cls(CallbackAPIVersion.VERSION2, client_id="t", protocol=MQTTProtocolVersion.MQTTv5)
    client.max_inflight_messages_set(max_inflight)
    calls: list[tuple[int, Any]] = []
    client.on_publish = lambda _c, _u, mid, reason, _props: calls.append((mid, reason))
    return client, calls


def _waiting(client: paho.Client, n: int) -> list[paho.MQTTMessageInfo]:
    """n QoS 1 messages; as many as the in-flight window takes wait for their PUBACK, the rest are queued."""
    infos = [client.publish("t/a", bytes([k]), qos=1) for k in range(n)]
    for info in infos:
        msg = client._out_messages[info.mid]
        if client._inflight_messages < client._max_inflight_messages:
            client._inflight_messages += 1
            msg.state = paho.mqtt_ms_wait_for_puback
        else:
            msg.state = paho.mqtt_ms_queued
    return infos


def _after_puback(cls: type[paho.Client], tail: bytes, mid_shift: int = 0, max_inflight: int = 20) -> tuple[Any, ...]:
    client, calls = _client(cls, max_inflight)
    infos = _waiting(client, 2)
    client._in_packet["command"] = _PUBACK
    client._in_packet["packet"] = bytearray((infos[0].mid + mid_shift).to_bytes(2, "big") + tail)
    client._handle_pubackcomp("PUBACK")
    return (
        [(mid, reason.value, reason.is_failure) for mid, reason in calls],
        sorted(client._out_messages),
        [client._out_messages[i.mid].state for i in infos if i.mid in client._out_messages],
        [i._published for i in infos],
        client._inflight_messages,
    )


@pytest.mark.parametrize(
    ("tail", "mid_shift", "max_inflight"),
    [(b"", 0, 20), (b"\x00", 0, 20), (b"\x87", 0, 20), (b"", 5, 20), (b"", 0, 1)],
    ids=["plain", "reason-0", "not-authorized", "unknown-mid", "window-of-one"],
)
def test_our_puback_handling_leaves_paho_in_the_same_state_as_paho(
    tail: bytes, mid_shift: int, max_inflight: int
) -> None:
    ours = _after_puback(CoalescingClient, tail, mid_shift, max_inflight)
    assert ours == _after_puback(paho.Client, tail, mid_shift, max_inflight)
    if not mid_shift:
        assert ours[0][0][0] > 0 and ours[3][0], "the acked message is published"


def test_a_plain_puback_takes_the_short_path_with_the_shared_success_code() -> None:
    client, calls = _client(CoalescingClient, 20)
    (info,) = _waiting(client, 1)
    client._in_packet["command"] = _PUBACK
    client._in_packet["packet"] = bytearray(info.mid.to_bytes(2, "big"))
    client._handle_pubackcomp("PUBACK")
    assert calls == [(info.mid, loopio._PUBACK_OK)] and calls[0][1] is loopio._PUBACK_OK
