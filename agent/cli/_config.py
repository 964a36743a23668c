"""How commands report a config they refuse: the issues, one per line on stderr, then exit status 78."""

from __future__ import annotations

import sys

from agent.errors import EX_CONFIG, ConfigError


def refuse(exc: ConfigError, headline: str = "") -> int:
    """Print ``headline`` (if any) and every issue of ``exc``; return EX_CONFIG for the command to exit with."""
    if headline:
        print(headline, file=sys.stderr)
    for issue in exc.issues:
        print(issue, file=sys.stderr)
    return EX_CONFIG
