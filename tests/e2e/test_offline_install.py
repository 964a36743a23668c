"""Install without the internet (issue 17): deploy/bundle.sh builds a bundle on this (connected) machine, and
``install.sh --bundle`` installs it inside a network namespace that has no route anywhere (``ip netns add``; the
test is skipped, with the reason, where namespaces cannot be made). Also: the commands on PATH, a damaged bundle
refused, uninstall, and an upgrade from the previous version that keeps the site file, the spool and the KPI
state."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PREVIOUS = "e232fba"  # main before the bundle: the last install.sh that only installed online
BARE = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}
# The installs here skip pip's bytecode step (PIP_NO_COMPILE=0 is pip's inverted spelling of --no-compile): compiling
# the ~4,000 modules of numpy, scipy and the rest is pip's own work, not install.sh's, and cost 10 of the 13
# CPU-seconds of each install (a gateway's install compiles them: the service's /opt is read-only to it).
INSTALL_ENV = os.environ | {"PIP_NO_COMPILE": "0"}

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1800)]


@contextmanager
def offline() -> Iterator[list[str]]:
    """A command prefix that runs inside a new network namespace: only a loopback interface, no route."""
    if shutil.which("ip") is None:
        pytest.skip("no ip command (iproute2) to make a network namespace")
    name = f"offline-{uuid.uuid4().hex[:10]}"
    made = subprocess.run(["ip", "netns", "add", name], capture_output=True, text=True, check=False)
    if made.returncode != 0:
        pytest.skip(f"cannot make a network namespace here: {made.stderr.strip()}")
    try:
        prefix = ["ip", "netns", "exec", name]
        routes = subprocess.run([*prefix, "ip", "-o", "route", "show"], capture_output=True, text=True, check=True)
        links = subprocess.run([*prefix, "ip", "-o", "link", "show"], capture_output=True, text=True, check=True)
        assert routes.stdout.strip() == "" and links.stdout.count("\n") == 1 and ": lo:" in links.stdout
        yield prefix
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bundle") / "energy-agent-bundle.tar.gz"
    done = subprocess.run(
        ["bash", str(REPO / "deploy" / "bundle.sh"), "--out", str(out)],
        capture_output=True,
        text=True,
        check=False,
        timeout=1500,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert (out.parent / f"{out.name}.sha256").is_file()
    return out


def install(prefix: list[str], *args: str) -> subprocess.CompletedProcess[str]:
    argv = [*prefix, "bash", str(REPO / "deploy" / "install.sh"), *args]
    return subprocess.run(argv, capture_output=True, text=True, check=False, timeout=900, env=INSTALL_ENV)


def put_credentials(root: Path) -> None:
    credentials = root / "etc/energy-agent/credentials"  # the secrets the example site names
    credentials.mkdir(parents=True, exist_ok=True)
    for name in ("mqtt-password", "opcua-kiln1-password", "opcua-agent-key.pem"):
        (credentials / name).write_text("secret\n")


@pytest.mark.long(seconds=50)  # builds a bundle of every wheel, then installs it
def test_a_bundle_installs_with_no_network_and_puts_the_commands_on_path(bundle: Path, tmp_path: Path) -> None:
    root = tmp_path / "root"
    put_credentials(root)
    site = REPO / "deploy" / "site.example.yaml"
    with offline() as prefix:
        done = install(prefix, "--bundle", str(bundle), "--root", str(root), "--site", str(site))
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
        cli = root / "opt/energy-agent/venv/bin/energy-agent"
        ok = subprocess.run([*prefix, str(cli), "validate", str(root / "etc/energy-agent/site.yaml")], env=BARE,
                            capture_output=True, text=True, check=False)  # fmt: skip
        assert ok.returncode == 0, ok.stderr
        assert "kiln1-meter: profile chint-dtsu666" in ok.stdout
    assert (root / "opt/energy-agent/device_profiles/chint-dtsu666.yaml").is_file()
    assert (root / "opt/energy-agent/schemas/site.schema.json").is_file()
    for cmd in ("energy-agent", "energy-center"):
        link = root / "usr/local/bin" / cmd
        assert os.readlink(link) == f"/opt/energy-agent/venv/bin/{cmd}"
        assert (root / "opt/energy-agent/venv/bin" / cmd).is_file()

    # A bundle damaged in transit is refused before anything is touched.
    damaged = tmp_path / bundle.name
    data = bytearray(bundle.read_bytes())
    data[len(data) // 2] ^= 0xFF
    damaged.write_bytes(bytes(data))
    shutil.copy(f"{bundle}.sha256", f"{damaged}.sha256")
    refused = install([], "--bundle", str(damaged), "--root", str(tmp_path / "other"))
    assert refused.returncode == 1 and "does not match" in refused.stderr, refused.stderr
    assert not (tmp_path / "other/opt/energy-agent/venv").exists()

    subprocess.run(["bash", str(REPO / "deploy" / "uninstall.sh"), "--root", str(root)], check=True, timeout=60)
    assert not (root / "usr/local/bin/energy-agent").is_symlink()
    assert not (root / "opt/energy-agent").exists()
    assert (root / "etc/energy-agent/site.yaml").is_file()


@pytest.mark.long(seconds=25)  # installs the previous version, then upgrades it
def test_an_offline_upgrade_from_the_previous_version_keeps_config_spool_and_kpi_state(
    bundle: Path, tmp_path: Path
) -> None:
    previous = tmp_path / "previous"
    previous.mkdir()
    archive = subprocess.run(
        f"git -C {REPO} archive {PREVIOUS} | tar -x -C {previous}", shell=True, capture_output=True, text=True
    )
    if archive.returncode != 0:
        pytest.skip(f"the previous version ({PREVIOUS}) is not in this clone: {archive.stderr.strip()}")
    root = tmp_path / "root"
    put_credentials(root)
    site = root / "site.yaml"
    site.write_text((REPO / "deploy" / "site.example.yaml").read_text() + "\n# edited on this gateway\n")
    old = subprocess.run(
        ["bash", str(previous / "deploy" / "install.sh"), "--root", str(root), "--site", str(site)],
        capture_output=True,
        text=True,
        check=False,
        timeout=900,
        env=INSTALL_ENV,
    )
    assert old.returncode == 0, old.stderr[-3000:]
    state = root / "var/lib/energy-agent"
    state.mkdir(parents=True)
    kept = {state / "spool.sqlite": os.urandom(4096), state / "kpi-state.json": b'{"v": 1, "saved_at": 1}\n'}
    for path, content in kept.items():
        path.write_bytes(content)
    installed = root / "etc/energy-agent/site.yaml"
    before = installed.read_text()
    misspelt = tmp_path / "tz.yaml"
    misspelt.write_text("site: s1\ngateway: gw1\ntimezone: Asia/Shangai\n")
    cli = root / "opt/energy-agent/venv/bin/energy-agent"
    assert subprocess.run([str(cli), "validate", str(misspelt)], capture_output=True, check=False).returncode == 0

    with offline() as prefix:
        done = install(prefix, "--bundle", str(bundle), "--root", str(root))  # no --site: keep the installed one
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert installed.read_text() == before
    assert all(path.read_bytes() == content for path, content in kept.items())
    assert sorted(p.name for p in (root / "etc/energy-agent/credentials").iterdir()) == [
        "mqtt-password",
        "opcua-agent-key.pem",
        "opcua-kiln1-password",
    ]
    # the new version runs: it refuses the misspelt zone the old one let through
    new = subprocess.run([str(cli), "validate", str(misspelt)], capture_output=True, text=True, check=False)
    assert new.returncode == 78 and "did you mean 'Asia/Shanghai'" in new.stderr
    assert os.readlink(root / "usr/local/bin/energy-agent") == "/opt/energy-agent/venv/bin/energy-agent"


def test_the_demo_starts_offline_when_its_venv_already_holds_the_project() -> None:
    """The demo used to run pip first, every time: offline it retried for 43 s, then failed. With .venv holding this
    checkout and its dependencies it goes straight to the demo (here its --help, which needs no servers)."""
    if not (REPO / ".venv" / "bin" / "python").is_file():
        pytest.skip(f"no .venv in {REPO} (the demo's own venv)")
    needed = [cmd for cmd in ("mosquitto_sub", "influxd") if shutil.which(cmd) is None]
    if needed:
        pytest.skip(f"the demo would first apt-get install {needed}, which needs the network")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")} | {"PIP_CONFIG_FILE": os.devnull}
    with offline() as prefix:
        done = subprocess.run(
            [*prefix, "bash", str(REPO / "deploy" / "demo.sh"), "--help"],
            capture_output=True,
            text=True,
            check=False,
            timeout=300,
            env=env,
        )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.startswith("usage: energy-agent demo")
    assert done.stderr == ""


@pytest.mark.long(seconds=12)  # a venv from the bundle, then a short demo
def test_the_demo_on_a_fresh_clone_installs_from_a_bundle_with_no_network(bundle: Path, tmp_path: Path) -> None:
    """A fresh clone has no .venv; offline, ENERGY_AGENT_BUNDLE=FILE gives it one from the bundle's wheels."""
    from tests.e2e.test_readme_commands import copy_of_repo

    needed = [cmd for cmd in ("mosquitto", "mosquitto_sub", "influxd") if shutil.which(cmd) is None]
    if needed and not Path("/usr/sbin/mosquitto").exists():
        pytest.skip(f"the demo would first apt-get install {needed}, which needs the network")
    repo = copy_of_repo(tmp_path / "clone")
    assert not (repo / ".venv").exists()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env |= {"PIP_CONFIG_FILE": os.devnull, "ENERGY_AGENT_BUNDLE": str(bundle)}
    with offline() as prefix:
        done = subprocess.run(
            [*prefix, "bash", "deploy/demo.sh", "--help"],
            cwd=repo,
            capture_output=True,
            text=True,
            check=False,
            timeout=900,
            env=env,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        assert done.stdout.startswith("usage: energy-agent demo")
        again = subprocess.run(  # the second time the venv is complete: no pip at all
            [*prefix, "bash", "deploy/demo.sh", "--help"],
            cwd=repo,
            capture_output=True,
            text=True,
            check=False,
            timeout=300,
            env={k: v for k, v in env.items() if k != "ENERGY_AGENT_BUNDLE"},
        )
    assert again.returncode == 0 and again.stderr == "", again.stderr[-3000:]
