"""OpcuaSource against the OPC UA plant simulator: ground truth, status propagation, missing nodes, poll mode."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.cli._hints import hint
from agent.model import PollResult, Quality, Sample
from agent.sources.opcua.source import OpcuaSource, read_once
from simulators.plant import PlantModel
from tests.integration.opcua_sim import NAMESPACE, Sim, all_good, device_config, point, running, start_sim

pytestmark = pytest.mark.e2e  # starts the OPC UA simulator as a process

KILN = ["coal_feed_tph", "production_rate_tph", "temperature_c", "active_power_kw", "coal_t"]
BOILER = ["steam_flow_tph", "steam_pressure_mpa", "steam_temperature_c", "feedwater_temperature_c", "gas_flow_m3h"]


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sim]:
    s = start_sim(
        tmp_path_factory.mktemp("opcua-sim"),
        bad=["kiln1.temperature_c=BadSensorFailure", "boiler1.steam_pressure_mpa=UncertainLastUsableValue"],
    )
    try:
        yield s
    finally:
        s.proc.stop()


def check_ground_truth(sim: Sim, samples: list[Sample]) -> int:
    """Every good sample equals the plant model's value at the sample's source timestamp. Returns how many."""
    model = PlantModel(seed=sim.seed, start=sim.start, step_s=1.0)
    checked = 0
    for s in sorted(samples, key=lambda s: s.source_ts or 0.0):
        if s.quality is not Quality.GOOD:
            continue
        assert s.source_ts is not None
        model.advance_to(s.source_ts)
        assert model.now == s.source_ts
        device, _, name = s.point.partition(".")
        assert s.value == model.values(device)[name], s
        checked += 1
    return checked


async def test_subscription_values_equal_the_simulator_ground_truth(sim: Sim) -> None:
    points = [point("kiln1", v) for v in KILN if v != "temperature_c"] + [point("boiler1", v) for v in BOILER]
    points.remove(point("boiler1", "steam_pressure_mpa"))
    source = OpcuaSource(device_config(sim, points))
    async with running(source) as run:
        first = await run.wait_for(all_good, 10)
        start = run.results.index(first)
        await run.wait_for(lambda r: True, 10, after=start + 5)
    collected = [s for r in run.results[start:] for s in r.samples]
    assert check_ground_truth(sim, collected) == len(collected)
    assert len({s.source_ts for s in collected}) >= 2, "values must move with the model"
    for result in run.results:
        assert [s.point for s in result.samples] == [p["name"] for p in points]  # every point once per result
    assert source.health()[0].state == "ok"


async def test_bad_and_uncertain_status_propagate_with_their_names(sim: Sim) -> None:
    points = [point("kiln1", "temperature_c"), point("boiler1", "steam_pressure_mpa"), point("kiln1", "coal_t")]
    source = OpcuaSource(device_config(sim, points))
    async with running(source) as run:
        result = await run.wait_for(lambda r: r.samples[2].quality is Quality.GOOD, 10)
    bad, uncertain, good = result.samples
    assert (bad.quality, bad.reason, bad.value) == (Quality.BAD, "BadSensorFailure", None)
    assert (uncertain.quality, uncertain.reason) == (Quality.UNCERTAIN, "UncertainLastUsableValue")
    assert isinstance(uncertain.value, float) and uncertain.source_ts is not None
    assert good.reason == "" and check_ground_truth(sim, [good]) == 1


async def test_missing_node_names_the_node_and_the_device_and_others_still_read(sim: Sim) -> None:
    points = [
        point("kiln1", "coal_t"),
        {"name": "ghost", "node_id": f"nsu={NAMESPACE};s=kiln1.no_such_value"},
        {"name": "lost", "browse_path": "kiln1/no_such_child", "namespace_uri": NAMESPACE},
        {"name": "elsewhere", "node_id": "nsu=urn:not-on-this-server;s=x"},
    ]
    source = OpcuaSource(device_config(sim, points, name="kiln-line"))
    async with running(source) as run:
        result = await run.wait_for(lambda r: r.samples[0].quality is Quality.GOOD, 10)
    _, ghost, lost, elsewhere = result.samples
    assert (ghost.quality, ghost.reason) == (Quality.BAD, "BadNodeIdUnknown")
    assert lost.quality is Quality.BAD and lost.reason == "BadNoMatch"
    assert elsewhere.quality is Quality.BAD and "namespace urn:not-on-this-server" in elsewhere.reason
    errors = "\n".join(result.errors)
    assert "kiln-line: point ghost: node nsu=urn:energy-agent:simulator:plant;s=kiln1.no_such_value" in errors
    assert "does not exist" in errors and "BadNodeIdUnknown" in errors
    assert "kiln-line: point lost: browse path kiln1/no_such_child not found" in errors
    assert source.health()[0].state == "ok"  # one wrong node does not take the device down


async def test_a_wrong_namespace_uri_is_one_line_with_the_hint_and_the_servers_namespaces(
    sim: Sim, caplog: pytest.LogCaptureFixture
) -> None:
    """Issue 17: a wrong namespace URI gave one error line per point and no hint."""
    wrong = "urn:energy-agent:simulator:plan"  # one letter short
    points = [{"name": f"p{i}", "node_id": f"nsu={wrong};s=kiln1.coal_t"} for i in range(20)]
    source = OpcuaSource(device_config(sim, points, name="kiln-plc"))
    with caplog.at_level(logging.WARNING, logger="agent.sources.opcua"):
        async with running(source) as run:
            result = await run.wait_for(lambda r: len(r.samples) == 20, 10)
    assert all(s.quality is Quality.BAD for s in result.samples)
    assert {s.reason for s in result.samples} == {f"namespace {wrong} is not on the server"}
    lines = [r.getMessage() for r in caplog.records if wrong in r.getMessage()]
    assert len(lines) == 1, lines
    assert lines[0].startswith(
        f"kiln-plc: namespace {wrong} is not on {sim.endpoint} (20 point(s): p0, p1, p2 and 17 more); check "
        "namespace_uri or nsu= against the server's namespaces: [0] http://opcfoundation.org/UA/"
    )
    assert NAMESPACE in lines[0]
    assert len(set(result.errors)) == len(result.errors) == 1
    assert (hint(result.samples[0].reason) or "").startswith("the server has no such namespace URI")


async def test_poll_mode_and_browse_paths_read_the_same_truth(sim: Sim) -> None:
    points = [
        {"name": "kiln1.coal_t", "browse_path": "kiln1/coal_t", "namespace_uri": NAMESPACE},
        point("boiler1", "steam_flow_tph"),
    ]
    source = OpcuaSource(device_config(sim, points, mode="poll"))
    async with running(source) as run:
        first = await run.wait_for(all_good, 10)
        await run.wait_for(all_good, 10, after=run.results.index(first) + 2)
    good = [s for r in run.results for s in r.samples if s.quality is Quality.GOOD]
    assert check_ground_truth(sim, good) == len(good) >= 4
    assert all(r.requests >= 1 for r in run.results[run.results.index(first) + 1 :])  # one Read per poll


async def test_read_once_for_probe(sim: Sim, tmp_path: Path) -> None:
    result: PollResult = await read_once(OpcuaSource(device_config(sim, [point("kiln1", "production_t")])))
    assert result.samples[0].quality is Quality.GOOD and result.requests >= 2
    assert check_ground_truth(sim, list(result.samples)) == 1


async def test_absolute_deadband_reaches_the_server(sim: Sim) -> None:
    points = [
        point("kiln1", "production_t", deadband={"type": "absolute", "value": 1e12}),  # never exceeded
        point("kiln1", "coal_t"),
    ]
    source = OpcuaSource(device_config(sim, points))
    async with running(source) as run:
        first = await run.wait_for(all_good, 10)
        await run.wait_for(lambda r: True, 10, after=run.results.index(first) + 5)
    window = run.results[run.results.index(first) :]
    assert len({r.samples[0].source_ts for r in window}) == 1  # only the initial value was reported
    assert len({r.samples[1].source_ts for r in window}) >= 2  # the same kind of counter without deadband moves
    assert all(r.samples[0].quality is Quality.GOOD for r in window)  # unchanged within deadband is still good


async def test_unreachable_endpoint_is_bad_every_interval_and_retried(tmp_path: Path) -> None:
    from agent.config.opcua import OpcuaDeviceConfig
    from tests.servers.process import free_port

    cfg = OpcuaDeviceConfig.model_validate(
        {
            "name": "boiler1",
            "endpoint": f"opc.tcp://127.0.0.1:{free_port()}",
            "security": {"policy": "None", "mode": "None", "allow_none": True},
            "interval_s": 0.25,
            "points": [{"name": "steam", "node_id": "nsu=urn:x;s=steam", "role": "steam_flow_tph"}],
        }
    )
    source = OpcuaSource(cfg)
    async with running(source) as run:
        await run.wait_for(lambda r: source.health()[0].consecutive_failures >= 3, 10)
    sample = run.results[-1].samples[0]
    assert (sample.quality, sample.value) == (Quality.BAD, None)
    assert sample.reason.startswith("not connected: ") and "refused" in sample.reason
    assert run.results[-1].errors[0].startswith("boiler1: not connected")
    health = source.health()[0]
    assert health.state == "failed" and health.last_success_ts is None
    assert health.consecutive_failures >= 3 and set(health.errors_by_kind) == {"connection"}


async def test_probe_opcua_reads_a_device_of_a_loaded_site(sim: Sim, tmp_path: Path) -> None:
    from agent.config.load import load_site
    from agent.sources.opcua import probe_opcua
    from simulators.opcua_server import site_text

    (tmp_path / "site.yaml").write_text(site_text(sim.endpoint, PlantModel(seed=sim.seed), ["kiln1", "boiler1"]))
    loaded = load_site(tmp_path / "site.yaml")
    result = await probe_opcua(loaded, "boiler1")
    assert result.device == "boiler1" and len(result.samples) == 8
    assert {s.point for s in result.samples} >= {"steam_flow_tph", "gas_flow_m3h", "feedwater_temperature_c"}
    assert all(s.role is not None and s.role.value == s.point for s in result.samples)
    steam = next(s for s in result.samples if s.point == "steam_pressure_mpa")
    assert (steam.quality, steam.reason, steam.unit) == (Quality.UNCERTAIN, "UncertainLastUsableValue", "MPa")
    with pytest.raises(KeyError, match="OPC UA devices: kiln1, boiler1"):
        await probe_opcua(loaded, "raw-mill-vfd")
