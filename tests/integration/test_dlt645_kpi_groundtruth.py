"""KPIs computed from DL/T 645 counters against the simulated plant's ground truth.

The plant's main meter, kiln meter (DL/T 645-2007) and PV meter (DL/T 645-1997) are read through the agent's
DL/T 645 poller; every request frame goes to the meter simulator (``Dlt645Simulator.answer``), which encodes the
plant's values on the secondary side (CT ratios 200, 100 and 10) into BCD as a meter does, and the reply is cut,
checked and decoded by the agent's codec, ratios applied. The kiln, water meter and boiler are read as Modbus
devices as in test_kpi_groundtruth. The model runs 65 minutes in 1 s steps; the kiln meter's BCD counter starts
1200 kWh (primary) below its wrap at 999999.99 x CT. Every final KPI of good quality fed by these counters must
match the ground truth within 0.5 %.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from agent.config.dlt645 import Dlt645DeviceConfig, Dlt645ProfileConfig
from agent.config.load import load_any_profile_checked, shipped_profile_dir
from agent.config.site import SiteConfig
from agent.errors import DeviceTimeout
from agent.kpi.check import check
from agent.kpi.engine import KpiEngine
from agent.model import KpiValue, Quality
from agent.sources.dlt645.device import Dlt645Poller
from simulators.dlt645_server import Dlt645Simulator, SimMeter
from simulators.image import load_profile
from simulators.layout import PLANT_LAYOUT, profile_path, site_document
from simulators.plant import PlantModel, SteppedClock
from tests.integration.test_kpi_groundtruth import COAL_LHV_GJ_T, RUN_S, START, WARMUP_S, Poller, Truth, expected

METERS = {  # plant device -> (profile, address, CT ratio)
    "main-meter": ("dlt645-generic-2007-3ph-meter", "000000000101", 200.0),
    "kiln1-meter": ("dlt645-generic-2007-3ph-meter", "000000000102", 100.0),
    "pv-meter": ("dlt645-generic-1997-meter", "000000000103", 10.0),
}
MODBUS = ["kiln1", "water-meter", "boiler1"]
KPI_SECTION: dict[str, Any] = {
    "windows": ["15m", "1h"],
    "settle_s": 30,
    "coverage_min": 0.9,
    "factors": {"grid_year": 2023, "grid_scope": "inner_mongolia"},
    "lines": [
        {
            "name": "line1",
            "indicator": "cement_clinker",
            "production": [{"device": "kiln1", "role": "production_t"}],
            "electricity": [{"device": "kiln1-meter", "role": "energy_import_kwh", "max_rate_per_h": 20000}],
            "fuels": [{"device": "kiln1", "role": "coal_t", "carrier": "raw_coal", "lhv_gj_per_unit": COAL_LHV_GJ_T}],
            "water": [{"device": "water-meter", "role": "water_m3"}],
            "waste_heat": [{"device": "boiler1", "role": "heat_recovered_gj"}],
        }
    ],
    "demand": [{"name": "site", "meters": [{"device": "main-meter", "role": "energy_import_kwh"}], "windows": ["1h"]}],
    "power_factor": [
        {
            "name": "site",
            "active": [{"device": "main-meter", "role": "energy_import_kwh"}],
            "reactive": [{"device": "main-meter", "role": "reactive_energy_kvarh"}],
        }
    ],
    "renewable": [
        {
            "name": "site",
            "total": [{"device": "main-meter", "role": "energy_import_kwh"}],
            "total_includes_renewable": False,
        }
    ],
    "custom": [
        {
            "name": "plant_kwh_per_t",
            "formula": 'total("main-meter", "energy_import_kwh") / line1.production',
            "unit": "kWh/t",
        }
    ],
}


class AnswerLink:
    """The simulator's ``answer`` behind the link seam (no sockets: the model runs on a stepped clock)."""

    def __init__(self, sim: Dlt645Simulator) -> None:
        self.sim = sim

    async def exchange(self, frame: bytes, cut: Callable[[bytearray], bytes | None], timeout_s: float) -> bytes:
        answer = self.sim.answer(frame[frame.index(0x68) :])
        got = cut(bytearray(answer)) if answer is not None else None
        if got is None:
            raise DeviceTimeout("timeout")
        return got


async def _no_pause() -> None:
    return None


