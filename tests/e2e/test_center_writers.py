"""The two InfluxDB writers against real servers: what is accepted, and which failures are retriable."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.center.config import InfluxConfig
from agent.center.influx import InfluxWriteError, V1Writer, V2Writer, make_writer
from tests.servers.influx import influxd
from tests.servers.process import free_port
from tests.servers.victoria import victoria

pytestmark = pytest.mark.e2e
LINE = b"sample,site=s,gateway=g,device=d,point=p value=1.5 1764000000000000000\n"


def test_v1_accepts_then_maps_failures(tmp_path: Path) -> None:
    with influxd(tmp_path / "db") as db:
        db.create_database("energy")
        writer = make_writer(InfluxConfig(kind="v1", url=db.url, database="energy"))
        assert isinstance(writer, V1Writer)
        writer.write(LINE)
        writer.write(LINE)  # same point again: overwritten, still one
        assert db.scalar("SELECT count(value) FROM sample", "energy") == 1

        with pytest.raises(InfluxWriteError) as bad:
            writer.write(b"sample,site=s value=\n")
        assert not bad.value.retriable and bad.value.status == 400

        with pytest.raises(InfluxWriteError) as conflict:
            writer.write(b'sample,site=s,gateway=g,device=d,point=p value="text" 1764000000000000001\n')
        assert not conflict.value.retriable and "field type conflict" in str(conflict.value)

        missing_db = V1Writer(InfluxConfig(kind="v1", url=db.url, database="nope"))
        with pytest.raises(InfluxWriteError) as nodb:
            missing_db.write(LINE)
        assert nodb.value.retriable and nodb.value.status == 404  # fixed on the server side; hold the data
        missing_db.close()

        db.kill9()
        with pytest.raises(InfluxWriteError) as down:
            writer.write(LINE)
        assert down.value.retriable and down.value.status is None
        db.start()
        writer.write(LINE)  # reconnects by itself
        writer.close()


def test_v2_accepts_and_a_dead_server_is_retriable(tmp_path: Path) -> None:
    with victoria(tmp_path / "vm") as vm:
        writer = V2Writer(InfluxConfig(kind="v2", url=vm.url, org="plant", bucket="energy", timeout_ms=2000))
        writer.write(LINE)
        vm.flush()
        assert [s["values"] for s in vm.export('{__name__="sample_value"}')] == [[1.5]]
        # (VictoriaMetrics skips malformed lines with 204 instead of a 400, so refusals are tested on influxd)
        writer.close()
    nobody = V2Writer(
        InfluxConfig(kind="v2", url=f"http://127.0.0.1:{free_port()}", org="o", bucket="b", timeout_ms=1000)
    )
    with pytest.raises(InfluxWriteError) as down:
        nobody.write(LINE)
    assert down.value.retriable
    nobody.close()
