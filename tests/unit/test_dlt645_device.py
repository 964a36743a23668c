"""One DL/T 645 meter's poll against scripted replies: decode, ratios, error replies by name, wrong address or
identifier, follow-up frames, timeouts; and Hypothesis fuzzing: any bytes in, samples or a bad reason out."""

from __future__ import annotations

from collections.abc import Callable
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from agent.config.dlt645 import Dlt645DeviceConfig, Dlt645ProfileConfig, di_bytes, parse_format
from agent.errors import DeviceTimeout
from agent.model import Quality
from agent.sources.dlt645 import frame as fr
from agent.sources.dlt645.device import Dlt645Poller
from agent.sources.dlt645.values import encode_number

ADDRESS = "000012345678"
TZ = ZoneInfo("Asia/Shanghai")


def _meter(points: list[dict[str, object]], version: str = "2007", **device: object) -> Dlt645Poller:
    profile = Dlt645ProfileConfig.model_validate(
        {"profile": "t", "protocol": "dlt645", "version": version, "points": points}
    )
    config = Dlt645DeviceConfig.model_validate(
        {"name": "m1", "protocol": "dlt645", "profile": "t", "bus": "b", "address": ADDRESS, **device}
    )
    config.bind(profile)
    return Dlt645Poller(config, profile.version, "test", lambda: 1000.0, TZ)


def reply(control: int, data: bytes, address: str = ADDRESS, fe: int = 2) -> bytes:
    body = bytes([0x68, *fr.address_bytes(address), 0x68, control, len(data), *((b + 0x33) & 0xFF for b in data)])
    return b"\xfe" * fe + body + bytes([sum(body) & 0xFF, 0x16])


class ScriptedLink:
    """Answers each request with the next scripted bytes (None: silence -> timeout)."""

    def __init__(self, answers: list[bytes | None] | Callable[[bytes], bytes | None]) -> None:
        self.answers = answers
        self.sent: list[bytes] = []

    async def exchange(self, frame: bytes, cut: Callable[[bytearray], bytes | None], timeout_s: float) -> bytes:
        self.sent.append(frame)
        answer = self.answers(frame) if callable(self.answers) else self.answers.pop(0)
        got = cut(bytearray(answer)) if answer is not None else None
        if got is None:
            raise DeviceTimeout(f"timeout after {timeout_s * 1000:.0f} ms")
        return got


async def _no_pause() -> None:
    return None


def _value(di: str, fmt: str, value: float, signed: bool = False, version: str = "2007") -> bytes:
    f = parse_format(fmt).fields[0]
    return di_bytes(di, version) + encode_number(value, f, signed)  # type: ignore[arg-type]


async def test_energy_with_ct_and_pt_ratios_and_a_signed_power() -> None:
    meter = _meter(
        [{"name": "e", "di": "00-01-00-00", "role": "energy_import_kwh"}, {"name": "p", "di": "02-03-00-00"}],
        ct_ratio=200,
        pt_ratio=100,
    )
    link = ScriptedLink(
        [
            reply(0x91, _value("00-01-00-00", "XXXXXX.XX", 1234.56)),
            reply(0x91, _value("02-03-00-00", "XX.XXXX", -1.5, True)),
        ]
    )
    result = await meter.poll(link, _no_pause)
    e, p = result.samples
    assert e.quality is Quality.GOOD and e.value == 1234.56 * 200 * 100 and e.unit == "kWh"
    assert p.quality is Quality.GOOD and p.value == -1.5 * 20000
    assert {f[f.index(0x68) + 8] for f in link.sent} == {0x11}


async def test_unsupported_identifier_is_named_and_asked_again_only_now_and_then() -> None:
    meter = _meter([{"name": "e", "di": "00-01-00-00"}, {"name": "f", "di": "02-80-00-02"}])
    unsupported, frequency = reply(0xD1, bytes([0x02])), reply(0x91, _value("02-80-00-02", "XX.XX", 50.01))
    link = ScriptedLink(lambda f: unsupported if f[-3] == 0x33 else frequency)  # DI3 + 33h: 00 energy, 02 variables
    first = await meter.poll(link, _no_pause)
    assert first.samples[0].quality is Quality.BAD and first.samples[0].reason == "no such data item"
    assert first.samples[1].value == 50.01
    assert len(link.sent) == 2
    second = await meter.poll(link, _no_pause)
    assert second.samples[0].reason == "no such data item" and len(link.sent) == 3  # not asked again
    assert meter.consecutive_failures == 0


async def test_wrong_address_and_wrong_identifier_make_the_sample_bad() -> None:
    meter = _meter([{"name": "e", "di": "00-01-00-00"}, {"name": "u", "di": "02-01-01-00"}])
    link = ScriptedLink(
        [
            reply(0x91, _value("00-01-00-00", "XXXXXX.XX", 1.0), address="000000000099"),
            reply(0x91, _value("02-01-02-00", "XXX.X", 230.0)),
        ]
    )
    e, u = (await meter.poll(link, _no_pause)).samples
    assert e.quality is Quality.BAD and e.reason == "reply from address 000000000099, not 000012345678"
    assert u.quality is Quality.BAD and u.reason == "reply for data item 02010200, not 02-01-01-00"


