"""Handshakes with real security policies: trusted and untrusted server certificates, wrong and missing passwords
(clear error, no retry storm), certificate authentication, and pinning a server during commissioning."""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.cli import main as cli_main
from agent.errors import SecurityError, SourceError
from agent.model import Quality
from agent.sources.opcua import pki
from agent.sources.opcua.source import Backoff, OpcuaSource, read_once
from tests.integration.opcua_sim import (
    ALL_POLICIES,
    ClientPki,
    Sim,
    all_good,
    client_pki,
    device_config,
    point,
    running,
    start_sim,
)

pytestmark = pytest.mark.e2e  # starts the OPC UA simulator as a process

PASSWORD = "s3cret-Kiln!"


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sim]:
    s = start_sim(tmp_path_factory.mktemp("opcua-secure"), policies=ALL_POLICIES[1:], users={"operator": PASSWORD})
    try:
        yield s
    finally:
        s.proc.stop()


@pytest.fixture
def trusted(sim: Sim, tmp_path: Path) -> ClientPki:
    return client_pki(tmp_path / "pki", trust=sim)


def password_file(tmp_path: Path, text: str) -> str:
    path = tmp_path / "pw"
    path.write_text(text + "\n")
    path.chmod(0o600)
    return str(path)


@pytest.mark.parametrize(
    "policy",
    ["Basic256Sha256_SignAndEncrypt", "Aes128_Sha256_RsaOaep_Sign", "Aes256_Sha256_RsaPss_SignAndEncrypt"],
)
async def test_trusted_server_with_username(sim: Sim, trusted: ClientPki, tmp_path: Path, policy: str) -> None:
    auth = {"type": "username", "username": "operator", "password_file": password_file(tmp_path, PASSWORD)}
    cfg = device_config(sim, [point("kiln1", "coal_t")], creds=trusted, policy=policy, auth=auth)
    result = await read_once(OpcuaSource(cfg))
    assert result.samples[0].quality is Quality.GOOD, result


async def test_certificate_authentication(sim: Sim, trusted: ClientPki) -> None:
    auth = {"type": "certificate", "cert_file": str(trusted.cert), "key_file": str(trusted.key)}
    cfg = device_config(sim, [point("kiln1", "coal_t")], creds=trusted, policy="Aes256_Sha256_RsaPss_Sign", auth=auth)
    result = await read_once(OpcuaSource(cfg))
    assert result.samples[0].quality is Quality.GOOD