def _site() -> SiteConfig:
    doc = site_document("127.0.0.1", 1502, devices=MODBUS)
    doc["devices"] += [
        {
            "name": d,
            "protocol": "dlt645",
            "profile": profile,
            "bus": "plant-gateway",
            "address": address,
            "ct_ratio": ct,
            "renewable": d == "pv-meter",
        }
        for d, (profile, address, ct) in METERS.items()
    ]
    site = SiteConfig.model_validate(doc | {"kpi": KPI_SECTION})
    for device in site.devices:
        if isinstance(device, Dlt645DeviceConfig):
            profile, _ = load_any_profile_checked(shipped_profile_dir() / f"{device.profile}.yaml")
            assert isinstance(profile, Dlt645ProfileConfig)
            device.bind(profile)
    return site


@pytest.fixture(scope="module")
def run() -> tuple[list[KpiValue], Truth, KpiEngine, Dlt645Simulator]:
    site = _site()
    profiles = {PLANT_LAYOUT[d][0]: load_profile(profile_path(PLANT_LAYOUT[d][0])) for d in MODBUS}
    assert check(site, profiles) == []
    model = PlantModel(seed=7, start=START - WARMUP_S, step_s=1.0)
    clock = SteppedClock(model.start)
    meters = [
        SimMeter(d, address, "1997" if "1997" in profile else "2007", ct_ratio=ct, fe=(0, 2, 4))
        for d, (profile, address, ct) in METERS.items()
    ]
    sim = Dlt645Simulator(model, meters, clock=clock)
    link = AnswerLink(sim)
    engine = KpiEngine.from_site(site, profiles, clock)
    tz = ZoneInfo(site.timezone)
    dlt = [
        Dlt645Poller(d, "1997" if "1997" in d.profile else "2007", "sim", clock, tz)
        for d in site.devices
        if isinstance(d, Dlt645DeviceConfig)
    ]
    modbus = [Poller(d, profiles[PLANT_LAYOUT[d][0]]) for d in MODBUS]
    truth = Truth(model)
    truth.record()
    out: list[KpiValue] = []
    loop = asyncio.new_event_loop()
    try:
        for k in range(RUN_S + WARMUP_S + 1):
            if k:
                model.advance_to(model.start + k)
                truth.record()
            clock.t = model.now
            if k == 0:  # the kiln meter's BCD counter (XXXXXX.XX x CT 100) wraps about 10 minutes in
                model.inject("kiln1-meter", "counter_offset", role="energy_import_kwh", value=1e6 * 100 - 1200)
            if k % 2 == 0:
                for poller in dlt:
                    result = loop.run_until_complete(poller.poll(link, _no_pause))
                    engine.ingest(list(result.samples))
            if k % 3 == 1:
                for p in modbus:
                    engine.ingest(p.poll(model))
            if k % 60 == 0:
                out.extend(engine.evaluate(model.now))
    finally:
        loop.close()
    return out, truth, engine, sim


@pytest.mark.long(seconds=5)  # with the module's plant run over DL/T 645 (~10 s, its fixture) the fast loop skips
def test_the_kiln_meter_wrapped_and_only_reads_were_sent(
    run: tuple[list[KpiValue], Truth, KpiEngine, Dlt645Simulator],
) -> None:
    _, _, engine, sim = run
    stats: dict[str, Any] = engine.counter_stats()
    kiln = next(v for k, v in stats.items() if k.startswith("kiln1-meter|role:energy_import_kwh"))
    assert kiln.wraps == 1 and kiln.resets == 0
    assert set(sim.controls) == {0x11, 0x01}
    assert sim.non_read_controls() == {}


@pytest.mark.long(seconds=5)  # with the module's plant run over DL/T 645 (~10 s, its fixture) the fast loop skips
def test_kpis_from_dlt645_counters_match_ground_truth(
    run: tuple[list[KpiValue], Truth, KpiEngine, Dlt645Simulator],
) -> None:
    values, truth, _, _ = run
    finals = [v for v in values if v.detail.get("final") == 1.0 and v.window_start >= START]
    compared: set[str] = set()
    errors: list[str] = []
    for v in finals:
        want = expected(v, truth)
        if want is None or v.quality is not Quality.GOOD:
            continue
        assert v.value is not None
        if abs(v.value - want) > 0.005 * abs(want):
            errors.append(f"{v.scope}.{v.name} {v.window}@{v.window_start - START:.0f}: {v.value} vs {want}")
        compared.add(f"{v.scope}.{v.name}")
    assert errors == [], "\n".join(errors)
    fed = {"line1.electricity_kwh", "line1.sec_kwh_per_t", "site.power_factor", "site.renewable_share"}
    assert fed | {"site.max_demand_kw", "site.plant_kwh_per_t"} <= compared
