"""Codec: round trips for every type x order (Hypothesis), known vectors from vendors' manuals, bad values; and the
frames module (CRC, MBAP cutting, exception names, reply checks)."""

from __future__ import annotations

import math
import struct
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.config.profile import ByteOrder, DataType, PointConfig
from agent.errors import DeviceException, FrameError
from agent.model import Quality
from agent.sources.modbus import frames
from agent.sources.modbus.codec import (
    NOT_A_NUMBER,
    PointCodec,
    compile_point,
    decode_all_orders,
    registers_to_bytes,
    swap_bytes,
)

INT_RANGES: dict[DataType, tuple[int, int]] = {
    DataType.INT16: (-(2**15), 2**15 - 1),
    DataType.UINT16: (0, 2**16 - 1),
    DataType.INT32: (-(2**31), 2**31 - 1),
    DataType.UINT32: (0, 2**32 - 1),
    DataType.INT64: (-(2**63), 2**63 - 1),
    DataType.UINT64: (0, 2**64 - 1),
    DataType.INT8_HIGH: (-128, 127),
    DataType.INT8_LOW: (-128, 127),
    DataType.UINT8_HIGH: (0, 255),
    DataType.UINT8_LOW: (0, 255),
}
FLOAT_WIDTH = {DataType.FLOAT16: 16, DataType.FLOAT32: 32, DataType.FLOAT64: 64}


def point(data_type: DataType, order: ByteOrder = ByteOrder.ABCD, **kw: Any) -> PointCodec:
    kind = "coil" if data_type is DataType.BOOL else "holding_register"
    cfg = PointConfig.model_validate({"name": "p", "kind": kind, "address": 0, "type": data_type, "order": order, **kw})
    return compile_point(cfg, ByteOrder.ABCD)


def decode(codec: PointCodec, registers: list[int]) -> tuple[Quality, Any, str]:
    return codec.decode_registers(registers)


orders = st.sampled_from(list(ByteOrder))


@settings(max_examples=300, deadline=None)
@given(data=st.data(), data_type=st.sampled_from(sorted(INT_RANGES)), order=orders)
def test_integers_round_trip_in_every_order(data: st.DataObject, data_type: DataType, order: ByteOrder) -> None:
    lo, hi = INT_RANGES[data_type]
    value = data.draw(st.integers(lo, hi))
    codec = point(data_type, order)
    registers = codec.encode(value)
    assert len(registers) == codec.width
    quality, decoded, reason = decode(codec, registers)
    assert (quality, decoded, reason) == (Quality.GOOD, value, "")
    assert type(decoded) is int


@settings(max_examples=300, deadline=None)
@given(data=st.data(), data_type=st.sampled_from(sorted(FLOAT_WIDTH)), order=orders)
def test_floats_round_trip_in_every_order(data: st.DataObject, data_type: DataType, order: ByteOrder) -> None:
    value = data.draw(st.floats(width=FLOAT_WIDTH[data_type], allow_nan=False, allow_infinity=False))  # type: ignore[arg-type]
    codec = point(data_type, order)
    quality, decoded, _ = decode(codec, codec.encode(value))
    assert quality is Quality.GOOD
    assert decoded == value


@settings(max_examples=200, deadline=None)
@given(bit=st.integers(0, 15), on=st.booleans(), order=orders, noise=st.integers(0, 0xFFFF))
def test_bit_of_a_register_in_every_order(bit: int, on: bool, order: ByteOrder, noise: int) -> None:
    codec = point(DataType.BIT, order, bit=bit)
    [reg] = codec.encode(on)
    # other bits set must not matter: build the register in ABCD terms, then apply the order's byte swap
    other = point(DataType.UINT16, order)
    [mixed] = other.encode((noise & ~(1 << bit)) | (int(on) << bit))
    assert decode(codec, [reg])[1] is on
    assert decode(codec, [mixed])[1] is on


@settings(max_examples=200, deadline=None)
@given(text=st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), max_size=20), order=orders)
def test_strings_round_trip_and_strip_padding(text: str, order: ByteOrder) -> None:
    codec = point(DataType.STRING, order, length=10)
    registers = codec.encode(text)
    assert len(registers) == 10
    assert decode(codec, registers) == (Quality.GOOD, text, "")


@settings(max_examples=200, deadline=None)
@given(registers=st.lists(st.integers(0, 0xFFFF), min_size=4, max_size=4), order=orders)
def test_strings_never_raise_on_invalid_bytes(registers: list[int], order: ByteOrder) -> None:
    quality, value, _ = decode(point(DataType.STRING, order, length=4), registers)
    assert quality is Quality.GOOD and isinstance(value, str)


