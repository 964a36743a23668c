"""``energy-agent run SITE.yaml``: the service. Exit 0 on a clean stop, 78 on a bad config or an unusable state
directory (not writable, or held by another running agent), 1 when the spool cannot be opened for another reason."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from agent.cli._hints import hints
from agent.config.refuse import refuse
from agent.errors import EX_CONFIG, ConfigError, SpoolError, StateDirError
from agent.systemd.journal import JournalFormatter, error_prefix

NAME = "run"
HELP = "run the agent: poll, compute KPIs, spool and publish (SIGTERM stops, SIGHUP reloads)"


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("site", type=Path, help="the gateway's site file")
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])


def configure_logging(level: str) -> None:
    """One line per event on stdout. Under systemd (JOURNAL_STREAM set) journald adds the time itself and takes
    each line's ``<N>`` prefix as its priority (``journalctl -p warning``)."""
    handler = logging.StreamHandler(sys.stdout)
    if os.environ.get("JOURNAL_STREAM"):
        handler.setFormatter(JournalFormatter("%(levelname)s %(name)s: %(message)s"))
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=level, handlers=[handler], force=True)
    # Libraries log their own view of device faults at WARNING/ERROR; ours say it once, with the device name.
    for noisy in ("pymodbus", "asyncua", "paho"):
        logging.getLogger(noisy).setLevel(logging.CRITICAL)


def run(args: argparse.Namespace) -> int:
    from agent.runtime.agent import Agent

    configure_logging(args.log_level)
    try:
        agent = Agent(args.site, hints=hints)
    except ConfigError as exc:
        return refuse(exc, f"{args.site}: the site file is invalid; nothing was started:")
    try:
        import uvloop

        uvloop.run(agent.run())
    except KeyboardInterrupt:
        pass
    except StateDirError as exc:  # an operator must act (permissions, another agent): a restart would only loop
        print(f"{error_prefix()}{exc}; nothing was started", file=sys.stderr)
        return EX_CONFIG
    except SpoolError as exc:  # e.g. no space to create the spool: may pass, systemd restarts after RestartSec
        print(f"{error_prefix()}{exc}; nothing was started", file=sys.stderr)
        return 1
    return 0
