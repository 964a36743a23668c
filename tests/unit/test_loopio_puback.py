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
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion, _ConnectionState

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


def _state(client: paho.Client, infos: list[paho.MQTTMessageInfo]) -> tuple[Any, ...]:
    return (
        sorted(client._out_messages),
        [client._out_messages[i.mid].state for i in infos if i.mid in client._out_messages],
        [i._published for i in infos],
        client._inflight_messages,
    )


def _read_acks(cls: type[paho.Client], wire: list[bytes], n: int, max_inflight: int) -> tuple[Any, ...]:
    """n messages waiting, then ``wire`` (each item one send by the broker) read through the client's own reader
    from a socket, as the event loop's reader would call it."""
    import socket

    client, calls = _client(cls, max_inflight)
    infos = _waiting(client, n)
    ours, broker = socket.socketpair()
    ours.setblocking(False)
    client._sock = ours
    try:
        for chunk in wire:
            broker.sendall(chunk)
            client.loop_read()
            while isinstance(client, CoalescingClient) and client.buffered():
                client.loop_read()
    finally:
        client._sock = None
        ours.close()
        broker.close()
    return ([(mid, reason.value, reason.is_failure) for mid, reason in calls], *_state(client, infos))


def _puback(mid: int, tail: bytes = b"") -> bytes:
    return bytes([_PUBACK, 2 + len(tail)]) + mid.to_bytes(2, "big") + tail


@pytest.mark.parametrize(
    ("wire", "max_inflight"),
    [
        ([b"".join(_puback(m) for m in range(1, 9))], 20),  # a burst's acks in one read
        ([b"".join(_puback(m, b"\x00") for m in range(1, 9))], 20),  # reason 0 spelled out
        ([_puback(1) + _puback(2, b"\x87") + _puback(3)], 20),  # a refusal between two plain ones
        ([_puback(1) + _puback(2)[:3], _puback(2)[3:] + _puback(3)], 20),  # a packet split across reads
        ([_puback(1) + bytes([0xD0, 0]) + _puback(2)], 20),  # a PINGRESP between them
        ([b"".join(_puback(m) for m in (1, 2, 3, 40))], 2),  # window of two: queued ones released in order
    ],
    ids=["plain", "reason-0", "refused-between", "split", "pingresp-between", "window-of-two"],
)
def test_the_burst_reader_leaves_paho_in_the_same_state_as_paho(wire: list[bytes], max_inflight: int) -> None:
    ours = _read_acks(CoalescingClient, wire, 8, max_inflight)
    assert ours == _read_acks(paho.Client, wire, 8, max_inflight)
    assert ours[0], "some message was acked"


def test_publish_leaves_paho_in_the_same_state_and_sends_the_same_bytes() -> None:
    import socket

    def run(cls: type[paho.Client], qos: int, max_inflight: int) -> tuple[Any, ...]:
        client, _ = _client(cls, max_inflight)
        ours, broker = socket.socketpair()
        ours.setblocking(False)
        client._sock = ours
        client._state = _ConnectionState.MQTT_CS_CONNECTED
        try:
            infos = [client.publish("plant/a/b", bytes([k]) * 50, qos=qos) for k in range(4)]
            client.loop_write()
            broker.setblocking(False)
            sent = broker.recv(65536)
        finally:
            client._sock = None
            ours.close()
            broker.close()
        msgs = [client._out_messages[i.mid] for i in infos]
        fields = [(m.mid, m.topic, m.payload, m.qos, m.retain, m.dup, m.state, m.properties) for m in msgs]
        return sent, [(i.mid, i.rc, i.is_published()) for i in infos], fields, client._inflight_messages

    for qos in (1, 2):
        for max_inflight in (20, 2):
            assert run(CoalescingClient, qos, max_inflight) == run(paho.Client, qos, max_inflight)


def test_a_lean_info_still_wakes_a_waiter() -> None:
    import threading

    client, _ = _client(CoalescingClient, 20)
    (info,) = _waiting(client, 1)
    assert type(info) is not paho.MQTTMessageInfo  # the lean one
    info.rc = MQTTErrorCode.MQTT_ERR_SUCCESS  # as if sent (the client is not connected)
    done = threading.Event()

    def wait() -> None:
        info.wait_for_publish(timeout=None)
        done.set()

    waiter = threading.Thread(target=wait)
    waiter.start()
    client._in_packet["command"] = _PUBACK
    client._in_packet["packet"] = bytearray(info.mid.to_bytes(2, "big"))
    client._handle_pubackcomp("PUBACK")
    waiter.join(5)
    assert done.is_set() and info.is_published()