@settings(max_examples=200, deadline=None)
@given(
    raw=st.integers(0, 2**32 - 1),
    scale=st.sampled_from([0.01, 0.1, 10.0, 0.001]),
    offset=st.sampled_from([0.0, -40.0, 273.15]),
    order=orders,
)
def test_scale_and_offset_apply_after_decoding(raw: int, scale: float, offset: float, order: ByteOrder) -> None:
    plain = point(DataType.UINT32, order)
    scaled = point(DataType.UINT32, order, scale=scale, offset=offset)
    quality, value, _ = decode(scaled, plain.encode(raw))
    assert quality is Quality.GOOD
    digits = {0.01: 2, 0.1: 1, 10.0: 0, 0.001: 3}[scale]
    if round(offset, digits) == offset:  # shown to the register's resolution, without float noise
        assert value == round(raw * scale + offset, digits)
    else:
        assert value == raw * scale + offset
    assert type(value) is float
    # the encoder inverts scaling (rounded to the register's resolution)
    assert decode(plain, scaled.encode(raw * scale + offset))[1] == raw


def test_scaled_counters_read_as_the_meter_shows_them() -> None:
    counter = point(DataType.UINT32, scale=0.01)
    assert 1566664729 * 0.01 != 15666647.29  # the float product carries noise
    assert decode(counter, [0x5D61, 0x6819])[1] == 15666647.29
    assert decode(point(DataType.INT16, scale=0.1, offset=-40.0), [0x0203])[1] == 11.5
    assert decode(point(DataType.UINT16, scale=0.5), [3])[1] == 1.5  # not a power of ten: no rounding needed


def test_known_vectors_from_manuals() -> None:
    # 230.5 as float32 is 0x43668000
    assert decode(point(DataType.FLOAT32, ByteOrder.ABCD), [0x4366, 0x8000])[1] == 230.5
    assert decode(point(DataType.FLOAT32, ByteOrder.CDAB), [0x8000, 0x4366])[1] == 230.5
    assert decode(point(DataType.FLOAT32, ByteOrder.BADC), [0x6643, 0x0080])[1] == 230.5
    assert decode(point(DataType.FLOAT32, ByteOrder.DCBA), [0x0080, 0x6643])[1] == 230.5
    # uint32 0x00012345 and a uint64 spread over four words
    assert decode(point(DataType.UINT32, ByteOrder.CDAB), [0x2345, 0x0001])[1] == 0x12345
    assert decode(point(DataType.UINT64, ByteOrder.ABCD), [0x0102, 0x0304, 0x0506, 0x0708])[1] == 0x0102030405060708
    assert decode(point(DataType.UINT64, ByteOrder.CDAB), [0x0708, 0x0506, 0x0304, 0x0102])[1] == 0x0102030405060708
    assert decode(point(DataType.UINT64, ByteOrder.DCBA), [0x0807, 0x0605, 0x0403, 0x0201])[1] == 0x0102030405060708
    assert decode(point(DataType.INT16, ByteOrder.ABCD, scale=0.1), [0xFF9C])[1] == pytest.approx(-10.0)
    assert decode(point(DataType.INT8_HIGH), [0xFE10])[1] == -2
    assert decode(point(DataType.UINT8_LOW), [0xFE10])[1] == 0x10
    assert decode(point(DataType.FLOAT16), [0x3C00])[1] == 1.0
    assert decode(point(DataType.STRING, length=3), [0x4142, 0x4300, 0x0000])[1] == "ABC"
    assert decode(point(DataType.STRING, ByteOrder.BADC, length=2), [0x4241, 0x2020])[1] == "AB"


@pytest.mark.parametrize("data_type", [DataType.FLOAT32, DataType.FLOAT64, DataType.FLOAT16])
@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_nan_and_inf_are_bad_not_a_number(data_type: DataType, bad: float) -> None:
    codec = point(data_type)
    fmt = {DataType.FLOAT16: ">e", DataType.FLOAT32: ">f", DataType.FLOAT64: ">d"}[data_type]
    data = struct.pack(fmt, bad)
    assert codec.decode(data, None, 0) == (Quality.BAD, None, NOT_A_NUMBER)


def test_overflow_after_scaling_is_not_a_number() -> None:
    codec = point(DataType.FLOAT64, scale=1e300)
    assert codec.decode_registers(codec.encode(1e300))[0] is Quality.GOOD
    assert codec.decode(struct.pack(">d", 1e300), None, 0) == (Quality.BAD, None, NOT_A_NUMBER)


def test_out_of_range_is_uncertain_with_the_reason() -> None:
    codec = point(DataType.FLOAT32, range=(0.0, 600.0))
    assert decode(codec, codec.encode(812.0)) == (Quality.UNCERTAIN, 812.0, "out of range: 812.0 > 600.0")
    assert decode(codec, codec.encode(-1.0)) == (Quality.UNCERTAIN, -1.0, "out of range: -1.0 < 0.0")
    assert decode(codec, codec.encode(600.0)) == (Quality.GOOD, 600.0, "")
    ints = point(DataType.UINT16, range=(0, 100))
    assert decode(ints, [101]) == (Quality.UNCERTAIN, 101, "out of range: 101.0 > 100.0")


def test_bits_decode_from_packed_coils() -> None:
    codec = point(DataType.BOOL)
    payload = bytes([0b10100101, 0b00000010])
    assert [codec.decode(payload, None, i)[1] for i in range(10)] == [
        True, False, True, False, False, True, False, True, False, True,
    ]  # fmt: skip


