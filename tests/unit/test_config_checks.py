"""Semantic cross-checks of profiles and site files, and the serial bus time estimate."""

from __future__ import annotations

import pytest

from agent.config.bus_time import (
    TURNAROUND_S,
    RequestSize,
    character_bits,
    check_bus_times,
    estimate_bus_cycle_s,
    request_time_s,
)
from agent.config.checks import check_profile, check_site
from agent.config.profile import ProfileConfig
from agent.config.site import SerialBusConfig, SiteConfig
from agent.config.yaml_source import YamlDocument, parse_yaml


def _profile(points: str, base: int = 0) -> tuple[ProfileConfig, YamlDocument]:
    doc = parse_yaml(f"profile: p\naddress_base: {base}\npoints:\n{points}", "p.yaml")
    return ProfileConfig.model_validate(doc.data), doc


def _point(name: str, kind: str, address: int, type_: str, extra: str = "") -> str:
    return f"  - {{name: {name}, kind: {kind}, address: {address}, type: {type_}{extra}}}\n"


def _profile_messages(points: str, base: int = 0) -> list[str]:
    profile, doc = _profile(points, base)
    return [str(i) for i in check_profile(profile, doc)]


def test_points_may_share_a_register_as_distinct_bits_or_as_high_and_low_bytes() -> None:
    points = (
        _point("a", "holding_register", 5, "bit", ", bit: 0")
        + _point("b", "holding_register", 5, "bit", ", bit: 15")
        + _point("hi", "input_register", 5, "uint8_high")
        + _point("lo", "input_register", 5, "int8_low")
        + _point("c", "coil", 5, "bool")
        + _point("d", "discrete_input", 5, "bool")
    )
    assert _profile_messages(points) == []


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (("holding_register", 5, "bit", ", bit: 3"), ("holding_register", 5, "bit", ", bit: 3")),
        (("holding_register", 5, "uint8_high", ""), ("holding_register", 5, "int8_high", "")),
        (("holding_register", 5, "uint16", ""), ("holding_register", 5, "bit", ", bit: 3")),
        (("holding_register", 4, "float32", ""), ("holding_register", 5, "uint8_low", "")),
        (("holding_register", 0, "string", ", length: 8"), ("holding_register", 7, "uint16", "")),
        (("coil", 9, "bool", ""), ("coil", 9, "bool", "")),
    ],
)
def test_overlaps_in_one_table_are_errors(first: tuple[str, int, str, str], second: tuple[str, int, str, str]) -> None:
    messages = _profile_messages(_point("one", *first) + _point("two", *second))
    assert messages == [
        f"p.yaml:5:{messages[0].split(':')[2]}: points[1].address: 'two' overlaps 'one' (line 4) in the "
        f"{second[0]} table; points may share a register only as bits of it or as its high and low bytes"
    ]


def test_each_overlapping_point_is_reported_once() -> None:
    points = _point("a", "holding_register", 0, "float64") + _point("b", "holding_register", 1, "float32")
    assert len(_profile_messages(points)) == 1


def test_address_limits_apply_after_the_base() -> None:
    ok = _point("a", "holding_register", 65535, "uint16") + _point("b", "input_register", 65534, "uint32")
    assert _profile_messages(ok) == []
    assert _profile_messages(_point("a", "holding_register", 65536, "uint16"), base=1) == []
    assert _profile_messages(_point("a", "holding_register", 65535, "uint16"), base=1) == []
    (message,) = _profile_messages(_point("a", "input_register", 65535, "uint32"))
    assert "uint32 at address 65535 ends at protocol address 65536, past the last Modbus address 65535" in message


def test_address_zero_with_base_one() -> None:
    (message,) = _profile_messages(_point("a", "coil", 0, "bool"), base=1)
    assert message.startswith("p.yaml:4:36: points[0].address: address 0 does not exist when address_base is 1")