async def test_invalid_bcd_and_wrong_length() -> None:
    meter = _meter([{"name": "e", "di": "00-01-00-00"}, {"name": "u", "di": "02-01-01-00"}])
    link = ScriptedLink(
        [
            reply(0x91, di_bytes("00-01-00-00", "2007") + bytes([0x1A, 0, 0, 0])),
            reply(0x91, di_bytes("02-01-01-00", "2007") + bytes([0x30])),
        ]
    )
    e, u = (await meter.poll(link, _no_pause)).samples
    assert e.reason == "invalid BCD 0000001A" and e.value is None
    assert u.reason == "wrong length: 1 bytes for XXX.X (2)"


async def test_follow_up_frames_are_joined() -> None:
    meter = _meter([{"name": "d", "di": "05-06-01-01", "element": 1}])
    f = parse_format("XXXXXX.XX").fields[0]
    parts = [encode_number(v, f, False) for v in (10, 1, 2, 3, 4)]
    di = di_bytes("05-06-01-01", "2007")
    link = ScriptedLink([reply(0xB1, di + b"".join(parts[:3])), reply(0x92, di + b"".join(parts[3:]) + b"\x01")])
    (d,) = (await meter.poll(link, _no_pause)).samples
    assert d.value == 1.0 and d.quality is Quality.GOOD
    assert [s[s.index(0x68) + 8] for s in link.sent] == [0x11, 0x12]


async def test_a_silent_meter_costs_one_timeout_per_poll() -> None:
    meter = _meter([{"name": "e", "di": "00-01-00-00"}, {"name": "u", "di": "02-01-01-00"}])
    link = ScriptedLink([None, None])
    result = await meter.poll(link, _no_pause)
    assert len(link.sent) == 1
    assert [s.reason for s in result.samples] == ["timeout after 500 ms"] * 2  # unset: half the 1 s interval
    assert meter.consecutive_failures == 1


async def test_1997_meter_reads_with_0x01_and_two_byte_identifiers() -> None:
    meter = _meter([{"name": "e", "di": "9010"}, {"name": "u", "di": "B611"}], version="1997")
    link = ScriptedLink(
        [
            reply(0x81, _value("9010", "XXXXXX.XX", 42.5, version="1997")),
            reply(0x81, _value("B611", "XXX", 231, version="1997")),
        ]
    )
    e, u = (await meter.poll(link, _no_pause)).samples
    assert (e.value, u.value) == (42.5, 231.0)
    assert link.sent[0][4:].hex().upper().startswith("68785634120000680102")


@settings(max_examples=400, deadline=None)
@given(
    garbage=st.binary(max_size=64),
    data=st.binary(max_size=40),
    control=st.sampled_from([0x91, 0xB1, 0xD1, 0x92, 0xB2, 0x81, 0xA1, 0xC1, 0x93, 0x13, 0x00]),
    framed=st.booleans(),
    old=st.booleans(),
)
async def test_fuzz_any_reply_gives_samples_or_a_reason_never_an_exception(
    garbage: bytes, data: bytes, control: int, framed: bool, old: bool
) -> None:
    """Either edition; the data may start with the identifier asked for, so value decoding is reached too."""
    points: list[dict[str, object]]
    if old:
        points = [{"name": "e", "di": "9010"}, {"name": "d", "di": "A010"}, {"name": "t", "di": "B010"}]
        meter, di = _meter(points, "1997"), di_bytes("9010", "1997")
    else:
        points = [
            {"name": "e", "di": "00-01-00-00"},
            {"name": "d", "di": "01-01-00-00"},
            {"name": "t", "di": "01-01-00-00", "element": 1},
        ]
        meter, di = _meter(points), di_bytes("00-01-00-00", "2007")
    answer = garbage + (reply(control, di + data if len(data) % 2 else data) if framed else b"")
    link = ScriptedLink(lambda _f: answer)
    result = await meter.poll(link, _no_pause)
    assert [s.point for s in result.samples] == ["e", "d", "t"]
    for s in result.samples:
        assert (s.value is None) == (s.quality is Quality.BAD)
        assert s.quality is Quality.GOOD or s.reason


async def test_a_1997_reply_with_more_to_follow_is_bad_not_fetched() -> None:
    meter = _meter([{"name": "e", "di": "9010"}], "1997")
    link = ScriptedLink([reply(0xA1, _value("9010", "XXXXXX.XX", 1.0, version="1997"))])
    (e,) = (await meter.poll(link, _no_pause)).samples
    assert e.quality is Quality.BAD and "follow-up" in e.reason
    assert len(link.sent) == 1
