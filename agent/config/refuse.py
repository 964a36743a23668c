"""How commands report a config they refuse: the issues, one per line on stderr, then exit status 78."""

from __future__ import annotations

import sys

from agent.errors import EX_CONFIG, ConfigError
from agent.systemd.journal import error_prefix


def refuse(exc: ConfigError, headline: str = "") -> int:
    """Print ``headline`` (if any) and every issue of ``exc``; return EX_CONFIG for the command to exit with."""
    prefix = error_prefix()
    if headline:
        print(prefix + headline, file=sys.stderr)
    for issue in exc.issues:
        print(f"{prefix}{issue}", file=sys.stderr)
    return EX_CONFIG
