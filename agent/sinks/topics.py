"""MQTT topic names. One function per topic; every name that becomes a topic level is checked here, so no site,
gateway or device name can inject a wildcard (``+``, ``#``) or an extra level (``/``).

    <prefix>/<site>/<gateway>/<device>/samples   one message per device per poll (QoS 1)
    <prefix>/<site>/<gateway>/kpi                KPI values of one engine update (QoS 1)
    <prefix>/<site>/<gateway>/status             retained; birth "online", Last Will "offline"
"""

from __future__ import annotations

import re

_LEVEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")  # the same rule as the site file's names


def check_level(name: str, what: str = "name") -> str:
    """Return ``name`` if it is safe as one topic level; raise ValueError saying why not."""
    if not _LEVEL.match(name):
        bad = sorted({c for c in name if c in "/+#$\x00 "})
        why = f" (contains {' '.join(repr(c) for c in bad)})" if bad else ""
        raise ValueError(
            f"{what} {name!r} cannot be an MQTT topic level{why}: use 1-64 of A-Z a-z 0-9 _ . -, "
            "starting with a letter or digit"
        )
    return name


def check_prefix(prefix: str) -> str:
    """A prefix is one or more levels; each level follows the same rule as names."""
    for level in prefix.split("/"):
        check_level(level, "topic_prefix level")
    return prefix


def samples_topic(prefix: str, site: str, gateway: str, device: str) -> str:
    return f"{_base(prefix, site, gateway)}/{check_level(device, 'device')}/samples"


def kpi_topic(prefix: str, site: str, gateway: str) -> str:
    return f"{_base(prefix, site, gateway)}/kpi"


def status_topic(prefix: str, site: str, gateway: str) -> str:
    return f"{_base(prefix, site, gateway)}/status"


def _base(prefix: str, site: str, gateway: str) -> str:
    return f"{check_prefix(prefix)}/{check_level(site, 'site')}/{check_level(gateway, 'gateway')}"