def test_decoding_at_an_offset_inside_a_longer_read() -> None:
    codec = point(DataType.FLOAT32, ByteOrder.CDAB)
    registers = [0xDEAD, 0xBEEF, *codec.encode(-12.5), 0x1234]
    data = registers_to_bytes(registers)
    assert codec.decode(data, swap_bytes(data), 2) == (Quality.GOOD, -12.5, "")


def test_decode_all_orders_ranks_the_true_order_first() -> None:
    for order in ByteOrder:
        registers = point(DataType.FLOAT32, order).encode(230.5)
        ranked = decode_all_orders(registers, DataType.FLOAT32, value_range=(0.0, 500.0))
        assert ranked[0].order in {order}, (order, ranked)
        assert ranked[0].value == 230.5
    counter = point(DataType.UINT32, ByteOrder.CDAB).encode(123_456)
    ranked = decode_all_orders(counter, DataType.UINT32)
    assert (ranked[0].order, ranked[0].value) == (ByteOrder.CDAB, 123_456)
    assert len({g.order for g in ranked}) == 4


# --- frames: the bytes on the wire ------------------------------------------------------------------------------


def test_rtu_frame_has_the_standard_crc() -> None:
    # the textbook example: read 10 holding registers of unit 1 from 0 -> CRC bytes C5 CD
    assert frames.rtu_frame(1, frames.read_pdu(3, 0, 10)) == bytes.fromhex("01030000000AC5CD")
    assert frames.check_rtu_crc(bytes.fromhex("01030000000AC5CD"))
    assert not frames.check_rtu_crc(bytes.fromhex("01030000000AC5CE"))


@pytest.mark.parametrize("function", [5, 6, 15, 16, 22, 23, 0])
def test_no_write_request_can_be_built(function: int) -> None:
    with pytest.raises(ValueError, match="is not a read"):
        frames.read_pdu(function, 0, 1)


def test_tcp_stream_is_cut_into_frames() -> None:
    one = frames.tcp_frame(7, 1, bytes.fromhex("03040001") + b"\x00\x02")
    two = frames.tcp_frame(8, 2, bytes.fromhex("8302"))
    buffer = bytearray(one + two[:5])
    first = frames.cut_tcp(buffer)
    assert first is not None and (first.tid, first.unit, first.pdu) == (7, 1, bytes.fromhex("030400010002"))
    assert frames.cut_tcp(buffer) is None  # incomplete
    buffer += two[5:]
    second = frames.cut_tcp(buffer)
    assert second is not None and (second.tid, second.pdu) == (8, bytes.fromhex("8302"))
    assert buffer == bytearray()
    with pytest.raises(FrameError, match="bad MBAP header"):
        frames.cut_tcp(bytearray(b"HTTP/1.1 400 Bad"))


def test_rtu_reply_length_from_its_header() -> None:
    assert frames.rtu_reply_length(b"\x01\x03") is None
    assert frames.rtu_reply_length(b"\x01\x03\x04") == 9
    assert frames.rtu_reply_length(b"\x01\x83\x02") == 5
    assert frames.rtu_reply_length(b"\x01\x10\x00") == -1


@pytest.mark.parametrize(
    ("code", "name"),
    [
        (1, "ILLEGAL FUNCTION"),
        (2, "ILLEGAL DATA ADDRESS"),
        (3, "ILLEGAL DATA VALUE"),
        (4, "SERVER DEVICE FAILURE"),
        (5, "ACKNOWLEDGE"),
        (6, "SERVER DEVICE BUSY"),
        (8, "MEMORY PARITY ERROR"),
        (0x0A, "GATEWAY PATH UNAVAILABLE"),
        (0x0B, "GATEWAY TARGET DEVICE FAILED TO RESPOND"),
        (0x0C, "EXCEPTION 0x0C"),
    ],
)
def test_every_exception_code_is_raised_by_name(code: int, name: str) -> None:
    with pytest.raises(DeviceException) as info:
        frames.check_reply(bytes([0x84, code]), 4, 2)
    assert (info.value.code, info.value.code_name, str(info.value)) == (code, name, name)


def test_replies_are_checked_against_the_request() -> None:
    assert frames.check_reply(bytes.fromhex("0304ABCD0102"), 3, 2) == bytes.fromhex("ABCD0102")
    assert frames.check_reply(bytes.fromhex("0102A503"), 1, 10) == bytes.fromhex("A503")
    with pytest.raises(FrameError, match="wrong byte count: expected 4, got 2"):
        frames.check_reply(bytes.fromhex("0302ABCD"), 3, 2)
    with pytest.raises(FrameError, match="wrong byte count: expected 4, got 4"):
        frames.check_reply(bytes.fromhex("0304ABCD"), 3, 2)  # the header claims 4, 2 came
    with pytest.raises(FrameError, match="function code 4 to a function 3 request"):
        frames.check_reply(bytes.fromhex("0404ABCD0102"), 3, 2)
