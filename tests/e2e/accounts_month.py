"""A simulated month of the cement plant through MQTT, the centre ingestor and InfluxDB, into the energy accounts.

What runs for real: mosquitto, InfluxDB 1.x, ``energy-center run`` (the ingestor, a process), the accounts reading
InfluxDB, a local HTTPS receiver, the report writers. What is simulated: the plant (simulators.plant.PlantModel, 60 s
steps) and its gateway. The gateway is stood in for by the agent's own wire encoder (agent.wire.encode_samples) fed
with the model's counter readings every ``poll_s`` of simulated time, because the real agent polls on the wall
clock and a month of it would take a month. The accounts' clock is injected: one round per simulated quarter.

As a command (the README's "Energy accounts" section)::

    .venv/bin/python -m tests.e2e.accounts_month --out /tmp/accounts-demo

writes ``center.yaml``, ``accounts.sqlite``, the November 2026 report (PDF, CSV, XLSX) and prints the outbox.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from agent.model import Quality, Role, Sample
from agent.wire import encode_samples
from simulators.plant import PlantModel

SITE, GATEWAY = "sim-cement", "gw1"
ZONE = dt.timezone(dt.timedelta(hours=8))
NOV1 = dt.datetime(2026, 11, 1, tzinfo=ZONE).timestamp()
DEC1 = dt.datetime(2026, 12, 1, tzinfo=ZONE).timestamp()
START = NOV1 - 1800  # the gateway's first poll
RESET_AT = dt.datetime(2026, 11, 20, 10, 0, tzinfo=ZONE).timestamp()
OUTAGE_AT = dt.datetime(2026, 11, 10, 8, 0, tzinfo=ZONE).timestamp()
# device -> counters published (the model's counter names are the agent's roles)
PUBLISHED = {
    "main-meter": ("energy_import_kwh", "energy_export_kwh"),
    "pv-meter": ("energy_import_kwh",),
    "kiln1": ("coal_t", "production_t"),
    "boiler1": ("gas_m3",),
    "water-meter": ("water_m3",),
}
UNITS = {
    "energy_import_kwh": "kWh",
    "energy_export_kwh": "kWh",
    "coal_t": "t",
    "production_t": "t",
    "gas_m3": "m3",
    "water_m3": "m3",
}


def unit_section(state_dir: str, receivers: list[dict[str, Any]]) -> dict[str, Any]:
    """The simulated plant declared as an energy-using unit."""

    def meter(
        mid: str, carrier: str, flow: str, device: str, role: str, cls: str, due: str, what: str
    ) -> dict[str, Any]:
        return {
            "id": mid,
            "carrier": carrier,
            "flow": flow,
            "device": device,
            "role": role,
            "accuracy_class": cls,
            "calibration_due": due,
            "measures": what,
        }

    return {
        "state_dir": state_dir,
        "units": [
            {
                "name": "sim-cement",
                "title": "Simulated Cement Co. 模拟水泥有限公司",
                "code": "91150000SIM0000001",
                "timezone": "Asia/Shanghai",
                "gateways": [{"site": SITE, "gateway": GATEWAY}],
                "electricity_equal_value_kgce_per_kwh": 0.2957,
                "grid": {"year": 2023, "scope": "inner_mongolia"},
                "carriers": [
                    {"name": "electricity", "code": "3300", "factor": "electricity"},
                    {"name": "pv", "code": "3310", "factor": "electricity", "renewable": True},
                    {"name": "raw_coal", "code": "0110", "factor": "raw_coal"},
                    {"name": "natural_gas", "code": "3100", "factor": "natural_gas"},
                    {"name": "water", "code": "9100", "factor": "water"},
                ],
                "meters": [
                    meter(
                        "E-001",
                        "electricity",
                        "purchased",
                        "main-meter",
                        "energy_import_kwh",
                        "0.2S",
                        "2027-06-30",
                        "110 kV grid intake, import",
                    ),
                    meter(
                        "E-002",
                        "electricity",
                        "exported",
                        "main-meter",
                        "energy_export_kwh",
                        "0.2S",
                        "2027-06-30",
                        "110 kV grid intake, export",
                    ),
                    meter(
                        "PV-01",
                        "pv",
                        "produced",
                        "pv-meter",
                        "energy_import_kwh",
                        "0.5S",
                        "2026-10-31",
                        "rooftop PV inverter output",
                    ),
                    meter(
                        "C-KILN",
                        "raw_coal",
                        "consumed",
                        "kiln1",
                        "coal_t",
                        "0.5",
                        "2027-02-28",
                        "kiln coal feeder (loss-in-weight)",
                    ),
                    meter(
                        "G-BLR", "natural_gas", "consumed", "boiler1", "gas_m3", "1.5", "2027-04-30", "boiler gas flow"
                    ),
                    meter(
                        "W-01", "water", "consumed", "water-meter", "water_m3", "2.5", "2027-01-31", "new water intake"
                    ),
                    {
                        "id": "WB-1",
                        "carrier": "raw_coal",
                        "flow": "purchased",
                        "accuracy_class": "III",
                        "calibration_due": "2027-03-01",
                        "measures": "weighbridge, coal deliveries",
                    },
                ],
                "products": [
                    {
                        "name": "clinker",
                        "indicator": "cement_clinker",
                        "output": {"device": "kiln1"},
                        "meters": ["E-001", "E-002", "PV-01", "C-KILN"],
                    },
                ],
                "receivers": receivers,
            }
        ],
    }


def polls(model: PlantModel, t0: float, t1: float, poll_s: float) -> Iterator[tuple[str, bytes]]:
    """The gateway's samples messages from t0 to t1 (one per device per poll, seq counting up)."""
    seq = round((t0 - START) / poll_s) * len(PUBLISHED)  # one seq stream across calls
    t = t0
    while t <= t1:
        model.advance_to(t)
        if t == RESET_AT:  # the main meter is replaced: its import counter starts again at 0
            model.inject("main-meter", "reset_counter", role="energy_import_kwh")
        if t == OUTAGE_AT:  # the kiln controller stops answering for two hours
            model.inject("kiln1", "outage", seconds=7200)
        for device, counters in PUBLISHED.items():
            values = model.values(device)
            silent = model.silent(device)
            samples = [
                Sample(device, name, None, UNITS[name], Quality.BAD, t, "timeout after 1000 ms", role=Role(name))
                if silent
                else Sample(device, name, round(values[name], 4), UNITS[name], Quality.GOOD, t, role=Role(name))
                for name in counters
            ]
            payload = encode_samples(
                site=SITE, gateway=GATEWAY, boot="sim-boot", seq=seq, device=device, ts=t, tags={}, samples=samples
            )
            seq += 1
            yield f"plant/{SITE}/{GATEWAY}/{device}/samples", payload
        t += poll_s