def test_duplicate_point_names_name_the_first_line() -> None:
    points = _point("a", "coil", 0, "bool") + _point("b", "coil", 1, "bool") + _point("a", "coil", 2, "bool")
    assert _profile_messages(points) == [
        "p.yaml:6:12: points[2].name: point name 'a' is already used on line 4; give each point its own name"
    ]


def test_modicon_looking_address_is_a_warning() -> None:
    profile, doc = _profile(_point("a", "holding_register", 40001, "uint16"), base=1)
    (issue,) = check_profile(profile, doc)
    assert issue.severity == "warning"
    assert "looks like Modicon notation for holding_register 1; if the manual means that, write address 1" in str(issue)


def _site(text: str) -> tuple[SiteConfig, YamlDocument]:
    doc = parse_yaml("site: s\ngateway: g\n" + text, "s.yaml")
    return SiteConfig.model_validate(doc.data), doc


def _site_messages(text: str) -> list[str]:
    site, doc = _site(text)
    return [str(i) for i in check_site(site, doc)]


BUS = "buses:\n  - {name: rs485-1, port: /dev/ttyUSB0}\n  - {name: gw, transport: tcp_gateway, host: h, framing: rtu}\n"


def test_unit_ids_a_serial_line_cannot_address() -> None:
    text = (
        BUS
        + "devices:\n  - {name: a, profile: p, bus: rs485-1, unit_id: 0}\n  - {name: b, profile: p, bus: gw, unit_id: 248}\n"
    )
    assert _site_messages(text) == [
        "s.yaml:7:50: devices[0].unit_id: unit id 0 cannot be polled on a serial line, which addresses units 1 to 247",
        "s.yaml:8:45: devices[1].unit_id: unit id 248 cannot be polled on a serial line, which addresses units 1 to 247",
    ]


def test_same_unit_on_different_lines_is_fine() -> None:
    text = BUS + (
        "devices:\n  - {name: a, profile: p, bus: rs485-1}\n  - {name: b, profile: p, bus: gw}\n"
        "  - {name: c, profile: p, host: h}\n  - {name: d, profile: p, host: h, port: 503}\n"
    )
    assert _site_messages(text) == []


def test_same_host_port_and_unit_is_an_error_case_insensitively() -> None:
    text = "devices:\n  - {name: a, profile: p, host: Meter.local}\n  - {name: b, profile: p, host: meter.local}\n"
    assert _site_messages(text) == [
        "s.yaml:5:5: devices[1].unit_id: unit id 1 on meter.local:502 is already used by 'a' (line 4); "
        "each device on one line needs its own unit id"
    ]


def test_duplicate_bus_names() -> None:
    text = "buses:\n  - {name: b, port: /dev/a}\n  - {name: b, port: /dev/b}\n"
    assert _site_messages(text) == [
        "s.yaml:5:12: buses[1].name: bus name 'b' is already used on line 4; give each bus its own name"
    ]


def test_unknown_bus_without_close_match_lists_declared_buses() -> None:
    text = BUS + "devices:\n  - {name: a, profile: p, bus: zzz}\n"
    assert _site_messages(text) == [
        "s.yaml:7:32: devices[0].bus: bus 'zzz' is not declared under buses; declared buses: rs485-1, gw"
    ]


def test_timeout_warning_only_for_a_written_timeout_not_shorter_than_the_interval() -> None:
    defaults = "devices:\n  - {name: a, profile: p, host: h}\n"
    assert _site_messages(defaults) == []
    for interval in ("1", "0.5", "0.2"):  # unset, the timeout is at most half the interval
        assert _site_messages(f"devices:\n  - {{name: a, profile: p, host: h, interval_s: {interval}}}\n") == []
    slow = "devices:\n  - {name: a, profile: p, host: h, interval_s: 0.5, timeout_ms: 1000}\n"
    site, doc = _site(slow)
    (issue,) = check_site(site, doc)
    assert issue.severity == "warning"
    assert "timeout_ms 1000 is not shorter than the 0.5 s interval" in issue.message
    quick = "devices:\n  - {name: a, profile: p, host: h, interval_s: 0.5, timeout_ms: 300}\n"
    assert _site_messages(quick) == []


