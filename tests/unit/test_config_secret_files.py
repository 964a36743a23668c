"""A password file or private key that other users can read draws a positioned warning with the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.cli import main
from agent.config.load import ENV_PROFILES, load_site


def _fix(file: Path) -> str:
    return f"run chmod 600 {file}, or chmod 640 {file} and chown root:energy-agent {file}"


@pytest.fixture
def secrets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(ENV_PROFILES, str(tmp_path / "no-profiles"))
    folder = tmp_path / "secrets"
    folder.mkdir()
    for name in ("mqtt.pw", "mqtt.key", "kiln.pw", "agent-key.pem"):
        (folder / name).write_text("s3cret\n")
        (folder / name).chmod(0o644)  # what a plain `echo s3cret > file` gives under umask 022
    return folder


def _site(tmp_path: Path, secrets: Path) -> Path:
    site = tmp_path / "site.yaml"
    site.write_text(
        "site: plant\ngateway: gw-1\n"
        "mqtt:\n"
        "  host: broker\n"
        "  username: gw-1\n"
        f"  password_file: {secrets / 'mqtt.pw'}\n"
        "  tls:\n"
        "    cert_file: /etc/ssl/gw.pem\n"
        f"    key_file: {secrets / 'mqtt.key'}\n"
        "devices:\n"
        "  - name: kiln1\n"
        "    protocol: opcua\n"
        "    endpoint: opc.tcp://10.0.0.5:4840\n"
        "    security: {policy: None, mode: None, allow_none: true}\n"
        "    auth: {type: username, username: energy, password_file: secrets/kiln.pw}\n"
        "    client_key: secrets/agent-key.pem\n"
        "    points: [{name: energy, node_id: 'nsu=urn:plant;s=Energy', unit: kWh}]\n"
    )
    return site


def test_secret_files_readable_by_others_are_warned_about_where_named(tmp_path: Path, secrets: Path) -> None:
    site = _site(tmp_path, secrets)
    loaded = load_site(site)
    assert [str(w) for w in loaded.warnings] == [
        f"{site}:6:18: mqtt.password_file: warning: {secrets / 'mqtt.pw'} is readable by every user on this "
        f"machine (mode 0644); {_fix(secrets / 'mqtt.pw')}",
        f"{site}:9:15: mqtt.tls.key_file: warning: {secrets / 'mqtt.key'} is readable by every user on this "
        f"machine (mode 0644); {_fix(secrets / 'mqtt.key')}",
        f"{site}:15:61: devices[0].auth.password_file: warning: {secrets / 'kiln.pw'} is readable by every user "
        f"on this machine (mode 0644); {_fix(secrets / 'kiln.pw')}",
        f"{site}:16:17: devices[0].client_key: warning: {secrets / 'agent-key.pem'} is readable by every user on "
        f"this machine (mode 0644); {_fix(secrets / 'agent-key.pem')}",
    ]


@pytest.mark.parametrize("mode", [0o600, 0o640, 0o400])
def test_files_only_the_owner_or_group_can_read_are_fine(tmp_path: Path, secrets: Path, mode: int) -> None:
    for file in secrets.iterdir():
        file.chmod(mode)
    assert load_site(_site(tmp_path, secrets)).warnings == ()


def test_validate_prints_the_warning_and_still_accepts(
    tmp_path: Path, secrets: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for file in secrets.iterdir():
        file.chmod(0o600)
    (secrets / "kiln.pw").chmod(0o604)
    assert main(["validate", str(_site(tmp_path, secrets))]) == 0
    (warning,) = capsys.readouterr().err.splitlines()
    assert warning.endswith(f"(mode 0604); {_fix(secrets / 'kiln.pw')}")
