"""The bus-time budget with DL/T 645 frame sizes: the figure from the standard's frame layout, and validate's
warning when a line of meters cannot be polled within its interval."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.config.bus_time import RequestSize, estimate_bus_cycle_s
from agent.config.site import SerialBusConfig
from agent.runtime.compile import compile_site


def test_one_2007_energy_read_at_2400_baud() -> None:
    bus = SerialBusConfig.model_validate({"name": "b", "port": "/dev/null", "baudrate": 2400, "parity": "E"})
    # request FE x4 + 16, reply FE x4 + 12 + 4 + 4 = 44 characters of 11 bits; wait max(20 ms, 3.5 chars); 20 ms
    expected = 44 * 11 / 2400 + max(0.020, 3.5 * 11 / 2400) + 0.020
    assert estimate_bus_cycle_s(bus, [RequestSize(0, chars=(20, 24))]) == pytest.approx(expected)


def test_validate_warns_when_a_line_of_meters_does_not_fit_its_interval(tmp_path: Path) -> None:
    meters = "".join(
        f"  - {{name: m{i}, protocol: dlt645, profile: dlt645-generic-2007-3ph-meter, bus: rs485, "
        f"address: '{i + 1:012d}', interval_s: 10}}\n"
        for i in range(12)
    )
    site = tmp_path / "site.yaml"
    site.write_text(
        f"site: s\ngateway: g\nbuses:\n  - {{name: rs485, port: /dev/null, baudrate: 2400}}\ndevices:\n{meters}"
    )
    warnings = [str(w) for w in compile_site(site).warnings]
    assert len(warnings) == 1
    assert (
        "bus rs485: one polling cycle needs about" in warnings[0]
        and "at 2400 baud, longer than the 10.0 s interval of m0" in warnings[0]
    )
    bus = compile_site(site).loaded.site.buses[0]
    assert isinstance(bus, SerialBusConfig) and bus.parity == "E"  # left unset on a DL/T 645-only line: 8E1
    fewer = site.read_text().replace("interval_s: 10", "interval_s: 60")
    site.write_text(fewer)
    assert compile_site(site).warnings == ()
