"""64-bit word orders as manuals print them (ABCDEFGH, GHEFCDAB, BADCFEHG, HGFEDCBA) are accepted for ``order``
and ``byte_order`` and decode as their four-letter equivalents; another eight-letter order is refused with the
exact mapping (issue 17: they were refused and undocumented)."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.config.load import load_profile
from agent.config.profile import ByteOrder, ProfileConfig
from agent.errors import ConfigError
from agent.sources.modbus.codec import compile_point

VALUE = 0x0102030405060708  # bytes A..H = 01..08


def registers(order: str) -> list[int]:
    """The four registers holding VALUE when the manual prints the byte order ``order`` (A = 0x01 ... H = 0x08)."""
    data = bytes(ord(c) - ord("A") + 1 for c in order)
    return [int.from_bytes(data[i : i + 2], "big") for i in range(0, 8, 2)]


@pytest.mark.parametrize(
    ("printed", "short"),
    [("ABCDEFGH", "ABCD"), ("GHEFCDAB", "CDAB"), ("BADCFEHG", "BADC"), ("HGFEDCBA", "DCBA")],
)
def test_a_manuals_eight_letter_order_decodes_the_manuals_registers(printed: str, short: str) -> None:
    profile = ProfileConfig.model_validate(
        {
            "profile": "t",
            "address_base": 0,
            "byte_order": printed,
            "points": [
                {"name": "e", "unit": "Wh", "kind": "holding_register", "address": 0, "type": "uint64"},
                {
                    "name": "f",
                    "unit": "Wh",
                    "kind": "holding_register",
                    "address": 4,
                    "type": "uint64",
                    "order": printed,
                },
            ],
        }
    )
    assert profile.byte_order is ByteOrder(short)
    for point in profile.points:
        codec = compile_point(point, profile.byte_order)
        assert codec.decode_registers(registers(printed))[1] == VALUE


def test_another_eight_letter_order_is_refused_with_the_mapping(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(
        "profile: t\naddress_base: 0\npoints:\n"
        "  - {name: f, unit: kWh, kind: holding_register, address: 0, type: float64, order: EFGHABCD}\n"
    )
    with pytest.raises(ConfigError) as err:
        load_profile(path)
    assert str(err.value).splitlines()[0] == (
        f"{path}:4:84: points[0].order: byte order 'EFGHABCD' is not supported; for 64-bit values use one of "
        "ABCDEFGH (= ABCD), GHEFCDAB (= CDAB), BADCFEHG (= BADC), HGFEDCBA (= DCBA)"
    )
