"""Modbus read frames, pure functions: build requests (TCP MBAP or RTU with CRC), cut replies out of a byte
stream, and check a reply against its request. Only the four read function codes exist here: the agent is
read-only, so no write request can even be built.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

from agent.errors import DeviceException, FrameError

EXCEPTION_NAMES: dict[int, str] = {
    1: "ILLEGAL FUNCTION",
    2: "ILLEGAL DATA ADDRESS",
    3: "ILLEGAL DATA VALUE",
    4: "SERVER DEVICE FAILURE",
    5: "ACKNOWLEDGE",
    6: "SERVER DEVICE BUSY",
    7: "NEGATIVE ACKNOWLEDGE",
    8: "MEMORY PARITY ERROR",
    0x0A: "GATEWAY PATH UNAVAILABLE",
    0x0B: "GATEWAY TARGET DEVICE FAILED TO RESPOND",
}
READ_FUNCTIONS = frozenset({1, 2, 3, 4})
_MBAP = struct.Struct(">HHHB")
_REQUEST = struct.Struct(">BHH")


def exception_name(code: int) -> str:
    return EXCEPTION_NAMES.get(code, f"EXCEPTION 0x{code:02X}")


def _crc_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
        table.append(crc)
    return table


_CRC_TABLE = _crc_table()


def crc16(data: bytes) -> int:
    """Modbus CRC-16 (poly 0xA001, init 0xFFFF); sent low byte first."""
    crc = 0xFFFF
    table = _CRC_TABLE
    for b in data:
        crc = (crc >> 8) ^ table[(crc ^ b) & 0xFF]
    return crc


def read_pdu(function: int, start: int, count: int) -> bytes:
    if function not in READ_FUNCTIONS:
        raise ValueError(f"function code {function} is not a read")
    return _REQUEST.pack(function, start, count)


def tcp_frame(tid: int, unit: int, pdu: bytes) -> bytes:
    return _MBAP.pack(tid, 0, len(pdu) + 1, unit) + pdu


def rtu_frame(unit: int, pdu: bytes) -> bytes:
    body = bytes((unit,)) + pdu
    return body + crc16(body).to_bytes(2, "little")


def expected_bytes(function: int, count: int) -> int:
    """Data bytes a correct reply carries: 2 per register, or one per 8 bits."""
    return (count + 7) // 8 if function in (1, 2) else 2 * count


class TcpReply(NamedTuple):  # a tuple: made for every reply, at a third of a frozen dataclass's cost
    tid: int
    unit: int
    pdu: bytes


def cut_tcp(buffer: bytearray) -> TcpReply | None:
    """Take one complete MBAP frame off the front of ``buffer``; None if incomplete. Raises FrameError when the
    header is garbage (the stream cannot be resynchronised; the caller closes the connection)."""
    if len(buffer) < 8:
        return None
    tid, pid, length, unit = _MBAP.unpack_from(buffer, 0)
    if pid != 0 or length < 2 or length > 254:
        raise FrameError(f"bad MBAP header (protocol id {pid}, length {length})")
    if len(buffer) < 6 + length:
        return None
    pdu = bytes(buffer[7 : 6 + length])
    del buffer[: 6 + length]
    return TcpReply(tid, unit, pdu)


def rtu_reply_length(buffer: bytes | bytearray) -> int | None:
    """Length of the RTU reply at the front of ``buffer`` (address, function, data, CRC), None if not yet known."""
    if len(buffer) < 3:
        return None
    function = buffer[1]
    if function & 0x80:
        return 5
    if function in READ_FUNCTIONS:
        return 5 + buffer[2]
    return -1  # not a read reply: garbage


def check_rtu_crc(frame: bytes) -> bool:
    return crc16(frame[:-2]) == int.from_bytes(frame[-2:], "little")


def check_reply(pdu: bytes, function: int, count: int) -> bytes:
    """Validate a reply PDU for a read of ``count`` registers/bits with ``function``; returns the data bytes.
    Raises DeviceException (exception reply, by name) or FrameError (wrong function or byte count)."""
    if not pdu:
        raise FrameError("empty reply")
    fc = pdu[0]
    if fc == function | 0x80:
        code = pdu[1] if len(pdu) > 1 else 0
        name = exception_name(code)
        raise DeviceException(name, code, name)
    if fc != function:
        raise FrameError(f"reply with function code {fc} to a function {function} request")
    want = expected_bytes(function, count)
    if len(pdu) < 2 or pdu[1] != want or len(pdu) != 2 + want:
        got = pdu[1] if len(pdu) > 1 else 0
        raise FrameError(f"wrong byte count: expected {want}, got {got}")
    return pdu[2:]
