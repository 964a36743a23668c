"""A small publisher process for the crash tests, and the producer the MQTT tests share.

``Producer`` makes what the agent's pollers make: one samples message per device per poll, 20 realistic points
each (a growing energy counter, power, voltages, currents, power factor, frequency), encoded with agent.wire,
appended to the spool with the boot's next seq.

Run as a process it opens the spool, starts an MqttSink, and appends ``--rounds`` polls of ``--devices`` devices
at ``--rate`` messages/s, printing ``appended <boot> <seq>`` after each append returned (so the test knows what
the spool holds at the instant it SIGKILLs this process), then waits until the spool is empty and exits 0.
Every run is a new boot (a new UUID), as every start of the agent is.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import sys
import time
import uuid
from pathlib import Path

from agent.config.mqtt import MqttConfig
from agent.config.spool import SpoolConfig
from agent.model import Quality, Role, Sample
from agent.sinks.mqtt import MqttSink
from agent.sinks.topics import samples_topic
from agent.spool.sqlite import SqliteSpool
from agent.wire import encode_samples

_POINTS: list[tuple[str, str, Role | None]] = [
    ("energy_import", "kWh", Role.ENERGY_IMPORT_KWH),
    ("energy_export", "kWh", Role.ENERGY_EXPORT_KWH),
    ("reactive_energy", "kvarh", Role.REACTIVE_ENERGY_KVARH),
    ("power_total", "kW", Role.ACTIVE_POWER_KW),
    ("reactive_power", "kvar", Role.REACTIVE_POWER_KVAR),
    ("apparent_power", "kVA", Role.APPARENT_POWER_KVA),
    ("pf", "", Role.POWER_FACTOR),
    ("frequency", "Hz", Role.FREQUENCY_HZ),
    ("u_l1", "V", Role.VOLTAGE_V),
    ("u_l2", "V", None),
    ("u_l3", "V", None),
    ("i_l1", "A", Role.CURRENT_A),
    ("i_l2", "A", None),
    ("i_l3", "A", None),
    ("p_l1", "kW", None),
    ("p_l2", "kW", None),
    ("p_l3", "kW", None),
    ("thd_u", "%", None),
    ("thd_i", "%", None),
    ("temperature", "°C", Role.TEMPERATURE_C),
]


class Producer:
    """Appends one poll round (one samples message per device) per call; keeps the boot's seq."""

    def __init__(
        self,
        spool: SqliteSpool,
        *,
        site: str = "s1",
        gateway: str = "gw1",
        boot: str | None = None,
        devices: int = 100,
        points: int = 20,
        prefix: str = "plant",
    ) -> None:
        self.spool = spool
        self.site = site
        self.gateway = gateway
        self.boot = boot or str(uuid.uuid4())
        self.seq = 0
        self.points = _POINTS[:points]
        self.devices = [f"meter-{i:03d}" for i in range(devices)]
        self.topics = [samples_topic(prefix, site, gateway, d) for d in self.devices]

    def poll_round(self, ts: float) -> list[tuple[str, str, int]]:
        keys = []
        for n, (device, topic) in enumerate(zip(self.devices, self.topics, strict=True)):
            keys.append(self.append_one(device, topic, ts, n))
        return keys

    def append_one(self, device: str, topic: str, ts: float, n: int) -> tuple[str, str, int]:
        load = 400.0 + 50.0 * math.sin(ts / 300.0 + n)
        values = [ts * load / 3600.0, 0.0, ts * 0.3 * load / 3600.0, load, 0.3 * load, 1.04 * load, 0.96, 50.01]
        values += [230.1 + n % 3, 229.8, 230.4, load / 0.69, load / 0.7, load / 0.71, load / 3, load / 3, load / 3]
        values += [2.1, 7.4, 41.5]
        samples = tuple(
            Sample(device, name, round(v, 3), unit, Quality.GOOD, ts, role=role)
            for (name, unit, role), v in zip(self.points, values, strict=False)
        )
        seq = self.seq
        self.seq += 1
        payload = encode_samples(
            site=self.site,
            gateway=self.gateway,
            boot=self.boot,
            seq=seq,
            device=device,
            ts=ts,
            tags={"line": f"line{n % 4}"},
            samples=samples,
        )
        self.spool.append(topic, payload, "samples", seq=seq, ts=ts)
        return (self.gateway, self.boot, seq)


async def _drive(args: argparse.Namespace) -> int:
    spool = SqliteSpool.open(Path(args.spool), SpoolConfig(fsync=args.fsync))
    producer = Producer(spool, devices=args.devices)
    config = MqttConfig(
        host="127.0.0.1", port=args.port, client_id=f"driver-{producer.boot[:8]}", reconnect_min_s=0.05,
        reconnect_max_s=0.5, max_inflight=args.inflight,
    )  # fmt: skip
    async with MqttSink(
        config, spool, site="s1", gateway="gw1", boot=producer.boot, version="test", config_hash="x"
    ) as sink:
        task = asyncio.create_task(sink.run())
        try:
            period = args.devices / args.rate
            for _ in range(args.rounds):
                started = time.monotonic()
                for key in producer.poll_round(time.time()):
                    print(f"appended {key[1]} {key[2]}", flush=True)
                sink.wake()
                await asyncio.sleep(max(0.0, period - (time.monotonic() - started)))
            while spool.stats().depth:  # noqa: ASYNC110  # reason: the spool is polled, it has no event to await
                await asyncio.sleep(0.02)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    spool.close()
    print("drained", flush=True)
    return 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--spool", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--rounds", type=int, default=50)
    p.add_argument("--devices", type=int, default=20)
    p.add_argument("--rate", type=float, default=1000.0, help="messages per second")
    p.add_argument("--inflight", type=int, default=50)
    p.add_argument("--fsync", choices=["interval", "always"], default="interval")
    return asyncio.run(_drive(p.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
