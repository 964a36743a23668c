"""center.yaml: defaults, positioned errors, secrets from files, and the CLI's exit codes."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent import __version__
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
    with pytest.raises(ConfigError, match="dead_letter: field required: 'dead_letter' \\(where refused payloads"):
        load(path)
    path.write_text("influx:\n  database: energy\ndead_letter: {}\n")
    with pytest.raises(ConfigError, match=r"center\.yaml:3:14: dead_letter: set 'file' or 'topic'"):
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
        f"{path}:3:3: mqtt.prot: unknown key 'prot' (did you mean 'port'?)",
        f"{path}:5:9: influx.kind: 'v3' is not a valid kind; use one of v1, v2, victoriametrics",
        f"{path}:7:17: influx.batch_points: 0 is too small; the smallest allowed is 1",
    ]


def test_v2_needs_org_and_bucket(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="kind v2 needs 'org' and 'bucket'"):
        load(write(tmp_path, "influx:\n  kind: v2\n  url: http://127.0.0.1:8086\n"))


def test_duplicate_keys_are_errors_with_a_position(tmp_path: Path) -> None:
    path = write(tmp_path, "influx:\n  database: a\n  database: b\n")
    with pytest.raises(ConfigError) as err:
        load(path)
    # the shared loader's wording (agent.config.yaml_source), as energy-agent validate says it
    assert str(err.value) == f"{path}:3:3: duplicate key 'database': first given on line 2; keep one of the two"


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
    assert err.splitlines() == [
        f"{bad}:2:3: influx.databse: unknown key 'databse' (did you mean 'database'?)",
        "config not valid: 1 error",
    ]
    assert "Traceback" not in err and "pydantic" not in err
    assert main(["validate", str(tmp_path / "missing.yaml")]) == EX_CONFIG
    assert f"{tmp_path / 'missing.yaml'}:1:1: file not found" in capsys.readouterr().err


def test_cli_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out == f"energy-center {__version__}\n"


def test_malformed_yaml_is_one_positioned_error_not_a_traceback(tmp_path: Path) -> None:
    path = write(tmp_path, "influx:\n  database: energy\n  - x\n", dead_letter=False)
    with pytest.raises(ConfigError) as err:
        load(path)
    assert str(err.value).startswith(f"{path}:3:3: not valid YAML:")


def test_limits_have_safe_defaults_and_are_checked(tmp_path: Path) -> None:
    limits = load(write(tmp_path, "influx:\n  database: energy\n")).limits
    assert limits.max_message_bytes == 524_288 and limits.max_series_per_gateway == 20_000
    assert limits.max_past_s >= 7 * 86400  # above the agents' default spool max_age_s: a replay is not "skewed"
    path = write(tmp_path, "influx:\n  database: energy\nlimits:\n  max_future_s: -1\n  max_serie_per_gateway: 5\n")
    with pytest.raises(ConfigError) as err:
        load(path)
    assert str(err.value).splitlines() == [
        f"{path}:4:17: limits.max_future_s: -1 is too small; it must be more than 0",
        f"{path}:5:3: limits.max_serie_per_gateway: unknown key 'max_serie_per_gateway' "
        "(did you mean 'max_series_per_gateway'?)",
    ]


def test_the_shared_loaders_yaml_limits_apply_to_center_yaml(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """center.yaml is read by agent.config's loader, so its limits (here: aliases repeating a million values, a
    'billion laughs') refuse the file quickly with a positioned error instead of expanding it."""
    levels = ['a0: &a0 ["x", "x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    levels += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 6)]
    path = write(tmp_path, "\n".join(levels) + "\ninflux: {database: energy}\n")
    assert main(["validate", str(path)]) == EX_CONFIG
    err = capsys.readouterr().err
    assert err.startswith(f"{path}:") and "aliases (*name) repeat more than" in err
