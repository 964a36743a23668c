"""The whole agent, end to end: N Modbus TCP devices x M float32 points -> agent (KPIs, spool) -> mosquitto.

    .venv/bin/python -m tests.benchmarks.agent_e2e [--devices 100] [--points 20] [--interval 1.0] [--seconds 30]

Processes: the Modbus simulator (simulators.modbus_server, one port, one unit id per device), Debian's mosquitto,
the agent (``python -m agent run``, each device its own TCP connection, a demand KPI per device, the SQLite
spool) and, in this process, a subscriber that timestamps arrivals. Figures over the measuring window:
agent CPU (user+sys from /proc), CPU-ms per 1000 points, points/s delivered, points per agent CPU-second, peak
RSS, Modbus requests per poll against the read plan's minimum, poll interval p50/p95 per device, and
poll-to-broker latency (arrival minus the sample's acquisition time). Prints one JSON object, then a table.

``--sim c`` serves the devices with the libmodbus simulator ``mb_sim`` of the peers harness (one TCP port per device,
float32 ABCD at register 2i, at most 500 devices per process: more devices start more processes on more port
ranges) for loads the Python simulator cannot serve (above ~2,000 reads/s). It is not a project dependency: the
binary is found through ``MB_SIM`` or ``PATH``, and the benchmark says so and exits 2 when there is none. Find the
ceiling by raising ``--devices``/``--points`` or lowering ``--interval`` until ``points_delivered_per_s`` falls
behind ``points_offered_per_s``; give ``--timeout-ms`` room so that connects under load do not back devices off.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from ruamel.yaml import YAML

from tests.servers.mosquitto import mosquitto
from tests.servers.process import free_port, wait_port

REPO = Path(__file__).resolve().parents[2]


def profile(points: int) -> dict[str, Any]:
    pts: list[dict[str, Any]] = [
        {"name": f"p{i}", "kind": "holding_register", "address": 2 * i, "type": "float32", "unit": "kW"}
        for i in range(points)
    ]
    pts[0] |= {"name": "energy", "unit": "kWh", "role": "energy_import_kwh"}
    pts[1] |= {"name": "power", "role": "active_power_kw"}
    return {"profile": "bench", "category": "energy_meter", "address_base": 0, "points": pts}


MB_SIM_MAX_DEVICES = 500  # libmodbus select()s inside modbus_receive: 2N + 10 descriptors must stay below 1024


def mb_sim_binary() -> str | None:
    """The C simulator: ``MB_SIM`` if set, else ``mb_sim`` on PATH; None when there is none."""
    return os.environ.get("MB_SIM") or shutil.which("mb_sim")


def _free_port_range(n: int) -> int:
    """A base port below the ephemeral range such that base .. base+n-1 are all free right now."""
    for _ in range(200):
        base = random.randrange(10000, 32000 - n)
        try:
            with contextlib.ExitStack() as stack:
                for port in range(base, base + n):
                    s = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
                    s.bind(("127.0.0.1", port))
        except OSError:
            continue
        return base
    raise RuntimeError(f"no {n} consecutive free ports")


@contextlib.contextmanager
def python_simulator(prof_path: Path, devices: int) -> Iterator[tuple[list[tuple[int, int]], list[int]]]:
    """simulators.modbus_server on one port, one unit id per device: ((port, unit id) per device, [pid])."""
    port = free_port()
    sim = subprocess.Popen(
        [sys.executable, "-m", "tests.benchmarks.modbus_throughput", "--serve", str(port), str(prof_path),
         str(min(devices, 247))],
        stdout=subprocess.PIPE, cwd=REPO, start_new_session=True,
    )  # fmt: skip
    try:
        assert sim.stdout is not None
        if sim.stdout.readline().strip() != b"ready":
            raise RuntimeError("simulator did not start")
        # Unit ids repeat past 247 devices: each device has its own connection, so that is fine for a bench.
        yield [(port, i % 247 + 1) for i in range(devices)], [sim.pid]
    finally:
        sim.terminate()
        sim.wait(10)


@contextlib.contextmanager
def c_simulator(
    binary: str, root: Path, devices: int, points: int
) -> Iterator[tuple[list[tuple[int, int]], list[int]]]:
    """mb_sim processes of at most MB_SIM_MAX_DEVICES devices each, one port per device (unit id ignored)."""
    sims: list[subprocess.Popen[bytes]] = []
    where: list[tuple[int, int]] = []
    try:
        for k, first in enumerate(range(0, devices, MB_SIM_MAX_DEVICES)):
            n = min(MB_SIM_MAX_DEVICES, devices - first)
            base = _free_port_range(n)
            ready = root / f"mb_sim{k}.ready"
            cmd = [binary, str(base), str(n), str(2 * points), "contig", str(root / f"mb_sim{k}.json"), str(ready)]
            sims.append(subprocess.Popen(cmd, stdout=subprocess.DEVNULL, start_new_session=True))
            deadline = time.monotonic() + 20
            while not ready.exists():
                if sims[-1].poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{binary} did not start on ports {base}..{base + n - 1}")
                time.sleep(0.05)
            where += [(base + d, 1) for d in range(n)]
        yield where, [sim.pid for sim in sims]
    finally:
        for sim in sims:
            sim.terminate()
        for sim in sims:
            sim.wait(10)


def _dump(obj: Any, path: Path) -> None:
    with path.open("w") as f:
        YAML(typ="safe").dump(obj, f)


def _proc_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _proc_kb(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def _profiler(pid: int, seconds: float, out: Path | None) -> subprocess.Popen[bytes] | None:
    """py-spy (not a project dependency: PY_SPY names its binary) sampling the agent over the window."""
    if out is None:
        return None
    spy = os.environ.get("PY_SPY", "py-spy")
    cmd = [spy, "record", "-p", str(pid), "-d", str(int(seconds)), "-o", str(out), "-r", "200", "--nonblocking"]
    if out.suffix != ".svg":
        cmd += ["-f", "raw"]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


class Arrivals:
    def __init__(self, port: int) -> None:
        self.lock = threading.Lock()
        self.counting = False
        self.points = 0
        self.messages = 0
        self.latency: list[float] = []
        self.poll_ts: dict[str, list[float]] = defaultdict(list)
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id="bench-counter")
        self.client.on_connect = lambda c, _u, _f, _r, _p: c.subscribe("plant/+/+/+/samples", qos=1)
        self.client.on_message = self._on_message
        self.client.max_inflight_messages_set(1000)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def _on_message(self, _c: paho.Client, _u: object, msg: paho.MQTTMessage) -> None:
        now = time.time()
        doc = json.loads(msg.payload)
        with self.lock:
            if not self.counting:
                return
            self.messages += 1
            self.points += len(doc["samples"])
            self.latency.append(now - doc["samples"][0]["ts"])
            self.poll_ts[doc["device"]].append(doc["samples"][0]["ts"])  # acquisition time of the read

    def stop(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def _metrics(port: int) -> dict[str, float]:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    total: dict[str, float] = defaultdict(float)
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name = line.split("{")[0].split(" ")[0]
            total[name] += float(line.rsplit(" ", 1)[1])
    return total


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]


def run(
    devices: int,
    points: int,
    interval: float,
    seconds: float,
    warmup: float,
    *,
    kpi: bool = True,
    profile_to: Path | None = None,
    extra_site: dict[str, Any] | None = None,
    sim: str = "python",
    timeout_ms: float | None = None,
    mqtt: dict[str, Any] | None = None,
) -> dict[str, Any]:
    from agent.config.load import load_profile
    from agent.config.site import ModbusDeviceConfig
    from agent.sources.modbus.plan import build_read_plan

    with tempfile.TemporaryDirectory(prefix="agent-bench-") as tmp, contextlib.ExitStack() as stack:
        root = Path(tmp)
        (root / "profiles").mkdir()
        prof_path = root / "profiles" / "bench.yaml"
        _dump(profile(points), prof_path)
        prof = load_profile(prof_path)
        minimum = len(build_read_plan(prof, ModbusDeviceConfig(name="x", profile="bench", host="h")).requests)
        metrics_port = free_port()
        broker = stack.enter_context(mosquitto(root / "broker"))
        binary = mb_sim_binary()
        if sim == "c":
            assert binary is not None
            where, sim_pids = stack.enter_context(c_simulator(binary, root, devices, points))
        else:
            where, sim_pids = stack.enter_context(python_simulator(prof_path, devices))
        site = root / "site.yaml"
        kpi_section = {
            "windows": ["15m"],
            "publish_interval_s": 10,
            "demand": [
                {"name": f"dev{i:03d}", "meters": [{"device": f"dev{i:03d}", "role": "energy_import_kwh"}]}
                for i in range(devices)
            ],
        }
        _dump(
            {
                "site": "bench",
                "gateway": "gw",
                "profile_dirs": ["profiles"],
                "state_dir": "state",
                "devices": [
                    {
                        "name": f"dev{i:03d}",
                        "profile": "bench",
                        "host": "127.0.0.1",
                        "port": port,
                        "unit_id": unit,
                        "interval_s": interval,
                        **({"timeout_ms": timeout_ms} if timeout_ms is not None else {}),
                    }
                    for i, (port, unit) in enumerate(where)
                ],
                "mqtt": {"host": "127.0.0.1", "port": broker.port, **(mqtt or {})},
                "monitoring": {"prometheus_port": metrics_port, "status_interval_s": 10},
                **({"kpi": kpi_section} if kpi else {}),
                **(extra_site or {}),
            },
            site,
        )
        arrivals = Arrivals(broker.port)
        with (root / "agent.log").open("wb") as log:
            agent = subprocess.Popen(
                [sys.executable, "-m", "agent", "run", str(site)], cwd=REPO, stdout=log, stderr=subprocess.STDOUT
            )
        try:
            wait_port("127.0.0.1", metrics_port, 60)
            time.sleep(warmup)
            m0 = _metrics(metrics_port)
            cpu0, wall0 = _proc_cpu_s(agent.pid), time.monotonic()
            sim_cpu0 = sum(_proc_cpu_s(pid) for pid in sim_pids)
            with arrivals.lock:
                arrivals.counting = True
            spy = _profiler(agent.pid, seconds, profile_to)
            time.sleep(seconds)
            if spy is not None:
                spy.wait(30)
            with arrivals.lock:
                arrivals.counting = False
            cpu, wall = _proc_cpu_s(agent.pid) - cpu0, time.monotonic() - wall0
            sim_cpu = sum(_proc_cpu_s(pid) for pid in sim_pids) - sim_cpu0
            m1 = _metrics(metrics_port)
            rss_mb = _proc_kb(agent.pid, "VmRSS") / 1024
            peak_mb = _proc_kb(agent.pid, "VmHWM") / 1024
        finally:
            agent.terminate()
            agent.wait(30)
            arrivals.stop()
    requests = m1["energy_agent_device_requests_total"] - m0["energy_agent_device_requests_total"]
    # the agent's own view: PUBACKs it got and what waits in its spool (a slow subscriber is not the agent behind)
    acked = m1["energy_agent_mqtt_acked_messages_total"] - m0["energy_agent_mqtt_acked_messages_total"]
    polls = m1["energy_agent_polls_total"] - m0["energy_agent_polls_total"]
    intervals = [b - a for ts in arrivals.poll_ts.values() for a, b in itertools.pairwise(ts)]
    cpu_ms_per_1000 = 1e6 * cpu / arrivals.points if arrivals.points else None
    return {
        "benchmark": "agent_e2e",
        "kpi_line": kpi,
        "simulator": sim,
        **({"mqtt": mqtt} if mqtt else {}),
        **(extra_site or {}),
        "load_avg_1m": os.getloadavg()[0],
        "devices": devices,
        "points_per_device": points,
        "interval_s": interval,
        "window_s": wall,
        "points_offered_per_s": devices * points / interval,
        "points_delivered_per_s": arrivals.points / wall,
        "messages": arrivals.messages,
        "agent_acked_msgs_per_s": acked / wall,
        "agent_polls_per_s": polls / wall,
        "spool_messages_at_end": m1["energy_agent_spool_messages"],
        "agent_cpu_pct_of_one_core": 100 * cpu / wall,
        "cpu_ms_per_1000_points": cpu_ms_per_1000,
        "points_per_agent_cpu_s": arrivals.points / cpu if cpu else None,
        "simulator_cpu_pct": 100 * sim_cpu / wall,
        "rss_mb": rss_mb,
        "peak_rss_mb": peak_mb,
        "requests_per_poll": requests / polls if polls else None,
        "plan_minimum_requests": minimum,
        "poll_interval_p50_s": pct(intervals, 50),
        "poll_interval_p95_s": pct(intervals, 95),
        "poll_interval_p99_s": pct(intervals, 99),
        "poll_to_broker_p50_ms": 1000 * statistics.median(arrivals.latency) if arrivals.latency else None,
        "poll_to_broker_p95_ms": 1000 * (pct(arrivals.latency, 95) or 0),
        "poll_to_broker_p99_ms": 1000 * (pct(arrivals.latency, 99) or 0),
    }


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--devices", type=int, default=100)
    ap.add_argument("--points", type=int, default=20)
    ap.add_argument("--interval", type=float, default=1.0)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--warmup", type=float, default=8.0)
    ap.add_argument("--no-kpi", action="store_true", help="no kpi section (the agent without its KPI line)")
    ap.add_argument("--poll-phase", choices=["spread", "aligned"], default="spread", help="the site's poll_phase")
    ap.add_argument("--poll-phase-step-ms", type=float, help="the site's poll_phase_step_ms (default: the agent's)")
    ap.add_argument("--group-commit-ms", type=float, help="the site's spool.group_commit_ms (default: the agent's)")
    ap.add_argument("--sim", choices=["python", "c"], default="python", help="the Modbus simulator (c: mb_sim)")
    ap.add_argument("--timeout-ms", type=float, help="the devices' timeout_ms (default: the agent's)")
    ap.add_argument("--max-inflight", type=int, help="the site's mqtt.max_inflight (default: the agent's)")
    ap.add_argument("--profile", type=Path, help="write a py-spy flame graph of the window here (PY_SPY=path)")
    args = ap.parse_args(argv)
    if args.sim == "c" and mb_sim_binary() is None:
        print(
            "--sim c needs the libmodbus simulator mb_sim (peers harness): set MB_SIM or put it on PATH",
            file=sys.stderr,
        )
        return 2
    result = run(
        args.devices,
        args.points,
        args.interval,
        args.seconds,
        args.warmup,
        kpi=not args.no_kpi,
        profile_to=args.profile,
        sim=args.sim,
        timeout_ms=args.timeout_ms,
        mqtt={"max_inflight": args.max_inflight} if args.max_inflight is not None else None,
        extra_site={
            "poll_phase": args.poll_phase,
            **({"poll_phase_step_ms": args.poll_phase_step_ms} if args.poll_phase_step_ms is not None else {}),
            **({"spool": {"group_commit_ms": args.group_commit_ms}} if args.group_commit_ms is not None else {}),
        },
    )
    print(json.dumps(result))
    print()
    for key, value in result.items():
        print(f"{key:<28} {value:.3f}" if isinstance(value, float) else f"{key:<28} {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