def truth(model: PlantModel, t0: float, t1: float) -> dict[str, float]:
    """The simulator's ground truth of the month, per account item."""
    return {
        "electricity.purchased": model.true_total("main-meter", "energy_import_kwh", t0, t1),
        "electricity.exported": model.true_total("main-meter", "energy_export_kwh", t0, t1),
        "pv.produced": model.true_total("pv-meter", "energy_import_kwh", t0, t1),
        "raw_coal.quantity": model.true_total("kiln1", "coal_t", t0, t1),
        "natural_gas.quantity": model.true_total("boiler1", "gas_m3", t0, t1),
        "water.quantity": model.true_total("water-meter", "water_m3", t0, t1),
        "clinker.output": model.true_total("kiln1", "production_t", t0, t1),
    }


def account_items(figures: dict[str, Any]) -> dict[str, float]:
    c = {x["carrier"]: x for x in figures["carriers"]}
    return {
        "electricity.purchased": c["electricity"]["purchased"],
        "electricity.exported": c["electricity"]["exported"],
        "pv.produced": c["pv"]["produced"],
        "raw_coal.quantity": c["raw_coal"]["quantity"],
        "natural_gas.quantity": c["natural_gas"]["quantity"],
        "water.quantity": c["water"]["quantity"],
        "clinker.output": figures["products"][0]["output"],
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--poll-s", type=float, default=300.0)
    args = ap.parse_args(argv)
    result = run_month(args.out, args.poll_s)
    got, want = result["account"], result["truth"]
    for k in want:
        dev = f"{100 * (got[k] / want[k] - 1):+.3f} %" if want[k] else "(both 0)" if not got[k] else "DIFFERS"
        print(f"{k:24s} account {got[k]:16,.3f}  simulator {want[k]:16,.3f}  {dev}")
    print(f"outbox: {result['outbox']}; acknowledged by the receiver: {result['acked']}")
    print(f"report: {result['stem']}.pdf, .csv, .xlsx")
    return 0


def run_month(out: Path, poll_s: float = 300.0) -> dict[str, Any]:
    """Publish November 2026, let the centre store it, run the accounts through December 1st, write the report."""
    from agent.center.accounts.account import Ledger
    from agent.center.accounts.config import AccountsConfig
    from agent.center.accounts.metered import InfluxReader
    from agent.center.accounts.report import build, write_csv, write_xlsx
    from agent.center.accounts.report_pdf import write_pdf
    from agent.center.accounts.service import AccountsService
    from agent.center.config import InfluxConfig
    from tests.e2e.test_center_harness import CenterProcess, Publisher, center_config, wait_until
    from tests.servers.https_receiver import HttpsReceiver
    from tests.servers.influx import influxd
    from tests.servers.mosquitto import mosquitto
    from tests.servers.mqtt_tls import make_pki

    out.mkdir(parents=True, exist_ok=True)
    model = PlantModel(seed=1, start=NOV1 - 3600, step_s=60.0)
    pki = make_pki(out / "pki")
    with mosquitto(out / "mq") as broker, influxd(out / "influx") as db, HttpsReceiver(pki) as receiver:
        db.create_database("energy")
        influx = {"kind": "v1", "url": db.url, "database": "energy"}
        cfg = center_config(broker.port, influx)
        receivers = [{"name": "province", "url": receiver.url, "ca_file": str(pki.ca)}]
        cfg["accounts"] = unit_section(str(out / "state"), receivers)
        cfg["dead_letter"] = {"file": str(out / "dead-letter.jsonl")}  # a whole center.yaml: the commands take it
        (out / "center.yaml").write_text(json.dumps(cfg, indent=1, ensure_ascii=False))
        with CenterProcess(out / "centre", {k: v for k, v in cfg.items() if k != "accounts"}):
            pub = Publisher(broker.port)
            sent = 0
            t = START
            while t < DEC1 + 1800:
                end = min(t + 86400 - poll_s, DEC1 + 1800)
                sent += pub.publish_all(polls(model, t, end, poll_s), timeout_s=300)
                t = end + poll_s
            pub.close()
            points = (sent // len(PUBLISHED)) * sum(len(c) for c in PUBLISHED.values())
            wait_until(lambda: db.scalar("SELECT count(quality) FROM sample", "energy") == points, 300, "every sample")
        accounts = AccountsConfig.model_validate(cfg["accounts"])
        clock = [NOV1]
        service = AccountsService(accounts, InfluxReader(InfluxConfig.model_validate(influx)), clock=lambda: clock[0])
        # a round every hour of the month (the service catching up: in operation it runs every 10 s), then the
        # rounds at 00:15 and 00:30 on December 1st: November closed, December's first quarter due and sent
        for clock[0] in [*range(int(NOV1) + 3600, int(DEC1) + 1, 3600), DEC1 + 900, DEC1 + 1800]:
            service.tick(clock[0])
    ledger = Ledger(accounts.units[0], service.store)
    rep = build(ledger, "2026-11", DEC1 + 3600)
    stem = out / "energy-report-sim-cement-2026-11"
    write_pdf(rep, stem.with_suffix(".pdf"))
    write_csv(rep, stem.with_suffix(".csv"))
    write_xlsx(rep, stem.with_suffix(".xlsx"))
    kinds = service.store.db.execute("SELECT kind, COUNT(*) FROM outbox GROUP BY kind ORDER BY kind").fetchall()
    acked = service.store.db.execute("SELECT COUNT(*) FROM deliveries WHERE state='acked'").fetchone()[0]
    service.store.close()
    return {
        "account": account_items(rep.figures),
        "truth": truth(model, NOV1, DEC1),
        "report": rep,
        "stem": stem,
        "outbox": {k: n for k, n in kinds},
        "acked": acked,
        "received": receiver.ids(),
        "config": cfg,
    }


if __name__ == "__main__":
    sys.exit(main())
