"""``energy-agent demo``: the whole pipeline on built-in defaults, on this machine, with a live terminal view.

It starts, each as its own process on free loopback ports in a work folder:
- the simulated cement plant (``python -m simulators modbus``: eleven devices behind one Modbus TCP gateway),
- an MQTT broker: Debian's mosquitto when installed (``deploy/demo.sh`` installs it), otherwise an embedded
  broker (amqtt, from the ``demo`` extra; MQTT 3.1.1 only, so the agent speaks 3.1.1 to it and the centre
  ingestor, which needs MQTT 5 shared subscriptions, is left out),
- the agent (``energy-agent run``) with a site file written for the simulator, plus KPIs graded against the
  national cement clinker levels,
- when Debian's influxd is installed, InfluxDB 1.x and the centre ingestor (``energy-center run``),
and shows, on one screen of at most 40 lines redrawn in place, what arrives at the broker (KPIs with
benchmark/baseline grades, device health) and where the data went (work folder, MQTT topics with a mosquitto_sub
line, InfluxDB URL with an example query). Stops after ``--duration`` seconds or on Ctrl-C; exit 0 when every
device's samples and a KPI message arrived. The work folder is a temporary one deleted on exit unless ``--keep``
(or ``--workdir``) is given.
"""

from __future__ import annotations

import argparse
import contextlib
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ruamel.yaml import YAML

if TYPE_CHECKING:
    from agent.cli._dashboard import Places

NAME = "demo"
HELP = "run the whole pipeline on built-in defaults: plant simulator, broker, agent, live view"

