"""The web page's pure parts: its config section (refused off loopback without a login), password hashes and
sessions, masking of secrets, what it keeps of polls and KPIs, a device's state for the page, and that no route
accepts a method that could change anything."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import pytest

from agent.config.load import load_site
from agent.config.web import WebConfig, is_loopback
from agent.errors import ConfigError
from agent.model import Grade, KpiValue, PollResult, Quality, Sample
from agent.web.auth import Sessions, hash_password, verify_password
from agent.web.live import TREND_POINTS, LiveState, LogRing
from agent.web.mask import MASK, mask_secrets
from agent.web.server import WebServer
from agent.web.view import DeviceInfo, device_state, kpi_frame, live_frame
from simulators.layout import write_site

FAST = {"n": 2**10, "r": 8, "p": 1}  # a cheap hash for tests; the default costs ~50 ms on purpose


def site_with_web(tmp_path: Path, web: str) -> Path:
    path = write_site(tmp_path / "site.yaml", "127.0.0.1", 5020)
    path.write_text(path.read_text() + web)
    return path


# ---- config ------------------------------------------------------------------------------------------------------


def test_off_by_default_and_loopback_by_default(tmp_path: Path) -> None:
    assert load_site(site_with_web(tmp_path, "")).site.web is None
    web = load_site(site_with_web(tmp_path, "web:\n  enabled: true\n")).site.web
    assert web is not None and web.enabled and web.host == "127.0.0.1" and not web.exposed


def test_listening_on_the_network_without_a_login_is_refused_at_the_host_line(tmp_path: Path) -> None:
    site = site_with_web(tmp_path, "web:\n  enabled: true\n  host: 0.0.0.0\n")
    host_line = site.read_text().splitlines().index("  host: 0.0.0.0") + 1
    with pytest.raises(ConfigError) as err:
        load_site(site)
    (issue,) = err.value.issues
    assert (issue.file, issue.line, issue.col, issue.path) == (str(site), host_line, 9, "web.host")
    assert "without a password" in issue.message and "energy-agent web-password" in issue.message


@pytest.mark.parametrize(
    "guard",
    [
        "  password_hash: " + hash_password("correct horse", **FAST) + "\n",
        "  password_file: web.hash\n",
        "  tls: {cert_file: c.pem, key_file: k.pem, client_ca: ca.pem}\n",
    ],
)
def test_a_password_or_client_certificates_let_it_listen_on_the_network(tmp_path: Path, guard: str) -> None:
    web = load_site(site_with_web(tmp_path, "web:\n" + guard + "  enabled: true\n  host: 0.0.0.0\n")).site.web
    assert web is not None and web.exposed


def test_tls_without_client_certificates_is_no_login(tmp_path: Path) -> None:
    site = site_with_web(
        tmp_path, "web:\n  enabled: true\n  tls: {cert_file: c.pem, key_file: k.pem}\n  host: 10.0.0.5\n"
    )
    with pytest.raises(ConfigError, match="without a password"):
        load_site(site)


def test_a_privileged_port_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="port 443 needs a capability the service does not have"):
        load_site(site_with_web(tmp_path, "web:\n  enabled: true\n  port: 443\n"))


def test_a_password_in_clear_is_not_a_hash(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not a password hash"):
        load_site(site_with_web(tmp_path, "web:\n  enabled: true\n  password_hash: hunter22\n"))


def test_loopback_addresses() -> None:
    assert all(is_loopback(h) for h in ("127.0.0.1", "127.1.2.3", "::1", "localhost"))
    assert not any(is_loopback(h) for h in ("0.0.0.0", "::", "192.168.1.10", "gateway.local"))


# ---- passwords and sessions --------------------------------------------------------------------------------------


def test_password_hash_round_trip_and_refusals() -> None:
    stored = hash_password("correct horse", **FAST)
    assert stored.startswith("scrypt$1024$8$1$")
    assert "correct horse" not in stored
    assert verify_password("correct horse", stored)
    assert not verify_password("correct hors", stored)
    assert not verify_password("correct horse", stored.replace("scrypt$", "md5$"))
    assert not verify_password("correct horse", "scrypt$1024$8$1$!!$??")
    assert hash_password("same", **FAST) != hash_password("same", **FAST)  # salted


async def test_sessions_expire_and_log_out() -> None:
    now = [1000.0]
    sessions = Sessions(ttl_s=60, monotonic=lambda: now[0], failure_delay_s=0.0)
    stored = hash_password("correct horse", **FAST)
    assert await sessions.login("wrong", stored) is None
    token = await sessions.login("correct horse", stored)
    assert token is not None and sessions.valid(token)
    assert not sessions.valid("forged") and not sessions.valid(None)
    now[0] += 61
    assert not sessions.valid(token)
    token2 = await sessions.login("correct horse", stored)
    sessions.logout(token2)
    assert not sessions.valid(token2)


async def test_wrong_passwords_are_tried_one_at_a_time_each_holding_its_delay() -> None:
    import time

    sessions = Sessions(ttl_s=60, failure_delay_s=0.3)
    stored = hash_password("correct horse", **FAST)
    start = time.monotonic()
    results = await asyncio.gather(*(sessions.login(f"guess-{i}", stored) for i in range(4)))
    assert results == [None] * 4
    assert time.monotonic() - start >= 4 * 0.3  # serial: four guesses cost four delays, not one
    assert await sessions.login("correct horse", stored) is not None


# ---- masking -----------------------------------------------------------------------------------------------------


def test_secrets_are_masked_and_paths_stay() -> None:
    text = (
        "mqtt:\n"
        "  username: gw1\n"
        "  password: s3cret-Pa55\n"
        "  password_file: /etc/energy/mqtt.pass\n"
        "  password_env: MQTT_PASSWORD\n"
        "web:\n"
        "  password_hash: scrypt$16384$8$1$c2FsdA==$aGFzaA==  # the page\n"
        "  api_token: 'tok-123'\n"
        "  private_key: |\n"
        "    -----BEGIN KEY-----\n"
        "    MIIEvQIBADANBg\n"
        "  tls: {cert_file: c.pem, key_file: k.pem}\n"
        "devices:\n"
        "  - name: plc\n"
        "    auth: {user: op, password: plcpass}\n"
    )
    masked = mask_secrets(text)
    for secret in ("s3cret-Pa55", "scrypt$", "tok-123", "BEGIN KEY", "MIIEvQIBADANBg"):
        assert secret not in masked
    for kept in ("username: gw1", "/etc/energy/mqtt.pass", "MQTT_PASSWORD", "key_file: k.pem", "name: plc"):
        assert kept in masked
    assert f"  password: {MASK}" in masked
    assert masked.count("\n") == text.count("\n")
    assert f"auth: {{user: op, password: {MASK}}}" in masked


def test_secrets_in_flow_mappings_are_masked() -> None:
    masked = mask_secrets("a: {password: 'p, q', token: t0k}  # c\nb: {password_file: /x, user: u}\n")
    assert masked == f"a: {{password: {MASK}, token: {MASK}}}  # c\nb: {{password_file: /x, user: u}}\n"


# ---- live state --------------------------------------------------------------------------------------------------


def sample(point: str, value: float | None, quality: Quality = Quality.GOOD, reason: str = "") -> Sample:
    return Sample("m1", point, value, "kW", quality, 100.0, reason)


def poll(*samples: Sample, errors: tuple[str, ...] = ()) -> PollResult:
    return PollResult("m1", 100.0, 0.01, samples, 2, errors)


def kpi(value: float | None, start: float, final: bool = False) -> KpiValue:
    return KpiValue(
        "kwh_per_t", "line1", value, "kWh/t", "15m", start, start + 900, 0.9, Quality.GOOD, start, grade=Grade.BETWEEN,
        distance=1.5, final=final,
    )  # fmt: skip


def test_polls_are_counted_good_and_bad() -> None:
    live = LiveState()
    live.on_poll(poll(sample("p", 1.0), sample("q", 2.0)))
    live.on_poll(poll(sample("p", None, Quality.BAD, "timeout after 1000 ms"), sample("q", 2.0)))
    d = live.devices["m1"]
    assert (d.polls, d.good_polls, d.bad_polls, d.good_samples, d.bad_samples) == (2, 1, 1, 3, 1)
    assert d.last is not None and d.last.samples[0].reason == "timeout after 1000 ms"


def test_kpi_trend_keeps_the_last_hour_in_bounded_slots() -> None:
    live = LiveState()
    for i in range(3 * 3600 // 10):  # three hours of evaluations every 10 s
        live.on_kpis([kpi(float(i), start=0.0)], now=i * 10.0)
    trend = live.kpis[("line1", "kwh_per_t", "15m")].trend
    assert len(trend) <= TREND_POINTS
    now = (3 * 3600 // 10 - 1) * 10.0
    assert trend[0][0] >= now - 3600
    assert now - trend[-1][0] < 3600 / TREND_POINTS and trend[-1][1] == float(3 * 3600 // 10 - 1)  # newest value


def test_the_table_shows_the_newest_window_not_a_late_final_of_an_older_one() -> None:
    live = LiveState()
    live.on_kpis([kpi(5.0, start=900.0)], now=1000.0)
    live.on_kpis([kpi(4.0, start=0.0, final=True)], now=1001.0)
    assert live.kpis[("line1", "kwh_per_t", "15m")].value.value == 5.0
    row = kpi_frame(live)["kpis"][0]
    assert (row["grade"], row["distance"], row["final"]) == ("between", 1.5, False)


def test_log_ring_is_bounded_and_warnings_only() -> None:
    ring = LogRing(size=3)
    logger = logging.getLogger("test.web.ring")
    logger.addHandler(ring)
    try:
        logger.info("not shown")
        for i in range(5):
            logger.warning("meter-%d: timeout", i)
    finally:
        logger.removeHandler(ring)
    assert [line.message for line in ring.lines] == ["meter-2: timeout", "meter-3: timeout", "meter-4: timeout"]


# ---- a device's state --------------------------------------------------------------------------------------------


def test_device_states() -> None:
    live = LiveState()
    assert device_state(None, None, enabled=False) == ("disabled", "")
    assert device_state({"state": "ok"}, None, enabled=True) == ("waiting", "")
    live.on_poll(poll(sample("p", 1.0)))
    assert device_state({"state": "ok", "consecutive_failures": 0}, live.devices["m1"], True) == ("ok", "")
    live.on_poll(poll(sample("p", None, Quality.BAD, "no reply"), errors=("m1: no reply from unit 3",)))
    assert device_state({"state": "ok", "consecutive_failures": 1}, live.devices["m1"], True) == (
        "failing",
        "no reply from unit 3",
    )
    live.on_poll(poll(sample("p", None, Quality.BAD, "backing off: no reply from unit 3")))
    assert device_state({"state": "failed", "consecutive_failures": 3}, live.devices["m1"], True) == (
        "backing_off",
        "no reply from unit 3",
    )
    live.on_poll(poll(sample("p", 1.0), sample("q", None, Quality.BAD, "ILLEGAL DATA ADDRESS")))
    assert device_state({"state": "ok", "consecutive_failures": 0}, live.devices["m1"], True) == (
        "ok",
        "ILLEGAL DATA ADDRESS",
    )


# ---- read-only routes --------------------------------------------------------------------------------------------


class FakeView:
    site_path = Path("/nonexistent/site.yaml")

    def meta(self) -> dict[str, Any]:
        return {"version": "0", "site": "s", "gateway": "g", "boot": "b", "started_ts": 0.0, "reloaded_ts": None}

    def devices(self) -> list[DeviceInfo]:
        return [DeviceInfo("m1", "modbus", "bus b unit 1", 1.0, True)]

    def health(self) -> dict[str, Any]:
        return {"devices": {"m1": {"state": "ok", "consecutive_failures": 0, "retries": 2}}}

    def raw_registers(self, device: str) -> dict[str, str] | None:
        return None

    def hints(self, reasons: list[str]) -> list[str]:
        return [f"check {r}" for r in reasons]


async def test_no_route_accepts_a_method_that_could_change_anything() -> None:
    server = WebServer(WebConfig(enabled=True), FakeView(), LiveState(), None, Path("."))
    methods = {(r.resource.canonical if r.resource else "", r.method) for r in server.app.router.routes()}
    changing = {(path, m) for path, m in methods if m not in ("GET", "HEAD")}
    assert changing == {("/login", "POST")}


def test_live_frame_lists_every_configured_device_with_its_hint() -> None:
    live = LiveState()
    live.on_poll(poll(sample("p", None, Quality.BAD, "no reply"), errors=("m1: no reply",)))
    frame = live_frame(FakeView(), live, None, now=200.0)
    (d,) = frame["devices"]
    assert (d["name"], d["state"], d["reason"], d["hint"], d["retries"]) == (
        "m1",
        "failing",
        "no reply",
        "check no reply",
        2,
    )
    assert d["points"][0] == {
        "point": "p",
        "value": None,
        "unit": "kW",
        "quality": "bad",
        "reason": "no reply",
        "ts": 100.0,
    }


def test_web_password_prints_a_hash_the_page_accepts(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import io

    from agent.cli import main

    monkeypatch.setattr("sys.stdin", io.StringIO("kiln-commissioning\n"))
    assert main(["web-password", "--stdin"]) == 0
    stored = capsys.readouterr().out.strip()
    assert WebConfig(enabled=True, host="0.0.0.0", password_hash=stored).exposed
    assert verify_password("kiln-commissioning", stored) and "kiln-commissioning" not in stored
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    assert main(["web-password", "--stdin"]) == 2
    assert capsys.readouterr().out == ""


def test_password_file_holds_the_hash_and_a_readable_one_is_warned_about(tmp_path: Path) -> None:
    from agent.config.secret_files import readable_secret_files
    from agent.web.auth import load_password_hash

    stored = hash_password("correct horse", **FAST)
    (tmp_path / "web.hash").write_text(stored + "\n")
    (tmp_path / "web.hash").chmod(0o644)
    site = load_site(site_with_web(tmp_path, "web:\n  enabled: true\n  password_file: web.hash\n  host: 0.0.0.0\n"))
    web = site.site.web
    assert web is not None and load_password_hash(web, tmp_path) == stored
    warnings = readable_secret_files(site.site, tmp_path)
    assert [(where, "chmod 600" in text) for where, text in warnings] == [(("web", "password_file"), True)]
    (tmp_path / "web.hash").write_text("hunter22\n")
    with pytest.raises(ValueError, match="holds no scrypt"):
        load_password_hash(web, tmp_path)


def test_nothing_in_the_web_page_can_reach_a_write() -> None:
    """The page's code names no write of any protocol and no config file write; the browser test checks the
    simulator served only read function codes while the page was used."""
    import agent.runtime.webview
    import agent.web

    roots = [Path(agent.web.__file__).parent, Path(agent.runtime.webview.__file__)]
    files = [p for r in roots for p in ([r] if r.is_file() else sorted(r.rglob("*.py")) + sorted(r.rglob("*.js")))]
    forbidden = ("write_register", "write_coil", "write_value", "set_value", "write_text", "write_bytes", "unlink")
    found = [(f.name, word) for f in files for word in forbidden if word in f.read_text(encoding="utf-8")]
    assert len(files) >= 8 and found == []


def test_the_page_files_ship_in_the_package_and_name_nothing_remote() -> None:
    import tomllib

    import agent.web
    from agent.web.server import STATIC_FILES

    folder = Path(agent.web.__file__).parent / "static"
    assert sorted(p.name for p in folder.iterdir()) == sorted(STATIC_FILES)
    pyproject = tomllib.loads((Path(agent.web.__file__).parents[2] / "pyproject.toml").read_text())
    assert "web/static/*" in pyproject["tool"]["setuptools"]["package-data"]["agent"]
    for name in STATIC_FILES:  # no CDN, no font or script from elsewhere: a gateway is offline
        text = (folder / name).read_text(encoding="utf-8")
        assert "http://" not in text.replace("http://www.w3.org/2000/svg", "") and "https://" not in text, name
