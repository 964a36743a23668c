"""Helpers for the ingestor's end-to-end tests (no tests here): the ingestor as a real process, a QoS 1 publisher
that waits for every PUBACK, wire payload builders, and waiting on conditions with deadlines."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from agent.model import KpiValue, Quality, Role, Sample
from agent.wire import encode_kpis, encode_samples

REPO = Path(__file__).resolve().parents[2]
SITE = "plant1"
T0 = 1_764_000_000.0  # a fixed wall-clock origin for generated data (2025-11-24)


def wait_until(cond: Callable[[], bool], timeout_s: float, what: str, poll_s: float = 0.05) -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(poll_s)


def center_config(
    broker_port: int, influx: dict[str, Any], client_id: str = "center-1", **sections: dict[str, Any]
) -> dict[str, Any]:
    cfg: dict[str, Any] = {
        "mqtt": {"host": "127.0.0.1", "port": broker_port, "client_id": client_id, "group": "centre"},
        "influx": {"flush_interval_ms": 100, "retry_initial_ms": 100, "retry_max_ms": 500} | influx,
        "gaps": {"reorder_timeout_s": 1.0, "share_interval_s": 0.2},
        # Generated data is stamped from the fixed origin T0, which falls behind the wall clock as time goes on.
        "limits": {"max_past_s": 20 * 365 * 86400.0},
    }
    for name, values in sections.items():
        cfg[name] = cfg.get(name, {}) | values
    return cfg


class CenterProcess:
    """``python -m agent.center.cli run center.yaml`` in its own session; log in ``<workdir>/<client_id>.log``."""

    def __init__(self, workdir: Path, config: dict[str, Any], env: dict[str, str] | None = None) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.env = env
        mqtt = config["mqtt"] if "mqtt" in config else config["brokers"][0]  # brokers: named after the first
        self.name = mqtt["client_id"]
        config.setdefault("dead_letter", {"file": str(workdir / f"{self.name}-dead.jsonl")})
        self.config_path = workdir / f"{self.name}.yaml"
        self.config_path.write_text(json.dumps(config, indent=1))  # JSON is YAML
        self.log_path = workdir / f"{self.name}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self._log_offset = 0

    def start(self, timeout_s: float = 30.0, wait: bool = True) -> CenterProcess:
        """Start and wait until the broker confirmed the subscriptions (only then is nothing published missed)."""
        self._log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "agent.center.cli", "run", str(self.config_path)],
                cwd=REPO,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env=None if self.env is None else os.environ | self.env,
            )
        if wait:
            self.wait_log("subscribed as group", timeout_s)
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log(self, whole: bool = False) -> str:
        try:
            text = self.log_path.read_bytes()
        except OSError:
            return ""
        return text[0 if whole else self._log_offset :].decode(errors="replace")

    def wait_log(self, text: str, timeout_s: float = 30.0, count: int = 1) -> None:
        """Wait until this run's log holds ``text`` at least ``count`` times."""

        def found() -> bool:
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"{self.name} exited with {self.proc.returncode}:\n{self.log()[-3000:]}")
            return self.log().count(text) >= count

        wait_until(found, timeout_s, f"{self.name} to log {text!r} {count} time(s)")

    def kill9(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def stop(self, timeout_s: float = 20.0) -> int:
        """SIGTERM and wait; returns the exit code."""
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
                raise AssertionError(f"{self.name} did not stop on SIGTERM:\n{self.log()[-3000:]}") from None
        return self.proc.returncode

    def __enter__(self) -> CenterProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


class Publisher:
    """A gateway stand-in: paho 2.x, MQTT 5, QoS 1; ``publish_all`` returns once the broker acknowledged all."""

    def __init__(
        self,
        port: int,
        client_id: str = "gw-sim",
        username: str | None = None,
        password: str | None = None,
        ca_file: Path | None = None,
    ) -> None:
        self.client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5
        )
        self.client.max_inflight_messages_set(200)
        self.client.max_queued_messages_set(0)
        if username:
            self.client.username_pw_set(username, password)
        if ca_file:
            self.client.tls_set(ca_certs=str(ca_file))
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        wait_until(self.client.is_connected, 15, f"{client_id} to connect")

    def publish_all(self, messages: Iterable[tuple[str, bytes]], timeout_s: float = 60.0) -> int:
        infos = [self.client.publish(topic, payload, qos=1) for topic, payload in messages]
        wait_until(lambda: all(i.is_published() for i in infos), timeout_s, f"PUBACK of {len(infos)} messages")
        return len(infos)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def samples_message(
    gateway: str, seq: int, device: str, ts: float, points: int, boot: str = "boot-1", site: str = SITE
) -> tuple[str, bytes]:
    """One poll: ``points`` float points named p0..pN-1 with a value derived from (device, point, ts)."""
    samples = [
        Sample(device, f"p{i}", round(ts - T0 + i / 100, 3), "kW", Quality.GOOD, ts, role=Role.ACTIVE_POWER_KW)
        for i in range(points)
    ]
    payload = encode_samples(
        site=site, gateway=gateway, boot=boot, seq=seq, device=device, ts=ts, tags={}, samples=samples
    )
    return f"plant/{site}/{gateway}/{device}/samples", payload


def kpi_message(gateway: str, seq: int, ts: float, boot: str = "boot-1", site: str = SITE) -> tuple[str, bytes]:
    k = KpiValue(
        name="sec",
        scope="line1",
        value=100.0 + seq,
        unit="kWh/t",
        window="15m",
        window_start=ts - 900,
        window_end=ts,
        coverage=1.0,
        quality=Quality.GOOD,
        ts=ts,
    )
    return f"plant/{site}/{gateway}/kpi", encode_kpis(site=site, gateway=gateway, boot=boot, seq=seq, ts=ts, kpis=[k])


def plant_traffic(
    gateways: int, devices: int, polls: int, points: int, boot: str = "boot-1"
) -> list[tuple[str, bytes]]:
    """Poll-major order, one seq stream per gateway, 1 s apart in (generated) time."""
    out = []
    seqs = dict.fromkeys(range(gateways), 0)
    for poll in range(polls):
        for g in range(gateways):
            for d in range(devices):
                out.append(samples_message(f"gw{g}", seqs[g], f"dev{d}", T0 + poll, points, boot=boot))
                seqs[g] += 1
    return out
