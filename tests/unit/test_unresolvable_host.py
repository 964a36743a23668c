"""A device host name that does not resolve is reported as such (issue 17: ``cannot connect: unknown error -2``):
by the Modbus link (so by ``run``'s log and ``probe``), by the OPC UA error mapping, with a ``probe`` hint, and as a
``validate`` warning at the key naming it. Name lookups are answered by a stub resolver (EAI_NONAME for *.invalid),
so no DNS query leaves the machine; the connection itself is real (asyncio's create_connection)."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest

from agent.cli import main
from agent.cli._hints import hint
from agent.errors import ConnectionLost
from agent.sources.modbus.link import ModbusLink
from agent.sources.opcua.errors import map_error

SITE = """\
site: s1
gateway: gw1
timezone: UTC
devices:
  - {name: m1, profile: generic-3ph-meter, host: meter-7.invalid, unit_id: 1, interval_s: 1}
  - {name: m2, profile: generic-3ph-meter, host: 127.0.0.1, unit_id: 2, interval_s: 1}
"""


@pytest.fixture(autouse=True)
def stub_resolver(monkeypatch: pytest.MonkeyPatch) -> None:
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(host, str) and host.endswith(".invalid"):
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


async def test_the_modbus_link_says_the_name_does_not_resolve() -> None:
    link = ModbusLink.tcp("meter-7.invalid", 502)
    with pytest.raises(ConnectionLost) as err:
        await link.connect(1.0)
    assert (
        str(err.value) == "cannot connect: the host name 'meter-7.invalid' does not resolve (Name or service not known)"
    )
    assert (hint(str(err.value)) or "").startswith("the gateway cannot look up this host name")


def test_the_opcua_mapping_says_the_name_does_not_resolve() -> None:
    exc = socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    mapped = map_error("plc", "opc.tcp://kiln-plc.invalid:4840", exc)
    assert isinstance(mapped, ConnectionLost)
    assert str(mapped) == (
        "plc: the host name 'kiln-plc.invalid' of opc.tcp://kiln-plc.invalid:4840 does not resolve "
        "(Name or service not known)"
    )


def test_validate_warns_at_the_host_key_and_probe_gives_the_hint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    site = tmp_path / "site.yaml"
    site.write_text(SITE)
    assert main(["validate", str(site)]) == 0  # a warning: validate may run where the plant's DNS is not
    err = capsys.readouterr().err.splitlines()
    assert err == [
        f"{site}:5:50: devices[0].host: warning: the host name 'meter-7.invalid' does not resolve on this machine: "
        "check its spelling, /etc/hosts and the DNS server of the gateway's network (an IP address needs no DNS)"
    ]
    assert main(["probe", str(site), "--device", "m1"]) == 1
    out = capsys.readouterr().out
    assert "error: cannot connect: the host name 'meter-7.invalid' does not resolve" in out
    assert "hint: the gateway cannot look up this host name" in out