async def test_untrusted_server_is_refused_with_its_thumbprint_and_not_retried_in_a_storm(
    sim: Sim, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    creds = client_pki(tmp_path / "pki")  # empty trust folder
    auth = {"type": "username", "username": "operator", "password_env": "OPCUA_TEST_PW"}
    cfg = device_config(sim, [point("kiln1", "coal_t")], creds=creds, policy="Basic256Sha256_SignAndEncrypt", auth=auth)
    server = pki.load_certificate(sim.server_cert)
    with pytest.raises(SecurityError) as info:
        await read_once(OpcuaSource(cfg))
    message = str(info.value)
    assert message.startswith("kiln1: server certificate of opc.tcp://127.0.0.1:")
    assert "not trusted" in message and pki.thumbprint(server) in message and "energy-agent opcua trust" in message
    assert sim.wait_status(lambda s: s["sessions"] == 0)["sessions"] == 0  # never got as far as a session

    caplog.set_level(logging.WARNING, logger="agent.sources.opcua")
    source = OpcuaSource(cfg)
    async with running(source) as run:
        await run.wait_for(lambda r: True, 10, after=5)  # 6 intervals of 0.5 s
    assert source.attempts == 1 and source.health()[0].errors_by_kind == {"security": 1}
    assert source.health()[0].state == "failed"
    assert all(s.quality is Quality.BAD and "not trusted" in s.reason for r in run.results for s in r.samples)
    failed = [r for r in caplog.records if r.name == "agent.sources.opcua" and "failed" in r.getMessage()]
    assert len(failed) == 1 and failed[0].getMessage().startswith("kiln1: failed:")


async def test_wrong_password_is_a_clear_error_once(
    sim: Sim, trusted: ClientPki, tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPCUA_TEST_PW", "not-the-password")
    auth = {"type": "username", "username": "operator", "password_env": "OPCUA_TEST_PW"}
    cfg = device_config(sim, [point("kiln1", "coal_t")], creds=trusted, policy="Aes128_Sha256_RsaOaep_Sign", auth=auth)
    caplog.set_level(logging.DEBUG)
    with pytest.raises(
        SecurityError, match=r"^kiln1: opc.tcp://127.0.0.1:\d+ refused the connection: BadUserAccessDenied$"
    ):
        await read_once(OpcuaSource(cfg))
    source = OpcuaSource(cfg)
    async with running(source) as run:
        await run.wait_for(lambda r: True, 10, after=5)
    assert source.attempts == 1, "a refused password must not be retried at network speed"
    assert (
        run.results[-1].samples[0].reason
        == f"not connected: opc.tcp://127.0.0.1:{sim.port} refused the connection: BadUserAccessDenied"
    )
    assert "not-the-password" not in caplog.text and "not-the-password" not in repr(run.results)
    assert sim.wait_status(lambda s: s["sessions"] == 0)["sessions"] == 0  # the refused session is gone


async def test_missing_password_source_names_it(sim: Sim, trusted: ClientPki, tmp_path: Path) -> None:
    auth = {"type": "username", "username": "operator", "password_env": "OPCUA_TEST_UNSET_VARIABLE"}
    cfg = device_config(sim, [point("kiln1", "coal_t")], creds=trusted, policy="Basic256Sha256_Sign", auth=auth)
    with pytest.raises(SecurityError, match="OPCUA_TEST_UNSET_VARIABLE"):
        await read_once(OpcuaSource(cfg))


async def test_anonymous_refused_when_the_server_wants_users(sim: Sim, trusted: ClientPki) -> None:
    cfg = device_config(sim, [point("kiln1", "coal_t")], creds=trusted, policy="Basic256Sha256_SignAndEncrypt")
    with pytest.raises(SecurityError, match="BadIdentityTokenRejected"):
        await read_once(OpcuaSource(cfg))


async def test_policy_the_server_does_not_offer(sim: Sim, trusted: ClientPki, tmp_path: Path) -> None:
    cfg = device_config(sim, [point("kiln1", "coal_t")])  # policy None; the server only offers secure endpoints
    with pytest.raises(SourceError):
        await read_once(OpcuaSource(cfg))
    creds = trusted
    auth = {"type": "username", "username": "operator", "password_file": password_file(tmp_path, PASSWORD)}
    ok = device_config(sim, [point("kiln1", "coal_t")], creds=creds, policy="Basic256Sha256_Sign", auth=auth)
    assert (await read_once(OpcuaSource(ok))).samples[0].quality is Quality.GOOD


def test_commissioning_pins_only_when_asked(sim: Sim, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    trust_dir = tmp_path / "trusted"
    assert cli_main(["opcua", "cert", "--cert", str(tmp_path / "c.der"), "--key", str(tmp_path / "k.pem")]) == 0
    base = ["--cert", str(tmp_path / "c.der"), "--key", str(tmp_path / "k.pem"), "--trust-dir", str(trust_dir)]
    user = ["--user", "operator", "--password-file", password_file(tmp_path, PASSWORD)]
    assert cli_main(["browse", sim.endpoint, *base, *user, "--depth", "2"]) == 1
    assert "is not trusted" in capsys.readouterr().err
    assert not any(trust_dir.glob("*.der"))
    assert cli_main(["opcua", "trust", sim.endpoint, "--trust-dir", str(trust_dir), "--yes"]) == 0
    out = capsys.readouterr().out
    assert pki.thumbprint(pki.load_certificate(sim.server_cert)) in out and "pinned in" in out
    assert cli_main(["browse", sim.endpoint, *base, *user, "--depth", "2"]) == 0
    out = capsys.readouterr().out
    assert "[2] urn:energy-agent:simulator:plant" in out
    assert "kiln1/coal_feed_tph | nsu=urn:energy-agent:simulator:plant;s=kiln1.coal_feed_tph | Variable | Double" in out
    assert PASSWORD not in out


def test_trust_without_yes_and_without_a_terminal_refuses_in_one_line(sim: Sim, tmp_path: Path) -> None:
    """`opcua trust` run from a script or over a pipe cannot ask: one line saying what to do, nothing pinned."""
    trust_dir = tmp_path / "trusted"
    argv = [sys.executable, "-m", "agent", "opcua", "trust", sim.endpoint, "--trust-dir", str(trust_dir)]
    done = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 1, done.stderr
    assert done.stderr.splitlines() == [
        "not trusted, nothing written: no terminal to ask on; compare the SHA-256 above with the server's own "
        "display, then re-run with --yes"
    ]
    assert pki.thumbprint(pki.load_certificate(sim.server_cert)) in done.stdout
    assert not any(trust_dir.glob("*.der"))


async def test_server_that_does_not_trust_the_agent_says_so_and_recovers_once_trusted(tmp_path: Path) -> None:
    client_trust = tmp_path / "server-trusts"
    client_trust.mkdir()
    strict = start_sim(
        tmp_path / "sim", policies=["Aes256_Sha256_RsaPss_SignAndEncrypt"], client_trust_dir=client_trust
    )
    try:
        creds = client_pki(tmp_path / "pki", trust=strict)
        cfg = device_config(
            strict, [point("kiln1", "coal_t")], creds=creds, policy="Aes256_Sha256_RsaPss_SignAndEncrypt"
        )
        with pytest.raises(SecurityError) as info:
            await read_once(OpcuaSource(cfg))
        assert "BadCertificateUntrusted" in str(info.value) and str(creds.cert) in str(info.value)
        source = OpcuaSource(cfg, security_retry=Backoff(1.0, 1.0))  # production waits 30 s, then longer
        async with running(source) as run:
            await run.wait_for(lambda r: "BadCertificateUntrusted" in r.samples[0].reason, 10)
            (client_trust / "agent.der").write_bytes(creds.cert.read_bytes())  # the administrator trusts it
            await run.wait_for(all_good, 10, after=len(run.results))
    finally:
        strict.proc.stop()


async def test_server_refusing_the_agent_at_open_secure_channel_fails_only_that_device(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Many servers refuse an untrusted client already at OpenSecureChannel (BadSecurityChecksFailed), where asyncua
    raises an AssertionError: the device fails with the certificate to hand over, and its source keeps running."""
    client_trust = tmp_path / "server-trusts"
    client_trust.mkdir()
    policy = "Basic256Sha256_SignAndEncrypt"
    strict = start_sim(tmp_path / "sim", policies=[policy], client_trust_dir=client_trust, client_trust_at="channel")
    try:
        creds = client_pki(tmp_path / "pki", trust=strict)
        cfg = device_config(strict, [point("kiln1", "coal_t")], creds=creds, policy=policy)
        with pytest.raises(SecurityError) as info:
            await read_once(OpcuaSource(cfg))
        assert str(info.value) == (
            f"kiln1: {strict.endpoint} refused the secure channel (a bad status, e.g. BadSecurityChecksFailed, to "
            f"OpenSecureChannel): the server does not trust this agent's certificate {creds.cert}"
        )
        caplog.set_level(logging.WARNING, logger="agent.sources.opcua")
        source = OpcuaSource(cfg, security_retry=Backoff(1.0, 1.0))
        async with running(source) as run:
            refused = await run.wait_for(lambda r: True, 10, after=3)
            assert refused.samples[0].quality is Quality.BAD
            assert str(creds.cert) in refused.samples[0].reason
            assert source.health()[0].state == "failed"
            assert source.health()[0].errors_by_kind["security"] >= 1
            (client_trust / "agent.der").write_bytes(creds.cert.read_bytes())  # the administrator trusts it
            await run.wait_for(all_good, 10, after=len(run.results))
    finally:
        strict.proc.stop()
    failed = [r.getMessage() for r in caplog.records if r.name == "agent.sources.opcua" and "failed" in r.getMessage()]
    assert failed == [f"kiln1: failed: {str(info.value).removeprefix('kiln1: ')}"]
