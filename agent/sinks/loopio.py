"""paho-mqtt's network loop on the asyncio event loop: paho's ``on_socket_*`` callbacks register its socket with
``add_reader``, so every paho callback (and every spool call made from one) runs on the event-loop thread. The only
blocking paho call, ``connect()``, runs in a worker thread; while it runs (``connecting``) the socket is not
registered, and ``watch_after_connect`` registers it once ``connect()`` returned.

Writes, fewest syscalls: a packet paho queues does not wait for the socket to be reported writable; the writing
is done once at the end of the event-loop turn (``call_soon``), and ``CoalescingClient`` sends every whole packet
queued by then with one ``send()`` (a burst of polls: one syscall, not one per PUBLISH). Only when the socket
buffer is full does the socket go to ``add_writer``.

Acks, fewest objects: a successful PUBACK without properties (two bytes, or three with reason 0: what a broker sends
for every message it took) is handled by ``CoalescingClient`` with one shared success ReasonCode and one shared empty
Properties instead of two new objects per ack; paho's state changes exactly as in its own handler (on_publish, the
message out of ``_out_messages``, its info published, the in-flight window moved on). Any other PUBACK goes to paho.
The plain PUBACKs that arrive together (a burst's) are taken from the read buffer in one pass rather than through
paho's byte-at-a-time packet reader, and a spooled record's publish builds no threading.Condition (paho makes one
per message for ``wait_for_publish``, never called here).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from typing import Any, cast

import paho.mqtt.client as paho
from paho.mqtt.client import CallbackOnPublish_v1, CallbackOnPublish_v2
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

_PUBLISH = 0x30
_PUBACK = 0x40
_DISCONNECT = 0xE0
_PUBACK_OK = ReasonCode(PacketTypes.PUBACK)  # 0 Success; shared by every plain PUBACK (on_publish only reads it)
_NO_PROPERTIES = Properties(PacketTypes.PUBACK)  # type: ignore[no-untyped-call]  # paho's Properties is untyped


class CoalescingClient(paho.Client):
    """paho's client, sending the whole packets queued in one event-loop turn in one ``send()``. Packets with work
    to do after their write (a QoS 0 PUBLISH: its on_publish; DISCONNECT: the close) are sent as paho sends them.
    Reads go through a buffer: paho asks for a packet's fixed header a byte at a time (three ``recv()`` for one
    PUBACK); here one ``recv()`` takes what the socket holds and paho's reads are served from it."""

    _rbuf = b""
    _rpos = 0
    _rsock: object = None

    def _sock_recv(self, bufsize: int) -> bytes:
        if self._rsock is not self._sock:  # a new connection: nothing buffered from the old one is valid
            self._rsock, self._rbuf, self._rpos = self._sock, b"", 0
        if self._rpos >= len(self._rbuf):
            data = super()._sock_recv(65536)
            if not data:
                return data
            self._rbuf, self._rpos = data, 0
        start = self._rpos
        self._rpos = min(len(self._rbuf), start + bufsize)
        return self._rbuf[start : self._rpos]

    def _handle_pubackcomp(self, cmd: Any) -> MQTTErrorCode:
        packet = self._in_packet["packet"]
        if cmd != "PUBACK" or not (len(packet) == 2 or (len(packet) == 3 and packet[2] == 0)):
            return super()._handle_pubackcomp(cmd)
        return self._plain_puback((packet[0] << 8) | packet[1])

    def _plain_puback(self, mid: int) -> MQTTErrorCode:
        """What paho's handler does for a successful PUBACK of ``mid``, with the shared success code."""
        with self._out_message_mutex:
            if mid not in self._out_messages:
                return MQTTErrorCode.MQTT_ERR_SUCCESS
            with self._callback_mutex:
                on_publish = self.on_publish
            if on_publish is not None:
                with self._in_callback_mutex:
                    try:
                        if self._callback_api_version == CallbackAPIVersion.VERSION2:
                            cast("CallbackOnPublish_v2", on_publish)(
                                self, self._userdata, mid, _PUBACK_OK, _NO_PROPERTIES
                            )
                        else:
                            cast("CallbackOnPublish_v1", on_publish)(self, self._userdata, mid)
                    except Exception as err:  # as paho's own handler does
                        self._easy_log(paho.MQTT_LOG_ERR, "Caught exception in on_publish: %s", err)
                        if not self.suppress_exceptions:
                            raise
            msg = self._out_messages.pop(mid)
            msg.info._set_as_published()
            if msg.qos > 0:
                self._inflight_messages -= 1
                if self._max_inflight_messages > 0:
                    return self._update_inflight()
        return MQTTErrorCode.MQTT_ERR_SUCCESS

    def _packet_read(self) -> MQTTErrorCode:
        """Plain PUBACKs waiting whole in the read buffer are handled in one pass (a burst's acks come together),
        without paho's byte-at-a-time packet reader; anything else, or a packet split across reads, is paho's."""
        if self._in_packet["command"] == 0 and self._rsock is self._sock:
            buf, pos, end = self._rbuf, self._rpos, len(self._rbuf)
            taken, rc = 0, MQTTErrorCode.MQTT_ERR_SUCCESS
            while pos + 4 <= end and buf[pos] == _PUBACK:
                if buf[pos + 1] == 2:
                    size = 4
                elif buf[pos + 1] == 3 and pos + 5 <= end and buf[pos + 4] == 0:
                    size = 5
                else:
                    break
                self._rpos = pos + size
                taken += 1
                rc = self._plain_puback((buf[pos + 2] << 8) | buf[pos + 3])
                pos += size
                if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                    break
            if taken:
                with self._msgtime_mutex:
                    self._last_bytes_received = paho.time_func()
                return rc
        return super()._packet_read()

    def publish(
        self,
        topic: str,
        payload: paho.PayloadType = None,
        qos: int = 0,
        retain: bool = False,
        properties: Properties | None = None,
    ) -> paho.MQTTMessageInfo:
        """paho's publish; a QoS 1 or 2 message of bytes without properties (every spooled record) gets a
        ``_LeanInfo`` (paho builds a threading.Condition per message for ``wait_for_publish``, which the agent never
        calls) and skips paho's payload conversions. The client's state changes exactly as in paho's."""
        if qos not in (1, 2) or properties is not None or type(payload) is not bytes or not topic:
            return super().publish(topic, payload, qos, retain, properties)
        topic_bytes = topic.encode()
        self._raise_for_invalid_topic(topic_bytes)
        if len(payload) > 268435455:
            raise ValueError("Payload too large.")
        mid = self._mid_generate()
        info = _LeanInfo(mid)
        message = _new_message(mid, topic_bytes, payload, qos, retain, info)
        with self._out_message_mutex:
            if (0 < self._max_queued_messages <= len(self._out_messages)) or mid in self._out_messages:
                info.rc = MQTTErrorCode.MQTT_ERR_QUEUE_SIZE
                return info
            self._out_messages[mid] = message
            if self._max_inflight_messages == 0 or self._inflight_messages < self._max_inflight_messages:
                self._inflight_messages += 1
                message.state = paho.mqtt_ms_wait_for_puback if qos == 1 else paho.mqtt_ms_wait_for_pubrec
                rc = self._send_publish(mid, topic_bytes, payload, qos, retain, False, info, None)
                if rc == MQTTErrorCode.MQTT_ERR_NO_CONN:
                    self._inflight_messages -= 1
                    message.state = paho.mqtt_ms_publish
                info.rc = rc
            else:
                message.state = paho.mqtt_ms_queued
        return info

    def forget_message(self, mid: int) -> None:
        """Never send (or resend after a reconnect) the QoS 1 message ``mid`` again."""
        with self._out_message_mutex:
            self._out_messages.pop(mid, None)

    def buffered(self) -> bool:
        """Bytes received and not yet handed to paho (the socket will not report them readable again)."""
        return self._rsock is self._sock and self._rpos < len(self._rbuf)

    def _packet_write(self) -> MQTTErrorCode:
        out = self._out_packet
        if len(out) > 1 and out[0]["pos"] == 0:
            merged = []
            while out and out[0]["pos"] == 0 and _plain(out[0]["command"], out[0]["qos"]):
                merged.append(out.popleft())
            if len(merged) > 1:
                data = b"".join(p["packet"] for p in merged)
                out.appendleft(
                    {
                        "command": _PUBLISH,
                        "mid": 0,
                        "qos": 1,
                        "pos": 0,
                        "to_process": len(data),
                        "packet": data,
                        "info": None,
                    }
                )
            else:
                out.extendleft(merged)
        return super()._packet_write()


