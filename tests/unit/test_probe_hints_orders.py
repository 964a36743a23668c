"""probe's hints at the likely cause of a fault, and its ranking of byte orders (counters by continuity)."""

from __future__ import annotations

import pytest

from agent.cli._hints import hint, hints
from agent.cli._orders import describe, is_counter, rank_orders
from agent.config.profile import ByteOrder, PointConfig
from agent.config.site import ModbusDeviceConfig


@pytest.mark.parametrize(
    ("reason", "expected"),
    [
        ("ILLEGAL DATA ADDRESS reading input 9000..9001 (unit 2, 127.0.0.1:502)", "address_base"),
        ("ILLEGAL FUNCTION reading coil 0..0 (unit 1, h:502)", "kind in the profile"),
        ("ILLEGAL DATA VALUE reading holding 0..124 (unit 1, h:502)", "max_registers_per_request"),
        ("GATEWAY TARGET DEVICE FAILED TO RESPOND reading input 0..1 (unit 42, h:502)", "check unit_id"),
        ("GATEWAY PATH UNAVAILABLE", "check unit_id"),
        ("timeout after 500 ms reading coil 0..0 (unit 11, 127.0.0.1:15502)", "wiring (RS-485 A/B"),
        ("cannot connect: connection refused", "check host and port"),
        ("cannot connect within 1000 ms", "check host and port"),
        ("CRC error", "baud rate, parity and stop bits"),
        ("opc.tcp://h:4840 refused the connection: BadUserAccessDenied", "password file"),
        ("opc.tcp://h:4840 refused the connection: BadIdentityTokenInvalid", "configure auth"),
        ("opc.tcp://h:4840 refused the connection: BadIdentityTokenRejected", "configure auth"),
        ("opc.tcp://h:4840 refused the connection: BadSecurityChecksFailed", "energy-agent opcua trust"),
        ("opc.tcp://h:4840 refused the connection: BadCertificateUntrusted", "energy-agent opcua trust"),
        ("no answer from opc.tcp://h:4840 in time", "check host and port"),
        ("opc.tcp://h:4840 refused the TCP connection", "check host and port"),
        ("BadNodeIdUnknown", "energy-agent browse"),
        ("out of range: 812.0 > 600.0", "probe --orders"),
    ],
)
def test_each_fault_has_a_hint_at_its_likely_cause(reason: str, expected: str) -> None:
    text = hint(reason)
    assert text is not None and expected in text


def test_unknown_reasons_get_no_hint_and_hints_are_given_once() -> None:
    assert hint("BadSensorFailure") is None
    reasons = ["timeout after 500 ms", "timeout after 500 ms", "ILLEGAL DATA ADDRESS", "timeout after 500 ms"]
    assert [h.split(":")[0] for h in hints(reasons)] == ["no reply", "the device has no register there"]


def energy(order: str = "ABCD") -> PointConfig:
    return PointConfig.model_validate(
        {"name": "e", "kind": "holding_register", "address": 0, "type": "uint32", "order": order, "scale": 0.01,
         "unit": "kWh", "role": "energy_import_kwh"}
    )  # fmt: skip


def test_a_uint32_counter_near_2_to_the_32_ranks_its_true_order_first_by_continuity() -> None:
    before, now = [0xFFFF, 0xFF00], [0xFFFF, 0xFF23]  # ABCD: 42949670.40 kWh, then +0.35
    assert rank_orders(energy(), now)[0][-1].order is ByteOrder.ABCD  # by magnitude alone: the true order last
    ranked, how = rank_orders(energy(), now, before)
    assert how == "continuity between two polls"
    assert ranked[0].order is ByteOrder.ABCD
    assert ranked[0].delta == pytest.approx(0.35)
    assert describe(ranked, how, ByteOrder.ABCD).startswith("orders: ABCD=42949670.75 (+0.35), BADC=")


def test_continuity_ranks_word_swapped_counters_and_demotes_orders_that_go_backwards() -> None:
    before, now = [0xFFF0, 0x0012], [0x0004, 0x0013]  # CDAB: 0x0012FFF0 -> 0x00130004, the low word wrapped
    ranked, _ = rank_orders(energy("CDAB"), now, before)
    assert ranked[0].order is ByteOrder.CDAB and ranked[0].delta == pytest.approx(0.20)
    assert all(r.delta is not None and r.delta < 0 for r in ranked[1:] if r.order is ByteOrder.ABCD)


def test_a_counter_that_did_not_move_is_ranked_by_plausibility_and_says_so() -> None:
    ranked, how = rank_orders(energy(), [0x0000, 0x16AC], [0x0000, 0x16AC])
    assert how == "plausibility: the counter did not move" and ranked[0].order is ByteOrder.ABCD


def test_counters_are_known_by_role_or_by_a_totals_unit() -> None:
    assert is_counter(energy())
    gauge = {"name": "p", "kind": "input_register", "address": 0, "type": "float32"}
    assert is_counter(PointConfig.model_validate({**gauge, "unit": "m3"}))
    assert not is_counter(PointConfig.model_validate({**gauge, "unit": "m3/h"}))
    assert not is_counter(PointConfig.model_validate({**gauge, "unit": "kW", "role": "active_power_kw"}))


@pytest.mark.parametrize(("interval", "timeout"), [(None, 500.0), (1, 500.0), (0.2, 100.0), (2, 1000.0), (60, 1000.0)])
def test_the_default_timeout_is_shorter_than_the_interval(interval: float | None, timeout: float) -> None:
    raw: dict[str, object] = {"name": "m", "profile": "p", "host": "h"}
    if interval is not None:
        raw["interval_s"] = interval
    assert ModbusDeviceConfig.model_validate(raw).timeout_ms == timeout
    assert ModbusDeviceConfig.model_validate({**raw, "timeout_ms": 3000}).timeout_ms == 3000
