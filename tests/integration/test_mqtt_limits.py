"""Messages the broker cannot take (issue 17): a real mosquitto with a ``message_size_limit``, as the shipped centre
config sets it. A message over the limit is set aside (counted, logged once with its size and topic), never resent
in a loop, and never holds up the messages behind it; a poll too big for one message is split into messages the
centre's decoder accepts one by one."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from pathlib import Path

import pytest

from agent.config.spool import SpoolConfig
from agent.model import Quality, Sample
from agent.sinks.limits import packet_bytes, split_to_fit
from agent.spool.sqlite import SqliteSpool
from agent.wire import SamplesMessage, decode, encode_samples
from tests.integration.test_mqtt_publish import fast, make_sink, running, wait_for
from tests.servers.mosquitto import mosquitto
from tests.servers.mqtt_count import CountingSubscriber

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
TOPIC = "plant/s1/gw1/meter{}/samples"


def shipped_size_limit() -> int:
    """``message_size_limit`` of the centre's shipped mosquitto config (deploy/center/mosquitto/energy.conf)."""
    text = (REPO / "deploy" / "center" / "mosquitto" / "energy.conf").read_text()
    match = re.search(r"^message_size_limit\s+(\d+)", text, re.MULTILINE)
    assert match, "the shipped mosquitto config sets no message_size_limit"
    return int(match.group(1))


def samples(device: str, n: int, ts: float) -> list[Sample]:
    return [
        Sample(device, f"point_with_a_long_name_{i:05d}", 1000.0 + i / 7, "kWh", Quality.GOOD, ts) for i in range(n)
    ]


def payload_of(device: str, seq: int, n: int, ts: float) -> bytes:
    return encode_samples(
        site="s1", gateway="gw1", boot="b" * 32, seq=seq, device=device, ts=ts, tags={}, samples=samples(device, n, ts)
    )


async def _publish_with_one_big(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, broker_conf: str, protocol: str, big_points: int
) -> None:
    """Four small polls, one too big for the broker, four more small ones: the small ones all arrive, in one
    session, and the big one is set aside once."""
    caplog.set_level(logging.WARNING)
    with mosquitto(tmp_path / "broker", extra_conf=broker_conf) as broker, CountingSubscriber(broker.port) as counter:
        spool = SqliteSpool.open(tmp_path / "spool.sqlite", SpoolConfig(max_bytes=64 << 20))
        ts = time.time()
        expected = []
        for seq in range(9):
            n = big_points if seq == 4 else 20
            spool.append(TOPIC.format(seq), payload_of(f"meter{seq}", seq, n, ts), "samples", seq, ts)
            if seq != 4:
                expected.append(("gw1", "b" * 32, seq))
        big_size = packet_bytes(TOPIC.format(4), payload_of("meter4", 4, big_points, ts))
        async with running(make_sink(fast(broker.port, protocol=protocol), spool, "b" * 32)) as sink:
            await sink.wait_connected(10)
            sink.wake()
            await asyncio.to_thread(counter.wait_for_keys, expected, 20)
            await wait_for("the big message set aside", lambda: sink.stats()["set_aside"] == 1, 10)
            await asyncio.sleep(1.0)  # a loop of resends would show as more connects in this second
            stats = sink.stats()
        assert ("gw1", "b" * 32, 4) not in counter.received.first
        assert spool.stats().set_aside == {"samples": 1, "kpi": 0, "status": 0}
        assert spool.stats().depth == 0, "nothing waits behind the big message"
        kept = spool._db.execute("SELECT topic, size, reason FROM set_aside").fetchall()
        spool.close()
    assert [k[0] for k in kept] == [TOPIC.format(4)]
    assert stats["set_aside"] == 1
    assert not [r for r in caplog.records if r.name == "asyncio"], "an error in an event-loop callback"
    lines = [r.getMessage() for r in caplog.records if "set aside" in r.getMessage()]
    assert len(lines) == 1, lines
    assert TOPIC.format(4) in lines[0] and f"{big_size} B" in lines[0]


async def test_a_broker_that_announces_its_maximum_packet_size_never_gets_the_big_message(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """mosquitto's ``max_packet_size`` goes out as the Maximum Packet Size of its MQTT 5 CONNACK: the sink reads it
    and sets the message aside before sending it, without losing the connection."""
    await _publish_with_one_big(tmp_path, caplog, "max_packet_size 100000\n", "5", big_points=2000)
    assert not [r for r in caplog.records if "connection lost" in r.getMessage()]


async def test_a_broker_that_closes_the_connection_gets_the_message_set_aside_after_two_losses(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """mosquitto 2.0's ``message_size_limit`` (what the shipped config sets) is not announced: the broker closes
    the connection of an MQTT 5 client that sends more. The message that was the largest in flight both times a
    fresh session was closed is set aside; the rest goes on, with no loop of reconnects."""
    await _publish_with_one_big(tmp_path, caplog, "message_size_limit 100000\n", "5", big_points=2000)
    losses = [r.getMessage() for r in caplog.records if "connection lost" in r.getMessage()]
    assert len(losses) == 2, losses


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
async def test_the_shipped_broker_limit_never_sees_a_message_over_max_message_bytes(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, protocol: str
) -> None:
    """The issue's case: a 1.24 MB samples message (a device with ~9,000 points) against the shipped config. It is
    over the agent's own max_message_bytes (256 KiB by default), so it is set aside before it reaches the broker
    (with MQTT 3.1.1 the broker would otherwise drop it without a word)."""
    limit = shipped_size_limit()
    await _publish_with_one_big(tmp_path, caplog, f"message_size_limit {limit}\n", protocol, big_points=9000)
    assert not [r for r in caplog.records if "connection lost" in r.getMessage()]


def test_a_poll_too_big_for_one_message_is_split_into_messages_the_centre_accepts() -> None:
    ts = 1_790_000_000.0
    points = samples("meter9", 9000, ts)

    def encode(chunk: object, seq: int = 7) -> bytes:
        assert isinstance(chunk, list | tuple)
        return encode_samples(
            site="s1", gateway="gw1", boot="b" * 32, seq=seq, device="meter9", ts=ts, tags={}, samples=tuple(chunk)
        )

    limit = 262144 - packet_bytes(TOPIC.format(9), b"")
    assert len(encode(points)) > 1_000_000  # the 1.24 MB message
    chunks = split_to_fit(points, encode, limit)
    assert len(chunks) >= 5
    assert all(len(payload) <= limit for _, payload in chunks)
    decoded = [decode(payload) for _, payload in chunks]
    names = [s.point for m in decoded if isinstance(m, SamplesMessage) for s in m.samples]
    assert names == [s.point for s in points], "every point once, in order"
    assert split_to_fit(points[:20], encode, limit) == [(points[:20], encode(points[:20]))], "a normal poll: one"