class _LeanInfo(paho.MQTTMessageInfo):
    """paho's MQTTMessageInfo with one Condition shared by all (notified for all) instead of one per message."""

    __slots__ = ()

    def __init__(self, mid: int) -> None:  # paho's fields, without a Condition of its own
        self.mid = mid
        self._published = False
        self._condition = _PUBLISHED
        self.rc = MQTTErrorCode.MQTT_ERR_SUCCESS
        self._iterpos = 0

    def _set_as_published(self) -> None:
        self._published = True
        with _PUBLISHED:
            _PUBLISHED.notify_all()


_PUBLISHED = threading.Condition()


def _new_message(
    mid: int, topic: bytes, payload: bytes, qos: int, retain: bool, info: paho.MQTTMessageInfo
) -> paho.MQTTMessage:
    """An outgoing paho MQTTMessage with the fields paho's publish sets (its __init__ would build another info)."""
    message = paho.MQTTMessage.__new__(paho.MQTTMessage)
    message.timestamp = paho.time_func()
    message.state = paho.mqtt_ms_invalid
    message.dup = False
    message.mid = mid
    message._topic = topic
    message.payload = payload
    message.qos = qos
    message.retain = retain
    message.info = info
    message.properties = None
    return message


def _plain(command: int, qos: int) -> bool:
    kind = command & 0xF0
    return kind != _DISCONNECT and not (kind == _PUBLISH and qos == 0)


