"""``validate`` (the compile step) warns when a device's poll cannot fit in one MQTT message (issue 17)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from agent.runtime.compile import compile_site


def _write(path: Path, doc: dict[str, Any]) -> None:
    with path.open("w") as f:
        YAML(typ="safe").dump(doc, f)


def _site(tmp_path: Path, points: int, **mqtt: Any) -> Path:
    (tmp_path / "profiles").mkdir()
    _write(
        tmp_path / "profiles" / "wide.yaml",
        {
            "profile": "wide",
            "category": "energy_meter",
            "address_base": 0,
            "points": [
                {"name": f"feeder_{i:05d}_energy", "kind": "holding_register", "address": 2 * i, "type": "float32"}
                for i in range(points)
            ],
        },
    )
    site = tmp_path / "site.yaml"
    _write(
        site,
        {
            "site": "s1",
            "gateway": "gw1",
            "profile_dirs": ["profiles"],
            "state_dir": "state",
            "devices": [{"name": "big-panel", "profile": "wide", "host": "127.0.0.1"}],
            "mqtt": {"host": "127.0.0.1", **mqtt},
        },
    )
    return site


def test_a_device_whose_poll_cannot_fit_one_message_gets_a_warning(tmp_path: Path) -> None:
    compiled = compile_site(_site(tmp_path, 9000))
    [warning] = [w for w in compiled.warnings if "max_message_bytes" in w.message]
    assert warning.severity == "warning" and warning.line > 0
    assert "9000 points" in warning.message and "262144 B" in warning.message and "messages" in warning.message


def test_a_device_that_fits_gets_none_and_the_limit_is_the_sites(tmp_path: Path) -> None:
    assert not [w for w in compile_site(_site(tmp_path, 200)).warnings if "max_message_bytes" in w.message]
    (tmp_path / "small").mkdir()
    small = compile_site(_site(tmp_path / "small", 200, max_message_bytes=8192))
    assert [w for w in small.warnings if "(8192 B)" in w.message]
