"""`energy-agent probe` and `energy-agent browse` on a site with an OPC UA device, against the OPC UA simulator."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.cli import main
from tests.integration.opcua_sim import NAMESPACE, Sim, client_pki, start_sim

pytestmark = pytest.mark.e2e  # starts the OPC UA simulator as a process

PASSWORD = "kiln-pw-42"


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
        assert main(["probe", str(site)]) == 3
        text = capsys.readouterr().out
    finally:
        sim.proc.stop()
    assert code == 3  # some points bad
    by_point = {o["point"]: o for o in out}
    assert by_point["production"]["quality"] == "good" and by_point["production"]["value"] > 0
    assert by_point["ghost"]["quality"] == "bad" and by_point["ghost"]["reason"] == "BadNodeIdUnknown"
    assert text.startswith(f"kiln1 (OPC UA {sim.endpoint}): answered, 1 of 2 points bad")
    assert text.count("BadNodeIdUnknown") == 1 and "hint: the server has no such node" in text


@pytest.fixture(scope="module")
def secure_sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Sim, Path]]:
    base = tmp_path_factory.mktemp("secure")
    sim = start_sim(base / "sim", policies=["Basic256Sha256_SignAndEncrypt"], users={"operator": PASSWORD})
    client_pki(base / "pki", trust=sim)
    try:
        yield sim, base
    finally:
        sim.proc.stop()


def secure_site(sim: Sim, base: Path, password: str, points: str) -> Path:
    """A site like the example's OPC UA device: encrypted, a user with a password file, certificates, trust_dir."""
    (base / "pw").write_text(password + "\n")
    (base / "pw").chmod(0o600)
    site = base / "site.yaml"
    site.write_text(
        "site: s1\ngateway: g1\nstate_dir: state\ndevices:\n"
        f"  - name: kiln1-plc\n    protocol: opcua\n    endpoint: {sim.endpoint}\n"
        "    security: {policy: Basic256Sha256, mode: SignAndEncrypt}\n"
        "    auth: {type: username, username: operator, password_file: pw}\n"
        "    client_cert: pki/agent-cert.der\n    client_key: pki/agent-key.pem\n    trust_dir: pki/trusted\n" + points
    )
    return site


ONE_POINT = f'    points:\n      - {{name: production, node_id: "nsu={NAMESPACE};s=kiln1.production_t"}}\n'


def test_probe_hints_at_the_password_file_when_the_server_refuses_the_user(
    secure_sim: tuple[Sim, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    sim, base = secure_sim
    site = secure_site(sim, base, "not-the-password", ONE_POINT)
    assert main(["probe", str(site)]) == 1
    out = capsys.readouterr().out
    assert out.startswith(f"kiln1-plc (OPC UA {sim.endpoint}): FAILED\n")
    assert out.count("BadUserAccessDenied") == 1 and "not-the-password" not in out
    assert "hint: the server refused the user: check auth.username and the password file" in out


def test_browse_yaml_prints_points_that_validate_and_read(
    secure_sim: tuple[Sim, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    sim, base = secure_sim
    site = secure_site(sim, base, PASSWORD, ONE_POINT)
    assert main(["browse", str(site), "--yaml"]) == 0
    block = capsys.readouterr().out
    lines = block.splitlines()
    assert lines[2] == "    points:" and lines[0].startswith("    # ")
    kiln = [line for line in lines[3:] if '"kiln1.' in line]
    assert kiln and all(line.startswith("      - {name: ") for line in kiln)
    assert f'{{name: "kiln1.production_t", node_id: "nsu={NAMESPACE};s=kiln1.production_t"}}  # Double = ' in block
    pasted = secure_site(sim, base, PASSWORD, "\n".join(["    points:", *kiln]) + "\n")  # the kiln's variables
    assert main(["validate", str(pasted)]) == 0
    assert capsys.readouterr().err == ""
    assert main(["probe", str(pasted)]) == 0
    assert f"kiln1-plc (OPC UA {sim.endpoint}): answered in" in capsys.readouterr().out
    assert main(["browse", str(site), "--device", "nope", "--yaml"]) == 2