class LoopIo:
    """Binds one paho client's socket to the running asyncio loop. Create inside the loop (``attach``)."""

    def __init__(self) -> None:
        self._client: paho.Client | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread = 0
        self.connecting = False
        self._write_soon = False

    def attach(self, client: paho.Client) -> None:
        """Install the socket callbacks on ``client``; call on the event-loop thread."""
        self._client = client
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        client.on_socket_open = self._on_socket_open
        client.on_socket_close = self._on_socket_close
        client.on_socket_register_write = self._on_register_write
        client.on_socket_unregister_write = self._on_unregister_write

    def watch_after_connect(self) -> bool:
        """Register the socket of a client whose ``connect()`` just returned; False if it has none."""
        client = self._client
        assert client is not None and self._loop is not None
        sock = client.socket()
        if sock is None:
            return False
        if isinstance(sock, socket.socket):  # small packets, one per message: no Nagle delay (SSLSocket too)
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._loop.add_reader(sock, self._readable)
        if client.want_write():
            self._loop.add_writer(sock, self._writable)
        return True

    def unwatch(self, sock: Any) -> None:
        if self._loop is not None:
            with contextlib.suppress(ValueError, OSError):
                self._loop.remove_reader(sock)
                self._loop.remove_writer(sock)

    def _on_loop_thread(self) -> bool:
        return threading.get_ident() == self._loop_thread

    def _on_socket_open(self, _c: paho.Client, _u: Any, sock: Any) -> None:
        pass  # registered by watch_after_connect once connect() returned in its worker thread

    def _on_socket_close(self, _c: paho.Client, _u: Any, sock: Any) -> None:
        if self._on_loop_thread():
            self.unwatch(sock)

    def _on_register_write(self, _c: paho.Client, _u: Any, sock: Any) -> None:
        if self._on_loop_thread() and not self.connecting and self._loop is not None and not self._write_soon:
            self._write_soon = True
            self._loop.call_soon(self._write_turn)

    def _write_turn(self) -> None:
        """End of the turn: write what paho queued; wait for the socket only if it could not take it all."""
        self._write_soon = False
        client = self._client
        if client is None or self._loop is None:
            return
        client.loop_write()
        sock = client.socket()
        if client.want_write() and sock is not None:
            self._loop.add_writer(sock, self._writable)

    def _on_unregister_write(self, _c: paho.Client, _u: Any, sock: Any) -> None:
        if self._on_loop_thread() and self._loop is not None:
            self._loop.remove_writer(sock)

    def _readable(self) -> None:
        client = self._client
        assert client is not None
        client.loop_read()
        for _ in range(1000):  # paho reads at most one packet per message in flight; the rest is in our buffer
            if not (isinstance(client, CoalescingClient) and client.buffered()) or client.socket() is None:
                break
            client.loop_read()

    def _writable(self) -> None:
        assert self._client is not None
        self._client.loop_write()
