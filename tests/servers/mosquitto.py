"""Debian's mosquitto on a free loopback port, with an optional extra config (TLS, passwords, ACLs)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.servers.process import ServerProcess, free_port


def mosquitto_binary() -> str:
    for candidate in ("mosquitto", "/usr/sbin/mosquitto"):
        found = shutil.which(candidate)
        if found:
            return found
    pytest.skip("mosquitto is not installed: run deploy/test.sh, which installs Debian's mosquitto")


def mosquitto(workdir: Path, extra_conf: str = "", port: int | None = None, anonymous: bool = True) -> ServerProcess:
    """A broker listening on 127.0.0.1:<port>. ``extra_conf`` is appended (e.g. password_file, acl_file).
    Not started: use ``with mosquitto(...) as broker`` or ``.start()``. Restart on the same port by calling
    ``start()`` again after ``stop()``/``kill9()``."""
    port = port or free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    conf = workdir / "mosquitto.conf"
    conf.write_text(
        f"listener {port} 127.0.0.1\n"
        f"allow_anonymous {'true' if anonymous else 'false'}\n"
        "persistence false\n"
        "max_queued_messages 0\n"
        "max_inflight_messages 0\n"
        "log_dest stdout\n"
        "log_type error\nlog_type warning\nlog_type notice\n" + extra_conf
    )
    return ServerProcess("mosquitto", [mosquitto_binary(), "-c", str(conf)], workdir, port)
