"""`energy-agent probe` on a site with an OPC UA device: one Read of every point, against the OPC UA simulator."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent.cli import main
from tests.integration.opcua_sim import NAMESPACE, start_sim


def test_probe_reads_an_opcua_device_and_names_a_missing_node(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sim = start_sim(tmp_path / "sim")
    try:
        site = tmp_path / "site.yaml"
        site.write_text(
            "site: s1\ngateway: g1\nstate_dir: state\ndevices:\n"
            "  - name: kiln1\n    protocol: opcua\n"
            f"    endpoint: {sim.endpoint}\n"
            "    security: {policy: None, mode: None, allow_none: true}\n"
            "    points:\n"
            f'      - {{name: production, node_id: "nsu={NAMESPACE};s=kiln1.production_t", unit: t}}\n'
            f'      - {{name: ghost, node_id: "nsu={NAMESPACE};s=kiln1.no_such_value", unit: t}}\n'
        )
        code = main(["probe", str(site), "--json"])
        out = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    finally:
        sim.proc.stop()
    assert code == 0
    by_point = {o["point"]: o for o in out}
    assert by_point["production"]["quality"] == "good" and by_point["production"]["value"] > 0
    assert by_point["ghost"]["quality"] == "bad" and by_point["ghost"]["reason"] == "BadNodeIdUnknown"
