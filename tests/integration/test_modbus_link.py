"""ModbusLink against a scripted Modbus server on loopback, for the malformed traffic the plant simulator does not
produce: CRC errors, replies from the wrong unit, foreign transaction ids, a garbage MBAP header. The server is a
real TCP server answering real frames (built with the frames module's own CRC and MBAP code, which the unit tests
check against the textbook vectors)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager

import pytest

from agent.errors import FrameError
from agent.sources.modbus import frames
from agent.sources.modbus.link import ModbusLink

Script = Callable[[bytes], bytes]  # request frame -> bytes to send back


@asynccontextmanager
async def scripted_server(script: Script, request_size: int) -> AsyncIterator[int]:
    writers: set[asyncio.StreamWriter] = set()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.add(writer)
        try:
            while True:
                request = await reader.readexactly(request_size)
                writer.write(script(request))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        for writer in writers:  # a handler still waiting for a request must not leave its transport to the GC
            writer.close()
        await server.wait_closed()


def rtu_reply(unit: int, registers: list[int]) -> bytes:
    body = bytes([unit, 3, 2 * len(registers)]) + b"".join(r.to_bytes(2, "big") for r in registers)
    return body + frames.crc16(body).to_bytes(2, "little")


def tcp_reply(tid: int, unit: int, registers: list[int]) -> bytes:
    return frames.tcp_frame(
        tid, unit, bytes([3, 2 * len(registers)]) + b"".join(r.to_bytes(2, "big") for r in registers)
    )


async def test_rtu_crc_error_is_a_bad_frame_and_a_foreign_unit_reply_is_skipped() -> None:
    answers: Iterator[Script] = iter(
        [
            lambda req: rtu_reply(1, [7])[:-1] + b"\x00",  # CRC broken
            lambda req: rtu_reply(9, [666]) + rtu_reply(1, [8]),  # another unit's (late) reply, then ours
            lambda req: rtu_reply(1, [9]),
        ]
    )
    async with scripted_server(lambda req: next(answers)(req), 8) as port:
        link = ModbusLink.tcp("127.0.0.1", port, framing="rtu")
        with pytest.raises(FrameError, match="CRC error"):
            await link.read(1, 3, 0, 1, 1.0)
        assert await link.read(1, 3, 0, 1, 1.0) == b"\x00\x08"
        assert link.stats.late_by_unit == {9: 1}
        assert await link.read(1, 3, 0, 1, 1.0) == b"\x00\x09"
        await link.close()


async def test_tcp_foreign_transaction_id_is_discarded_and_counted() -> None:
    def script(req: bytes) -> bytes:
        tid = int.from_bytes(req[:2], "big")
        return tcp_reply(tid + 100, 1, [1]) + tcp_reply(tid, 1, [2])

    async with scripted_server(script, 12) as port:
        link = ModbusLink.tcp("127.0.0.1", port)
        assert await link.read(1, 3, 0, 1, 1.0) == b"\x00\x02"
        assert await link.read(1, 3, 0, 1, 1.0) == b"\x00\x02"
        assert link.stats.late_replies == 2
        await link.close()


async def test_tcp_reply_from_another_unit_is_a_bad_frame() -> None:
    async with scripted_server(lambda req: tcp_reply(int.from_bytes(req[:2], "big"), 9, [1]), 12) as port:
        link = ModbusLink.tcp("127.0.0.1", port)
        with pytest.raises(FrameError, match="reply from unit 9"):
            await link.read(1, 3, 0, 1, 1.0)
        await link.close()


async def test_tcp_garbage_header_drops_the_connection_and_the_next_read_reconnects() -> None:
    answers: Iterator[Script] = iter(
        [lambda req: b"HTTP/1.1 400 Bad Request\r\n\r\n", lambda req: tcp_reply(int.from_bytes(req[:2], "big"), 1, [5])]
    )
    async with scripted_server(lambda req: next(answers)(req), 12) as port:
        link = ModbusLink.tcp("127.0.0.1", port)
        with pytest.raises(FrameError, match="bad MBAP header"):
            await link.read(1, 3, 0, 1, 1.0)
        assert not link.connected
        assert await link.read(1, 3, 0, 1, 1.0) == b"\x00\x05"
        assert (link.stats.connects, link.stats.disconnects) == (2, 1)
        await link.close()


async def test_one_request_at_a_time_on_a_link() -> None:
    writers: list[asyncio.StreamWriter] = []

    async def never(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        try:
            await reader.read()
        finally:
            writer.close()

    server = await asyncio.start_server(never, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    link = ModbusLink.tcp("127.0.0.1", port)
    first = asyncio.ensure_future(link.read(1, 3, 0, 1, 0.5))
    await asyncio.sleep(0.05)
    with pytest.raises(RuntimeError, match="concurrent requests"):
        await link.read(1, 3, 0, 1, 0.5)
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    await link.close()
    server.close()
    for writer in writers:
        writer.close()
    await server.wait_closed()
