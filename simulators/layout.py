"""Which shipped profile and unit id each plant device uses when the whole plant is served, and a matching site file.

The whole plant is served as one Modbus TCP gateway: every device on its own unit id on one port (that is how
plants wire RS-485 meters behind a serial device server). The site file written for it declares one
``tcp_gateway`` bus and every device on it, so the agent polls the simulator as it would poll the plant.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from agent.config.load import shipped_profile_dir
from simulators.modbus_server import SimUnit

# The shipped library: the checkout's device_profiles/, or beside the venv where deploy/install.sh put it (the
# simulator installed on a gateway for practice used to look inside site-packages and die of FileNotFoundError).
PROFILE_DIR = shipped_profile_dir(env=False)

# device -> (profile name, unit id, tags)
PLANT_LAYOUT: dict[str, tuple[str, int, dict[str, str]]] = {
    "main-meter": ("generic-3ph-meter", 1, {"area": "intake"}),
    "kiln1-meter": ("generic-3ph-meter", 2, {"line": "line1", "area": "kiln"}),
    "raw-mill-vfd": ("generic-vfd-motor", 3, {"line": "line1", "area": "raw-mill"}),
    "kiln1": ("generic-kiln", 4, {"line": "line1", "area": "kiln"}),
    "boiler1": ("generic-boiler", 5, {"area": "utilities"}),
    "compressor1": ("generic-air-compressor", 6, {"area": "utilities"}),
    "transformer1": ("generic-transformer-monitor", 7, {"area": "cement-grinding"}),
    "cement-counter": ("generic-production-counter", 8, {"area": "dispatch"}),
    "pv-meter": ("generic-3ph-meter", 9, {"area": "pv"}),
    "water-meter": ("generic-flow-meter", 10, {"area": "utilities"}),
    "pump1": ("generic-pump", 11, {"area": "utilities"}),
}


def profile_path(name: str) -> Path:
    return PROFILE_DIR / f"{name}.yaml"


def plant_units(devices: list[str] | None = None) -> list[SimUnit]:
    """SimUnits for the named devices (default: the whole plant) with their shipped profiles and unit ids."""
    names = list(PLANT_LAYOUT) if devices is None else devices
    return [SimUnit(d, profile_path(PLANT_LAYOUT[d][0]), PLANT_LAYOUT[d][1]) for d in names]


def site_document(
    host: str,
    port: int,
    framing: str = "tcp",
    devices: list[str] | None = None,
    interval_s: float = 1.0,
    state_dir: str = "state",
) -> dict[str, Any]:
    """A site file's content (plain data) that polls the simulated plant through one TCP gateway."""
    names = list(PLANT_LAYOUT) if devices is None else devices
    entries: list[dict[str, Any]] = []
    for d in names:
        profile, unit_id, tags = PLANT_LAYOUT[d]
        entry: dict[str, Any] = {
            "name": d,
            "profile": profile,
            "bus": "plant-gateway",
            "unit_id": unit_id,
            "interval_s": interval_s,
            "tags": dict(tags),
        }
        if d == "pv-meter":
            entry["renewable"] = True
        entries.append(entry)
    return {
        "site": "sim-cement",
        "gateway": "gw1",
        "timezone": "Asia/Shanghai",
        "profile_dirs": [str(PROFILE_DIR)],
        "state_dir": state_dir,
        "buses": [
            {"name": "plant-gateway", "transport": "tcp_gateway", "host": host, "port": port, "framing": framing}
        ],
        "devices": entries,
    }


def write_site(path: str | Path, host: str, port: int, framing: str = "tcp", **kw: Any) -> Path:
    """Write the site file atomically (a reader never sees half of it)."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = False
    tmp = out.with_name(out.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as f:
        f.write("# Written by `python -m simulators modbus --write-site`: polls the simulated cement plant.\n")
        yaml.dump(site_document(host, port, framing, **kw), f)
    tmp.replace(out)
    return out
