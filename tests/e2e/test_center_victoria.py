"""VictoriaMetrics as the centre's store, against Debian's single node (1.79): the cluster's vminsert path with a
tenant, any URL path prefix for every writer kind, idempotent rewrites (and that they need deduplication), and the
ingestor as a process writing through a store outage without losing or doubling a point.

A single node started with ``-http.pathPrefix=/insert/<tenant>`` answers exactly the URL a cluster's vminsert
answers (``/insert/<tenant>/influx/write``), so the tenant path is exercised for real, not mocked."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.center.config import InfluxConfig
from agent.center.influx import InfluxWriteError, V1Writer, V2Writer, VictoriaWriter, make_writer
from tests.e2e.test_center_harness import CenterProcess, Publisher, center_config, plant_traffic, wait_until
from tests.servers.mosquitto import mosquitto
from tests.servers.victoria import VictoriaServer, victoria, vmauth

pytestmark = pytest.mark.e2e
T_MS = 1_764_000_000_000
LINE = f"sample,site=s,gateway=g,device=d,point=p value=1.5 {T_MS}\n".encode()


def stored(vm: VictoriaServer, match: str) -> list[tuple[dict[str, str], list[float], list[int]]]:
    vm.flush()
    return sorted(
        ((s["metric"], s["values"], s["timestamps"]) for s in vm.export(match)), key=lambda s: sorted(s[0].items())
    )


def test_cluster_path_with_tenant_and_project_answered_under_the_same_prefix(tmp_path: Path) -> None:
    with victoria(tmp_path / "vm", path_prefix="/insert/42:7") as vm:
        base = f"http://127.0.0.1:{vm.port}"
        cfg = InfluxConfig(kind="victoriametrics", url=base, tenant="42:7", database="energy", precision="ms")
        writer = make_writer(cfg)
        assert isinstance(writer, VictoriaWriter)
        assert writer.path == "/insert/42:7/influx/write?precision=ms&db=energy"
        writer.write(LINE)
        [(labels, values, stamps)] = stored(vm, '{__name__="sample_value"}')
        assert labels == {"__name__": "sample_value", "db": "energy", "site": "s", "gateway": "g", "device": "d"} | {
            "point": "p"
        }
        assert (values, stamps) == ([1.5], [T_MS])  # precision=ms was honoured

        # A tenant (path) the server does not serve is about our config, not the data: held and retried.
        wrong = make_writer(InfluxConfig(kind="victoriametrics", url=base, tenant="1", timeout_ms=2000))
        with pytest.raises(InfluxWriteError) as err:
            wrong.write(LINE)
        assert err.value.retriable and err.value.status == 400 and "influx.tenant" in str(err.value)
        writer.close()
        wrong.close()


def test_any_path_prefix_for_every_writer_kind(tmp_path: Path) -> None:
    """Behind a reverse proxy or vmauth the store lives under a prefix; v1, v2 and victoriametrics keep it."""
    with victoria(tmp_path / "vm", path_prefix="/tsdb/energy") as vm:
        writers = [
            make_writer(InfluxConfig(kind="victoriametrics", url=vm.url)),
            make_writer(InfluxConfig(kind="v1", url=vm.url, database="energy")),
            make_writer(InfluxConfig(kind="v2", url=vm.url + "/", org="plant", bucket="energy")),
        ]
        assert [type(w) for w in writers] == [VictoriaWriter, V1Writer, V2Writer]
        assert isinstance(writers[0], VictoriaWriter) and writers[0].path == "/tsdb/energy/influx/write?precision=ns"
        for i, writer in enumerate(writers):
            writer.write(f"via{i},site=s value={i}.5 {T_MS}000000\n".encode())
            writer.close()
        got = {labels["__name__"]: values for labels, values, _ in stored(vm, '{__name__=~"via.*"}')}
        assert got == {"via0_value": [0.5], "via1_value": [1.5], "via2_value": [2.5]}


def test_through_vmauth_with_a_token_or_a_password_and_a_wrong_token_is_held_not_logged(tmp_path: Path) -> None:
    """vmauth, VictoriaMetrics' auth proxy, in front of the cluster path: Bearer (token_file) and Basic (username +
    password_file) get through; an unknown token is a target problem (retried, nothing quarantined), and the token
    never appears in the error text even though vmauth echoes it."""
    (tmp_path / "token").write_text("t0ken-right\n")
    (tmp_path / "wrong").write_text("t0ken-wrong\n")
    (tmp_path / "pass").write_text("pa55\n")
    with (
        victoria(tmp_path / "vm", path_prefix="/insert/0") as vm,
        vmauth(tmp_path / "auth", f"http://127.0.0.1:{vm.port}", "t0ken-right", "center", "pa55") as proxy,
    ):
        base = {"kind": "victoriametrics", "url": f"http://127.0.0.1:{proxy.port}", "tenant": "0", "precision": "ms"}
        bearer = make_writer(InfluxConfig.model_validate(base | {"token_file": str(tmp_path / "token")}))
        basic = make_writer(
            InfluxConfig.model_validate(base | {"username": "center", "password_file": str(tmp_path / "pass")})
        )
        bearer.write(f"viatoken,site=s value=1 {T_MS}\n".encode())
        basic.write(f"viapassword,site=s value=2 {T_MS}\n".encode())
        got = {labels["__name__"]: values for labels, values, _ in stored(vm, '{__name__=~"via.*"}')}
        assert got == {"viatoken_value": [1.0], "viapassword_value": [2.0]}

        wrong = make_writer(InfluxConfig.model_validate(base | {"token_file": str(tmp_path / "wrong")}))
        with pytest.raises(InfluxWriteError) as err:
            wrong.write(LINE)
        assert err.value.retriable and "t0ken-wrong" not in str(err.value) and "***" in str(err.value)
        nobody = make_writer(InfluxConfig.model_validate(base))
        with pytest.raises(InfluxWriteError) as missing:
            nobody.write(LINE)
        assert missing.value.retriable and missing.value.status == 401
        for w in (bearer, basic, wrong, nobody):
            w.close()


@pytest.mark.parametrize("dedup", [False, True])
def test_the_same_key_twice_is_one_point_only_with_deduplication(tmp_path: Path, dedup: bool) -> None:
    """A redelivered message writes the same series and timestamp again. InfluxDB overwrites; VictoriaMetrics keeps
    both copies unless -dedup.minScrapeInterval is set (1ms: one sample per series and millisecond), which is why
    docs/scale.md requires it on a single node and on every vmstorage and vmselect of a cluster."""
    with victoria(tmp_path / "vm", dedup=dedup) as vm:
        writer = make_writer(InfluxConfig(kind="victoriametrics", url=vm.url, precision="ms"))
        writer.write(LINE)
        writer.write(LINE)
        writer.close()
        [(_, values, stamps)] = stored(vm, '{__name__="sample_value"}')
        count = vm.query('count_over_time(sample_value{point="p"}[1h])', T_MS / 1000 + 60)
        if dedup:
            assert (values, stamps) == ([1.5], [T_MS])
            assert [r["value"][1] for r in count] == ["1"]
        else:
            assert (values, stamps) == ([1.5, 1.5], [T_MS, T_MS])
            assert [r["value"][1] for r in count] == ["2"]


def test_ingestor_into_the_cluster_path_through_a_store_outage_nothing_lost_nothing_doubled(tmp_path: Path) -> None:
    """Five minutes of plant data (1 s stamps, 2 gateways x 10 devices x 300 polls, 4 points) while the store is
    killed after the first 100 messages and comes back on the same port and data: the ingestor holds its batch,
    acks nothing, the broker holds the rest (receive maximum 200), and every series ends with exactly 300 samples;
    a replay of the first 500 messages on top changes nothing."""
    traffic = plant_traffic(gateways=2, devices=10, polls=300, points=4)  # 6000 messages, 24000 points
    with mosquitto(tmp_path / "mq") as broker, victoria(tmp_path / "vm", path_prefix="/insert/0") as vm:
        influx = {
            "kind": "victoriametrics",
            "url": f"http://127.0.0.1:{vm.port}",
            "tenant": "0",
            "batch_points": 2000,
            "timeout_ms": 2000,
        }
        cfg = center_config(broker.port, influx, mqtt={"receive_maximum": 200})

        def samples() -> int:
            vm.flush()
            return sum(len(s["values"]) for s in vm.export('{__name__="sample_value"}'))

        with CenterProcess(tmp_path / "c", cfg) as center:
            pub = Publisher(broker.port)
            pub.publish_all(traffic[:100])
            wait_until(lambda: samples() == 400, 30, "the first 400 samples", poll_s=0.2)
            vm.kill9()
            pub.publish_all(traffic[100:] + traffic[:500], timeout_s=180)
            center.wait_log("failed:", 30)
            vm.start()
            center.wait_log("recovered", 60)
            wait_until(lambda: samples() == 24000, 180, "all 24000 samples after the store returned", poll_s=0.5)
            series = vm.export('{__name__="sample_value"}')
            assert len(series) == 2 * 10 * 4
            assert {len(s["values"]) for s in series} == {300}
            assert {len(set(s["timestamps"])) for s in series} == {300}
            pub.close()
            assert center.stop() == 0
            log = center.log()
            assert log.count("failed:") == 1 and log.count("recovered") == 1
            assert "VictoriaMetrics http://127.0.0.1" in log and "tenant 0" in log
