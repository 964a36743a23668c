"""OPC UA device config: security refusals, auth sources, addressing rules, and check() for the loader."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from agent.config.opcua import OpcuaDeviceConfig, check
from agent.config.site import SiteConfig

NS = "urn:plant"


def device(**over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "name": "kiln1",
        "protocol": "opcua",
        "endpoint": "opc.tcp://127.0.0.1:4840",
        "client_cert": "pki/c.der",
        "client_key": "pki/k.pem",
        "trust_dir": "pki/trusted",
        "points": [{"name": "coal", "node_id": f"nsu={NS};s=Kiln1.Coal", "role": "coal_feed_tph"}],
    }
    base.update(over)
    return base


def error_text(data: dict[str, Any]) -> str:
    with pytest.raises(ValidationError) as info:
        OpcuaDeviceConfig.model_validate(data)
    return str(info.value)


def test_defaults_are_secure() -> None:
    cfg = OpcuaDeviceConfig.model_validate(device())
    assert (cfg.security.policy.value, cfg.security.mode.value) == ("Basic256Sha256", "SignAndEncrypt")
    assert cfg.auth.type == "anonymous" and cfg.mode == "subscribe"


def test_policy_none_needs_explicit_allow() -> None:
    assert "allow_none: true" in error_text(device(security={"policy": "None", "mode": "None"}))
    cfg = OpcuaDeviceConfig.model_validate(
        device(security={"policy": "None", "mode": "None", "allow_none": True}, client_cert=None, client_key=None)
    )
    assert cfg.security.allow_none


@pytest.mark.parametrize("policy", ["Basic128Rsa15", "Basic256"])
def test_deprecated_policies_refused(policy: str) -> None:
    assert "security.policy" in error_text(device(security={"policy": policy, "mode": "Sign"}))


def test_policy_and_mode_must_agree() -> None:
    assert "policy None goes with mode None" in error_text(
        device(security={"policy": "Basic256Sha256", "mode": "None"})
    )


def test_secure_policy_needs_certificate_key_and_trust_dir() -> None:
    assert "needs client_cert and client_key" in error_text(device(client_key=None))
    assert "needs trust_dir" in error_text(device(trust_dir=None))


def test_password_from_exactly_one_place() -> None:
    both = {"type": "username", "username": "u", "password_file": "pw", "password_env": "PW"}
    neither = {"type": "username", "username": "u"}
    assert "either password_file or password_env" in error_text(device(auth=both))
    assert "either password_file or password_env" in error_text(device(auth=neither))
    with pytest.raises(ValidationError):
        OpcuaDeviceConfig.model_validate(device(auth={"type": "username", "username": "u", "password": "x"}))


def test_point_addressing_rules() -> None:
    assert "either node_id or browse_path" in error_text(device(points=[{"name": "a"}]))
    assert "needs namespace_uri" in error_text(device(points=[{"name": "a", "browse_path": "Kiln1/Coal"}]))
    text = error_text(device(points=[{"name": "a", "node_id": "nsu=urn:x;s=A", "namespace_uri": NS}]))
    assert "already names its namespace" in text
    assert "percent deadband" in error_text(
        device(points=[{"name": "a", "node_id": "i=1", "deadband": {"type": "percent", "value": 150}}])
    )


def site(*points: dict[str, Any]) -> SiteConfig:
    return SiteConfig.model_validate({"site": "s", "gateway": "g", "devices": [device(points=list(points))]})


def test_check_reports_duplicates_index_namespaces_and_bad_node_ids() -> None:
    issues = check(
        site(
            {"name": "a", "node_id": f"nsu={NS};s=X"},
            {"name": "a", "node_id": f"nsu={NS};s=Y"},
            {"name": "c", "node_id": f"nsu={NS};s=X"},
            {"name": "d", "node_id": "ns=3;s=Z"},
            {"name": "e", "node_id": "Kiln1.Coal"},
            {"name": "f", "node_id": "ns=0;i=2258"},
        ),
        {},
    )
    by_path = {path: message for path, message in issues}
    assert "is already used by points[0]" in by_path[("devices", 0, "points", 1, "name")]
    assert "same node as points[0]" in by_path[("devices", 0, "points", 2)]
    assert "namespace index 3 can change" in by_path[("devices", 0, "points", 3, "node_id")]
    assert "is not a node id" in by_path[("devices", 0, "points", 4, "node_id")]
    assert len(issues) == 4  # ns=0 is the fixed standard namespace: fine


def test_check_accepts_a_clean_device() -> None:
    assert check(site({"name": "a", "browse_path": "Kiln1/Coal", "namespace_uri": NS}), {}) == []


def test_site_file_errors_are_positioned_by_the_loader(tmp_path: Path) -> None:
    from agent.config.load import load_site
    from agent.errors import ConfigError

    text = """\
site: plant
gateway: gw1
devices:
  - name: kiln1
    protocol: opcua
    endpoint: opc.tcp://10.0.0.5:4840
    security: {policy: None, mode: None, allow_none: true}
    points:
      - {name: coal, node_id: "nsu=urn:plant;s=Kiln1.Coal", role: coal_feed_tph}
      - {name: temp, node_id: "ns=3;s=Kiln1.Temp"}
"""
    (tmp_path / "site.yaml").write_text(text)
    with pytest.raises(ConfigError) as info:
        load_site(tmp_path / "site.yaml")
    (issue,) = [i for i in info.value.issues if i.severity == "error"]
    assert (issue.line, "namespace index 3 can change" in issue.message) == (10, True)
    (tmp_path / "site.yaml").write_text(text.replace("ns=3;", "nsu=urn:plant;"))
    loaded = load_site(tmp_path / "site.yaml")
    assert isinstance(loaded.site.devices[0], OpcuaDeviceConfig)
    (tmp_path / "site.yaml").write_text(text.replace(", allow_none: true", ""))
    with pytest.raises(ConfigError, match="allow_none: true"):
        load_site(tmp_path / "site.yaml")
