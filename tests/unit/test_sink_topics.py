"""Topic names, the MQTT and spool config sections, and the shipped wire schema file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

import agent
from agent import wire
from agent.config.mqtt import MqttConfig
from agent.config.spool import SpoolConfig
from agent.sinks.connect import backoff_s
from agent.sinks.topics import check_level, kpi_topic, samples_topic, status_topic


def test_topics_follow_the_documented_layout() -> None:
    assert samples_topic("plant", "s1", "gw1", "kiln-1.meter") == "plant/s1/gw1/kiln-1.meter/samples"
    assert kpi_topic("acme/energy", "s1", "gw1") == "acme/energy/s1/gw1/kpi"
    assert status_topic("plant", "s1", "gw1") == "plant/s1/gw1/status"


@pytest.mark.parametrize("bad", ["a/b", "meter+", "#", "", "$SYS", "-lead", "x" * 65, "two words", "a\x00b"])
def test_a_name_cannot_inject_levels_or_wildcards(bad: str) -> None:
    with pytest.raises(ValueError, match="cannot be an MQTT topic level"):
        samples_topic("plant", "s1", "gw1", bad)


@given(st.text(max_size=80))
def test_any_accepted_name_is_exactly_one_safe_level(name: str) -> None:
    try:
        check_level(name)
    except ValueError:
        return
    assert not set(name) & set("/+#$\x00") and 1 <= len(name) <= 64
    assert samples_topic("p", "s", "g", name).split("/")[3] == name


def test_prefix_levels_are_checked_too() -> None:
    with pytest.raises(ValueError):
        kpi_topic("plant/+", "s1", "gw1")
    with pytest.raises(ValidationError, match="topic_prefix"):
        MqttConfig(host="h", topic_prefix="plant/#")


def test_mqtt_config_defaults_and_protocol_as_yaml_gives_it() -> None:
    c = MqttConfig.model_validate({"host": "broker", "protocol": 5})
    assert (c.protocol, c.effective_port, c.qos, c.replay_order) == ("5", 1883, 1, "live_first")
    tls = MqttConfig.model_validate({"host": "b", "protocol": "3.1.1", "tls": {"ca_file": "/ca.pem"}})
    assert (tls.protocol, tls.effective_port, tls.tls and tls.tls.check_hostname) == ("3.1.1", 8883, True)


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"password_env": "X"}, "needs a username"),
        ({"username": "u", "password_env": "X", "password_file": "/f"}, "give one of"),
        ({"tls": {"cert_file": "/c.pem"}}, "both cert_file and key_file"),
        ({"reconnect_min_s": 10, "reconnect_max_s": 1}, "reconnect_max_s"),
        ({"qos": 0}, "qos"),
        ({"passwd": "x"}, "passwd"),
    ],
)
def test_mqtt_config_errors(doc: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        MqttConfig.model_validate({"host": "h"} | doc)


def test_password_sources_and_errors_never_show_the_secret(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "pw").write_text("from-file\n")
    assert MqttConfig(host="h", username="u", password_file=str(tmp_path / "pw")).read_password() == "from-file"
    monkeypatch.setenv("MQTT_PW", "from-env")
    assert MqttConfig(host="h", username="u", password_env="MQTT_PW").read_password() == "from-env"
    monkeypatch.delenv("MQTT_PW")
    with pytest.raises(ValueError, match="MQTT_PW is not set"):
        MqttConfig(host="h", username="u", password_env="MQTT_PW").read_password()
    with pytest.raises(ValueError, match="cannot read"):
        MqttConfig(host="h", username="u", password_file=str(tmp_path / "missing")).read_password()
    literal = MqttConfig.model_validate({"host": "h", "username": "u", "password": "hunter2"})
    assert "hunter2" not in repr(literal) and "hunter2" not in literal.model_dump_json()
    assert any("password is written in the site file" in w for w in literal.warnings())


def test_spool_path_defaults_under_the_state_dir() -> None:
    assert SpoolConfig().resolve_path("/var/lib/energy-agent") == Path("/var/lib/energy-agent/spool.sqlite")
    assert SpoolConfig(path="q/spool.db").resolve_path("/st") == Path("/st/q/spool.db")
    assert SpoolConfig(path="/abs/s.db").resolve_path("/st") == Path("/abs/s.db")
    with pytest.raises(ValidationError):
        SpoolConfig.model_validate({"fsync": "sometimes"})


def test_shipped_wire_schema_matches_the_wire_models() -> None:
    shipped = Path(agent.__file__).parent / "data" / "wire-v1.schema.json"
    assert json.loads(shipped.read_text(encoding="utf-8")) == wire.json_schema(), (
        "agent/data/wire-v1.schema.json is stale: run `energy-agent schema --out agent/data`"
    )


def test_reconnect_backoff_grows_to_the_cap_with_jitter_in_the_upper_half() -> None:
    lows = [backoff_s(a, 1.0, 30.0, rng=lambda: 0.0) for a in range(1, 9)]
    highs = [backoff_s(a, 1.0, 30.0, rng=lambda: 1.0) for a in range(1, 9)]
    assert highs == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]
    assert lows == [h / 2 for h in highs]
    assert backoff_s(10_000, 1.0, 30.0) <= 30.0
