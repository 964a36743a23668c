"""DL/T 645 frames: ``[FE x 0-4] 68 A0..A5 68 C L DATA CS 16``, for 2007 and 1997.

Read-only by construction: ``_frame`` is the only function that assembles a frame, and it refuses every control
code but the four read requests (``READ_CONTROLS``: 2007 read 0x11, read follow-up 0x12, read address 0x13; 1997
read 0x01). The public builders are the only callers. Nothing here can build a write (0x14), a clear (0x1A, 0x1B),
a freeze (0x16), a baud-rate change (0x17) or a broadcast time (0x08) frame; tests/unit/test_dlt645_frame.py tries
every code.

Receiving (``cut``): bytes before a ``68`` (FE wake-up bytes, line noise) are skipped; a candidate frame needs its
second ``68`` at offset 7, then ``L`` at offset 9 says how long it is, and nothing past ``12 + L`` bytes is read.
A candidate whose checksum or end byte is wrong is skipped one byte on (resync on the next ``68``), and counted.
The address is 6 BCD bytes, low byte first (the nameplate's 12 digits read from the end); DATA bytes carry +0x33.
"""

from __future__ import annotations

from dataclasses import dataclass

START = 0x68
END = 0x16
WAKE = 0xFE
BROADCAST = "AAAAAAAAAAAA"

READ_2007 = 0x11
READ_FOLLOW_2007 = 0x12
READ_ADDRESS_2007 = 0x13
READ_1997 = 0x01
READ_CONTROLS = frozenset({READ_2007, READ_FOLLOW_2007, READ_ADDRESS_2007, READ_1997})

REPLY_BIT = 0x80  # slave -> master
ERROR_BIT = 0x40  # abnormal reply
FOLLOW_BIT = 0x20  # more data follows (2007)

# Error word of an abnormal reply (2007: 0xD1/0xD2; 1997: 0xC1), bit -> name
ERRORS_2007 = {
    0: "other error",
    1: "no such data item",
    2: "password wrong or not authorised",
    3: "baud rate cannot be changed",
    4: "too many year time zones",
    5: "too many daily time slots",
    6: "too many tariffs",
}
ERRORS_1997 = {
    0: "illegal data",
    1: "no such data item",
    2: "password wrong",
    4: "too many year time zones",
    5: "too many daily time slots",
    6: "too many tariffs",
}


def address_bytes(address: str) -> bytes:
    """'000012345678' -> 78 56 34 12 00 00 (BCD, low byte first); 'AAAAAAAAAAAA' -> AA x 6."""
    if len(address) != 12:
        raise ValueError(f"address {address!r} must have 12 digits")
    if address.upper() == BROADCAST:
        return b"\xaa" * 6
    if not address.isdigit():
        raise ValueError(f"address {address!r} must be decimal digits")
    return bytes.fromhex(address)[::-1]


def address_text(raw: bytes) -> str:
    """The inverse of ``address_bytes``; nibbles that are not BCD are shown in hex."""
    return raw[::-1].hex().upper()


def _frame(address: bytes, control: int, data: bytes, preamble: int) -> bytes:
    if control not in READ_CONTROLS:
        raise ValueError(f"control code 0x{control:02X} is not a read request; this agent never writes to meters")
    if len(address) != 6 or len(data) > 200 or not 0 <= preamble <= 4:
        raise ValueError("bad frame arguments")
    body = bytes([START, *address, START, control, len(data), *((b + 0x33) & 0xFF for b in data)])
    return bytes([WAKE] * preamble) + body + bytes([sum(body) & 0xFF, END])


def read_request(address: str, di: bytes, preamble: int = 4) -> bytes:
    """2007 read (0x11) of one data identifier (4 bytes, DI0 first) or 1997 read (0x01) of a 2-byte identifier."""
    if len(di) == 4:
        return _frame(address_bytes(address), READ_2007, di, preamble)
    if len(di) == 2:
        return _frame(address_bytes(address), READ_1997, di, preamble)
    raise ValueError("a data identifier has 4 bytes (2007) or 2 (1997)")


def read_follow_request(address: str, di: bytes, seq: int, preamble: int = 4) -> bytes:
    """2007 read follow-up (0x12): the next part of a reply that had the follow-up bit set."""
    if len(di) != 4:
        raise ValueError("follow-up frames exist only in DL/T 645-2007")
    return _frame(address_bytes(address), READ_FOLLOW_2007, di + bytes([seq & 0xFF]), preamble)


def read_address_request(preamble: int = 4) -> bytes:
    """2007 read address (0x13) to AA..AA: only on a point-to-point link, where one meter answers."""
    return _frame(b"\xaa" * 6, READ_ADDRESS_2007, b"", preamble)


@dataclass(frozen=True, slots=True)
class Frame:
    address: bytes  # 6 bytes as on the wire (low byte first)
    control: int
    data: bytes  # with the 0x33 removed

    @property
    def is_reply(self) -> bool:
        return bool(self.control & REPLY_BIT)

    @property
    def is_error(self) -> bool:
        return bool(self.control & ERROR_BIT)

    @property
    def has_follow(self) -> bool:
        return bool(self.control & FOLLOW_BIT) and not self.is_error


@dataclass(slots=True)
class CutStats:
    skipped: int = 0  # bytes dropped before a frame (wake-up bytes excluded)
    bad_frames: int = 0  # candidates with a wrong checksum or end byte


def cut(buffer: bytearray, stats: CutStats | None = None) -> bytes | None:
    """Take the first complete, valid frame (from its first ``68`` to its ``16``) off the front of ``buffer``;
    skipped bytes are removed too. None when no complete frame is there yet (the partial one stays)."""
    i = 0
    n = len(buffer)
    while True:
        j = buffer.find(START, i)
        if j < 0:
            _skip(buffer, n, stats)
            return None
        if n - j < 10:
            _skip(buffer, j, stats)
            return None
        if buffer[j + 7] != START:
            i = j + 1
            continue
        end = j + 12 + buffer[j + 9]
        if end > n:
            _skip(buffer, j, stats)
            return None
        if buffer[end - 1] != END or buffer[end - 2] != sum(buffer[j : end - 2]) & 0xFF:
            if stats is not None:
                stats.bad_frames += 1
            i = j + 1
            continue
        frame = bytes(buffer[j:end])
        _skip(buffer, end, stats, j)
        return frame


def _skip(buffer: bytearray, upto: int, stats: CutStats | None, frame_at: int | None = None) -> None:
    if upto <= 0:
        return
    if stats is not None:
        head = buffer[: frame_at if frame_at is not None else upto]
        stats.skipped += len(head) - head.count(WAKE)
    del buffer[:upto]


def parse(frame: bytes) -> Frame:
    """A frame ``cut`` returned (starting at ``68``); ValueError if it is not one (lengths checked first)."""
    if len(frame) < 12 or frame[0] != START or frame[7] != START:
        raise ValueError("not a DL/T 645 frame")
    length = frame[9]
    if len(frame) != 12 + length:
        raise ValueError(f"frame length {len(frame)} does not match L={length}")
    if frame[-1] != END or frame[-2] != sum(frame[:-2]) & 0xFF:
        raise ValueError("checksum error")
    return Frame(bytes(frame[1:7]), frame[8], bytes((b - 0x33) & 0xFF for b in frame[10 : 10 + length]))


def error_names(code: int, version: str) -> str:
    """The error word's bits by name, e.g. 'no such data item'."""
    table = ERRORS_2007 if version == "2007" else ERRORS_1997
    names = [name for bit, name in table.items() if code & (1 << bit)]
    return ", ".join(names) if names else f"error 0x{code:02X}"