def test_character_bits() -> None:
    assert character_bits(SerialBusConfig.model_validate({"name": "b", "port": "p"})) == 10
    assert character_bits(SerialBusConfig.model_validate({"name": "b", "port": "p", "parity": "E"})) == 11
    assert character_bits(SerialBusConfig.model_validate({"name": "b", "port": "p", "stopbits": 2})) == 11
    assert (
        character_bits(
            SerialBusConfig.model_validate({"name": "b", "port": "p", "bytesize": 7, "parity": "O", "stopbits": 2})
        )
        == 11
    )


def test_request_time_at_9600_8n1() -> None:
    bus = SerialBusConfig.model_validate({"name": "b", "port": "p", "baudrate": 9600, "pause_ms": 20})
    # 8 request chars + (5 + 2*10) response chars = 33 chars of 10 bits; two 3.5-char silences; pause; turnaround
    expected = 33 * 10 / 9600 + 7 * 10 / 9600 + 0.020 + TURNAROUND_S
    assert request_time_s(bus, RequestSize(10)) == pytest.approx(expected)
    assert expected == pytest.approx(0.07167, abs=1e-5)


def test_request_time_for_bits_and_fast_buses() -> None:
    bus = SerialBusConfig.model_validate({"name": "b", "port": "p", "baudrate": 38400, "parity": "E", "pause_ms": 0})
    # 17 coils -> 3 data bytes: 8 + 8 chars of 11 bits; above 19200 baud the silence is a fixed 1.75 ms
    expected = 16 * 11 / 38400 + 2 * 0.00175 + TURNAROUND_S
    assert request_time_s(bus, RequestSize(17, bits=True)) == pytest.approx(expected)


def test_cycle_is_the_sum_of_requests() -> None:
    bus = SerialBusConfig.model_validate({"name": "b", "port": "p"})
    requests = [RequestSize(2), RequestSize(60), RequestSize(8, bits=True)]
    assert estimate_bus_cycle_s(bus, requests) == pytest.approx(sum(request_time_s(bus, r) for r in requests))
    assert estimate_bus_cycle_s(bus, []) == 0


def test_slow_bus_warning_names_the_fastest_device() -> None:
    text = (
        "buses:\n  - {name: rs485-1, port: /dev/ttyUSB0, baudrate: 1200}\n"
        "devices:\n"
        "  - {name: slow, profile: p, bus: rs485-1, unit_id: 1, interval_s: 60}\n"
        "  - {name: fast, profile: p, bus: rs485-1, unit_id: 2, interval_s: 0.25, timeout_ms: 200}\n"
        "  - {name: off, profile: p, bus: rs485-1, unit_id: 3, interval_s: 0.1, enabled: false}\n"
    )
    site, doc = _site(text)
    one_float = [RequestSize(2)]  # what the read plan of profile p asks per poll
    requests = {"slow": one_float, "fast": one_float, "off": one_float}
    (issue,) = check_bus_times(site, requests, doc)
    bus = site.buses[0]
    assert isinstance(bus, SerialBusConfig)
    cycle = estimate_bus_cycle_s(bus, [RequestSize(2), RequestSize(2)])
    assert str(issue) == (
        f"s.yaml:4:5: buses[0]: warning: bus rs485-1: one polling cycle needs about {cycle:.2f} s at 1200 baud, "
        "longer than the 0.25 s interval of fast; raise the baud rate, lengthen interval_s, or split the bus"
    )
    relaxed = text.replace("interval_s: 0.25", "interval_s: 5")
    site, doc = _site(relaxed)
    assert check_bus_times(site, requests, doc) == []
