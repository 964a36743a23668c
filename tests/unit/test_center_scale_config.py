"""center.yaml for scaled-out centres: several brokers (``brokers:``) and the VictoriaMetrics target (tenant, prefix,
auth). Single-broker files stay valid unchanged."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.center.config import load
from agent.center.fleet import Fleet
from agent.center.influx import InfluxWriter, VictoriaWriter, make_writer
from agent.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "center.yaml"
    path.write_text(text + f"dead_letter:\n  file: {tmp_path / 'dead.jsonl'}\n")
    return path


TWO = """brokers:
  - {name: north, host: mq-north.example, client_id: center-1, group: north}
  - {name: south, host: mq-south.example, port: 8883, tls: {ca_file: /etc/ca.crt}, username: c, client_id: center-1}
influx: {database: energy}
"""


class _NoWriter:
    target = "nowhere"

    def write(self, body: bytes) -> None:
        raise AssertionError("not written in this test")

    def close(self) -> None:
        pass


def no_writer(_: object) -> InfluxWriter:
    return _NoWriter()


def test_a_single_mqtt_section_is_one_endpoint_and_one_pipeline(tmp_path: Path) -> None:
    cfg = load(write(tmp_path, "mqtt: {host: broker.example, client_id: c-1}\ninflux: {database: energy}\n"))
    assert [(name, m.host, m.client_id) for name, m in cfg.endpoints()] == [("broker.example", "broker.example", "c-1")]
    fleet = Fleet(cfg, no_writer)
    assert [m.name for m in fleet.members] == ["c-1"]  # log lines as before


def test_brokers_each_keep_their_own_credentials_tls_and_group(tmp_path: Path) -> None:
    cfg = load(write(tmp_path, TWO))
    (_, north), (_, south) = cfg.endpoints()
    assert (north.host, north.port, north.tls, north.group) == ("mq-north.example", 1883, None, "north")
    assert south.tls is not None and south.tls.ca_file == "/etc/ca.crt"
    assert (south.port, south.username, south.group) == (8883, "c", "energy-center")
    fleet = Fleet(cfg, no_writer)
    assert [m.name for m in fleet.members] == ["center-1@north", "center-1@south"]
    assert [m.config.mqtt.host for m in fleet.members] == ["mq-north.example", "mq-south.example"]
    assert all(m.config.brokers == [] for m in fleet.members)
    assert fleet.stalled() is None
    assert "brokers connected 0/2 (-)" in fleet.summary()


@pytest.mark.parametrize(
    ("text", "error"),
    [
        (
            "mqtt: {host: a}\n" + TWO,
            "give either 'mqtt' (one broker) or 'brokers' (several, each with a name), not both",
        ),
        (
            "brokers:\n  - {name: a, host: x}\n  - {name: a, host: y}\ninflux: {database: e}\n",
            "brokers: two brokers are named 'a'; give each its own name",
        ),
        (
            "brokers:\n  - {name: a, host: x}\n  - {name: b, host: x}\ninflux: {database: e}\n",
            "brokers 'a' and 'b' have the same host, port and client_id",
        ),
        ("brokers:\n  - {host: x}\ninflux: {database: e}\n", "brokers[0].name: field required"),
        (
            "influx: {kind: v1, database: e, tenant: '0'}\n",
            "'tenant' is for kind victoriametrics",
        ),
        ("influx: {kind: victoriametrics, tenant: zero}\n", "influx.tenant: 'zero'"),
    ],
)
def test_scale_config_errors_are_positioned_and_say_what_to_do(tmp_path: Path, text: str, error: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load(path)
    assert error in str(err.value)
    assert str(err.value).startswith(f"{path}:")


def test_victoriametrics_paths_and_auth(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "pass").write_text("pw\n")
    monkeypatch.setenv("VM_TOKEN", "tok")
    single = load(write(tmp_path, "influx: {kind: victoriametrics, url: 'http://vm:8428'}\n")).influx
    writer = make_writer(single)
    assert isinstance(writer, VictoriaWriter) and writer.path == "/influx/write?precision=ns"
    cluster = load(
        write(
            tmp_path,
            "influx: {kind: victoriametrics, url: 'https://vmauth.example/prefix/', tenant: '12:34', "
            f"username: center, password_file: {tmp_path / 'pass'}, precision: ms}}\n",
        )
    ).influx
    writer = make_writer(cluster)
    assert isinstance(writer, VictoriaWriter)
    assert writer.path == "/prefix/insert/12:34/influx/write?precision=ms"
    assert writer.target == "VictoriaMetrics https://vmauth.example/prefix/ tenant 12:34"  # no secret
    assert cluster.secret() == "pw" and not cluster.uses_token()
    bearer = load(write(tmp_path, "influx: {kind: victoriametrics, token_env: VM_TOKEN}\n")).influx
    assert bearer.uses_token() and bearer.secret() == "tok"


def test_the_shipped_configs_validate_single_broker_unchanged() -> None:
    deploy = Path(__file__).resolve().parents[2] / "deploy" / "center"
    single = load(deploy / "center.yaml")
    assert single.brokers == [] and [name for name, _ in single.endpoints()] == ["broker.energy.example"]
    sharded = load(deploy / "center-sharded.yaml")
    assert [name for name, _ in sharded.endpoints()] == ["north", "south"]
    writer = make_writer(sharded.influx)
    assert isinstance(writer, VictoriaWriter) and writer.path == "/insert/0/influx/write?precision=ms"
