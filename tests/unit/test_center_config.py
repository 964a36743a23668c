"""center.yaml: defaults, positioned errors, secrets from files, and the CLI's exit codes."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.center.cli import main
from agent.center.config import load
from agent.errors import EX_CONFIG, ConfigError


def write(tmp_path: Path, text: str, dead_letter: bool = True) -> Path:
    """The config text, with a dead-letter file appended unless told not to."""
    path = tmp_path / "center.yaml"
    path.write_text(text + (f"dead_letter:\n  file: {tmp_path / 'dead.jsonl'}\n" if dead_letter else ""))
    return path


def test_minimal_v1_config_gets_safe_defaults(tmp_path: Path) -> None:
    cfg = load(write(tmp_path, "influx:\n  kind: v1\n  database: energy\n"))
    assert cfg.influx.database == "energy"
    assert cfg.mqtt.topic_prefix == "plant"
    assert cfg.mqtt.session_expiry_s > 0  # a persistent session is what makes restarts lossless
    assert cfg.influx.batch_points >= 1
    assert cfg.dead_letter.topic is None


def test_refused_payloads_must_have_somewhere_to_go(tmp_path: Path) -> None:
    path = write(tmp_path, "influx:\n  database: energy\n", dead_letter=False)
    with pytest.raises(ConfigError, match="dead_letter: Field required"):
        load(path)
    path.write_text("influx:\n  database: energy\ndead_letter: {}\n")
    with pytest.raises(ConfigError, match=r"center\.yaml:3:1: dead_letter: Value error, set 'file' or 'topic'"):
        load(path)


def test_errors_name_file_line_column_and_path(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "mqtt:\n  host: broker\n  prot: 1883\ninflux:\n  kind: v3\n  database: energy\n  batch_points: 0\n",
    )
    with pytest.raises(ConfigError) as err:
        load(path)
    text = str(err.value).splitlines()
    assert text == [
        f"{path}:3:3: mqtt.prot: Extra inputs are not permitted",
        f"{path}:5:3: influx.kind: Input should be 'v1' or 'v2'",
        f"{path}:7:3: influx.batch_points: Input should be greater than or equal to 1",
    ]


def test_v2_needs_org_and_bucket(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="kind v2 needs 'org' and 'bucket'"):
        load(write(tmp_path, "influx:\n  kind: v2\n  url: http://127.0.0.1:8086\n"))


def test_duplicate_keys_are_errors_with_a_position(tmp_path: Path) -> None:
    path = write(tmp_path, "influx:\n  database: a\n  database: b\n")
    with pytest.raises(ConfigError, match=r"center\.yaml:3:3: .*duplicate"):
        load(path)


def test_secrets_are_read_from_files_and_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "mqtt.pass").write_text("s3cret\n")
    (tmp_path / "token").write_text("tok\n")
    monkeypatch.setenv("CENTER_TOKEN", "from-env")
    cfg = load(
        write(
            tmp_path,
            f"mqtt:\n  username: center\n  password_file: {tmp_path / 'mqtt.pass'}\n"
            f"influx:\n  kind: v2\n  org: o\n  bucket: b\n  token_file: {tmp_path / 'token'}\n",
        )
    )
    assert cfg.mqtt.password() == "s3cret"
    assert cfg.influx.secret() == "tok"
    cfg2 = load(write(tmp_path, "influx:\n  kind: v2\n  org: o\n  bucket: b\n  token_env: CENTER_TOKEN\n"))
    assert cfg2.influx.secret() == "from-env"
    assert "from-env" not in repr(cfg2)


def test_cli_validate_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = write(tmp_path, "influx:\n  database: energy\n")
    assert main(["validate", str(good)]) == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text("influx:\n  databse: energy\ndead_letter:\n  topic: dead\n")
    assert main(["validate", str(bad)]) == EX_CONFIG
    err = capsys.readouterr().err
    assert "bad.yaml:2:3: influx.databse: Extra inputs are not permitted" in err
    assert main(["validate", str(tmp_path / "missing.yaml")]) == EX_CONFIG