# The demo's KPI section: the clinker line graded against GB 16780 / the 2023 benchmark table, equipment KPIs,
# demand, power factor, renewable share and the energy balance. Short windows so values show within minutes.
DEMO_KPI: dict[str, Any] = {
    "windows": ["1m", "15m"],
    "publish_interval_s": 10,
    "coverage_min": 0.8,
    "factors": {"grid_year": 2023, "grid_scope": "inner_mongolia"},
    "lines": [
        {
            "name": "line1",
            "indicator": "cement_clinker",
            "production": [{"device": "kiln1", "role": "production_t"}],
            "electricity": [{"device": "kiln1-meter", "role": "energy_import_kwh"}],
            "fuels": [{"device": "kiln1", "role": "coal_t", "carrier": "raw_coal", "lhv_gj_per_unit": 22.0}],
            "process_co2": {"kind": "clinker"},  # calcination CO2 beside the energy CO2
            "water": [{"device": "water-meter", "role": "water_m3"}],
            "waste_heat": [{"device": "boiler1", "role": "heat_recovered_gj"}],
        }
    ],
    "equipment": [
        {"kind": "motor", "name": "raw-mill", "device": "raw-mill-vfd", "rated_power_kw": 4000},
        {"kind": "compressor", "name": "compressor1", "device": "compressor1"},
        {"kind": "pump", "name": "pump1", "device": "pump1"},
        {
            "kind": "transformer",
            "name": "transformer1",
            "device": "transformer1",
            "rated_kva": 5000.0,
            "no_load_loss_kw": 4.2,
            "load_loss_kw": 30.0,
        },
    ],
    "demand": [{"name": "site", "meters": [{"device": "main-meter", "role": "energy_import_kwh"}], "windows": ["15m"]}],
    "renewable": [
        {
            "name": "site",
            "total": [{"device": "main-meter", "role": "energy_import_kwh"}],
            "total_includes_renewable": False,
        }
    ],
    "balance": [
        {
            "name": "plant",
            "main": {"device": "main-meter", "role": "energy_import_kwh"},
            "subs": [
                {"device": d, "role": "energy_import_kwh"}
                for d in ("kiln1-meter", "raw-mill-vfd", "transformer1", "compressor1", "pump1")
            ],
        }
    ],
}


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--duration", type=float, default=0, help="stop after this many seconds (0 = until Ctrl-C)")
    parser.add_argument("--workdir", type=Path, help="keep files here (default: a temporary folder)")
    parser.add_argument(
        "--keep", action="store_true", help="keep the temporary work folder (logs, spool, InfluxDB data) after exit"
    )
    parser.add_argument("--refresh", type=float, default=2.0, help="seconds between screen updates")
    parser.add_argument("--plain", action="store_true", help="print frames one after another (no screen clearing)")
    parser.add_argument(
        "--broker",
        choices=("auto", "mosquitto", "embedded"),
        default="auto",
        help="auto: mosquitto when installed, else the embedded broker",
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_listening(port: int, proc: subprocess.Popen[bytes], what: str, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with code {proc.returncode}; see its log in the work folder")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"{what} is not listening on 127.0.0.1:{port} after {timeout_s:.0f} s")


class Processes:
    """The demo's child processes; each logs to ``<workdir>/<name>.log``; all are stopped by PID on exit."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.procs: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(self, name: str, argv: list[str]) -> subprocess.Popen[bytes]:
        with (self.workdir / f"{name}.log").open("ab") as log:
            proc = subprocess.Popen(
                argv, cwd=self.workdir, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.procs.append((name, proc))
        return proc

    def stop_all(self) -> None:
        """Newest first, one at a time: the agent flushes to a broker that is still there."""
        for _, proc in reversed(self.procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


def _mosquitto() -> str | None:
    return shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None)


def _amqtt() -> Path | None:
    binary = Path(sys.executable).parent / "amqtt"
    return binary if binary.exists() else None


def start_broker(procs: Processes, choice: str) -> tuple[int, bool]:
    """Start a broker on a free loopback port; returns (port, embedded)."""
    port = free_port()
    binary = _mosquitto() if choice != "embedded" else None
    if binary is not None:
        conf = procs.workdir / "mosquitto.conf"
        conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
        wait_listening(port, procs.start("mosquitto", [binary, "-c", str(conf)]), "mosquitto")
        return port, False
    if choice == "mosquitto":
        raise RuntimeError("mosquitto is not installed: run deploy/demo.sh, which installs Debian's mosquitto")
    embedded = _amqtt()
    if embedded is None:
        raise RuntimeError("no broker: install Debian's mosquitto, or the embedded one with pip install '.[demo]'")
    conf = procs.workdir / "amqtt.yaml"
    _dump(conf, {
        "listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{port}"}},
        "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
    })  # fmt: skip
    wait_listening(port, procs.start("amqtt", [str(embedded), "-c", str(conf)]), "the embedded broker")
    return port, True


def count_quarantined(workdir: Path) -> int:
    """Messages the centre put in its dead letter (``dead-letter.jsonl`` and its rotated files), one per line."""
    total = 0
    for path in workdir.glob("dead-letter.jsonl*"):
        with path.open("rb") as f:
            total += sum(1 for _ in f)
    return total


def start_influx_and_center(procs: Processes, broker_port: int) -> int | None:
    """InfluxDB 1.x plus the ingestor, when influxd is installed; returns InfluxDB's HTTP port."""
    influxd = shutil.which("influxd")
    if influxd is None:
        return None
    http, rpc = free_port(), free_port()
    root = procs.workdir / "influxdb"
    conf = procs.workdir / "influxdb.conf"
    conf.write_text(
        f'reporting-disabled = true\nbind-address = "127.0.0.1:{rpc}"\n'
        f'[meta]\n  dir = "{root}/meta"\n[data]\n  dir = "{root}/data"\n  wal-dir = "{root}/wal"\n'
        f'[http]\n  bind-address = "127.0.0.1:{http}"\n  log-enabled = false\n'
    )
    wait_listening(http, procs.start("influxd", [influxd, "-config", str(conf)]), "influxd")
    import urllib.request

    urllib.request.urlopen(  # reason: a fixed loopback URL
        urllib.request.Request(f"http://127.0.0.1:{http}/query", data=b"q=CREATE+DATABASE+energy", method="POST"),
        timeout=10,
    ).read()
    center = procs.workdir / "center.yaml"
    _dump(
        center,
        {
            "mqtt": {"host": "127.0.0.1", "port": broker_port, "client_id": "demo-center"},
            "influx": {"kind": "v1", "url": f"http://127.0.0.1:{http}", "database": "energy"},
            "dead_letter": {"file": str(procs.workdir / "dead-letter.jsonl")},
        },
    )
    procs.start("energy-center", [sys.executable, "-m", "agent.center.cli", "run", str(center)])
    return http


def _dump(path: Path, data: dict[str, Any]) -> None:
    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = False
    with path.open("w", encoding="utf-8") as f:
        yaml.dump(data, f)


def write_demo_site(workdir: Path, sim_port: int, broker_port: int, mqtt_311: bool = False) -> Path:
    from simulators.layout import site_document

    site = site_document("127.0.0.1", sim_port, state_dir=str(workdir / "state"))
    site["mqtt"] = {"host": "127.0.0.1", "port": broker_port, "client_id": "demo-agent"}
    if mqtt_311:
        site["mqtt"]["protocol"] = "3.1.1"
    site["kpi"] = DEMO_KPI
    site["monitoring"] = {"status_interval_s": 5}
    path = workdir / "site.yaml"
    _dump(path, site)
    return path


@contextlib.contextmanager
def _workdir(given: Path | None, keep: bool) -> Iterator[Path]:
    if given is not None:
        given.mkdir(parents=True, exist_ok=True)
        yield given.resolve()
    elif keep:
        yield Path(tempfile.mkdtemp(prefix="energy-demo-"))
    else:
        with tempfile.TemporaryDirectory(prefix="energy-demo-") as tmp:
            yield Path(tmp)


def _screen_lines() -> int:
    """Lines the live view may use: 40, or fewer on a smaller terminal (a frame must never scroll)."""
    return max(10, min(40, shutil.get_terminal_size((120, 41)).lines - 1))


def _farewell(places: Places) -> list[str]:
    """What to say on exit about the data: where it stays and how to look at it again, or that it is gone."""
    if not places.kept:
        return [f"work folder {places.workdir} deleted (run with --keep to keep logs, spool and InfluxDB data)"]
    lines = [f"work folder kept: {places.workdir} (site.yaml, *.log, state/spool.sqlite, ground-truth.jsonl)"]
    if places.influx_port is not None:
        conf = shlex.quote(str(places.workdir / "influxdb.conf"))
        lines.append(f"  to look at the data again, start InfluxDB on it: influxd -config {conf} &")
        lines.append(
            f"  then: curl -G 127.0.0.1:{places.influx_port}/query -d db={places.database} "
            """--data-urlencode 'q=SELECT last("value") FROM "kpi" GROUP BY "name"'"""
        )
    return lines


def run(args: argparse.Namespace) -> int:
    from agent.cli._dashboard import DashboardState, Places, Subscriber, frame, render

    with _workdir(args.workdir, args.keep) as workdir:
        procs = Processes(workdir)
        state = DashboardState()
        subscriber: Subscriber | None = None
        places: Places | None = None
        live = not args.plain and sys.stdout.isatty()
        try:
            broker, embedded = start_broker(procs, args.broker)
            sim_port = free_port()
            sim = procs.start(
                "simulator",
                [
                    sys.executable,
                    "-m",
                    "simulators",
                    "modbus",
                    "--port",
                    str(sim_port),
                    "--ground-truth",
                    str(workdir / "ground-truth.jsonl"),
                ],
            )
            wait_listening(sim_port, sim, "the plant simulator")
            site = write_demo_site(workdir, sim_port, broker, mqtt_311=embedded)
            influx = None if embedded else start_influx_and_center(procs, broker)
            subscriber = Subscriber("127.0.0.1", broker, "plant", state)
            subscriber.start()
            agent = procs.start("energy-agent", [sys.executable, "-m", "agent", "run", str(site)])
            doc: dict[str, Any] = YAML(typ="safe", pure=True).load(site.read_text())
            places = Places(
                workdir=workdir,
                kept=args.keep or args.workdir is not None,
                broker="embedded broker (MQTT 3.1.1)" if embedded else "mosquitto",
                broker_port=broker,
                topic=f"plant/{doc['site']}/{doc['gateway']}",
                influx_port=influx,
                timezone=doc.get("timezone", "UTC"),
                started=time.time(),
                first_grade_window_s=60.0,  # DEMO_KPI's shortest window, graded (indicative) from the first whole one
                publish_interval_s=float(DEMO_KPI["publish_interval_s"]),
            )
            print(f"demo running in {workdir}; {places.broker} 127.0.0.1:{broker}; simulator 127.0.0.1:{sim_port}")
            if live:
                print("\x1b[?25l", end="", flush=True)  # hide the cursor while the view redraws
            deadline = time.monotonic() + args.duration if args.duration > 0 else None
            while deadline is None or time.monotonic() < deadline:
                time.sleep(min(args.refresh, max(0.0, deadline - time.monotonic())) if deadline else args.refresh)
                if agent.poll() is not None:
                    print(f"the agent exited with code {agent.returncode}; see {workdir}/energy-agent.log")
                    return 1
                if live:
                    print(frame(render(state, time.time(), places, _screen_lines())), end="", flush=True)
                else:
                    print("\n".join(render(state, time.time(), places)) + "\n", flush=True)
        except KeyboardInterrupt:
            pass
        except RuntimeError as exc:
            print(f"demo: {exc}", file=sys.stderr)
            return 1
        finally:
            if live:
                print("\x1b[?25h", end="", flush=True)
            procs.stop_all()
            if subscriber is not None:
                subscriber.stop()
        devices = len(state.devices)
        print()
        for line in _farewell(places) if places is not None else []:
            print(line)
        quarantined = count_quarantined(workdir)
        print(
            f"demo done: {state.sample_messages} sample messages from {devices} devices, "
            f"{state.kpi_messages} KPI messages, {state.invalid} invalid payloads, "
            f"{quarantined} messages quarantined by the centre"
        )
        ok = devices >= 11 and state.kpi_messages > 0 and state.invalid == 0 and quarantined == 0
        return 0 if ok else 1
