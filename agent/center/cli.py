"""``energy-center``: the energy-centre ingestor's console script.

    energy-center run center.yaml        consume MQTT (one broker, or several: ``brokers:``) and write to the
                                         store until SIGTERM/SIGINT
    energy-center validate center.yaml   check the config; exit 0, or 78 (EX_CONFIG) listing every problem
    energy-center --version
    energy-center report|entries|meters|accounts|outbox ...   the energy accounts (agent/center/accounts/cli.py)

Exit codes: 0 clean stop, 78 bad config (the systemd unit does not restart on it), 1 anything else.

Under systemd (``Type=notify``) ``run`` sends READY once a (first) broker granted the subscriptions, and, with
``WatchdogSec=``, pings the watchdog while the ingestor's pipeline is alive (:meth:`Ingestor.stalled`: it keeps the
time bounds of its waits, whether or not messages arrive). A blocked event loop or a stuck pipeline stops the pings
and systemd restarts the service; nothing un-acknowledged is lost by that. STATUS= carries the counters
(:meth:`IngestStats.summary`), so ``systemctl status energy-center`` shows what was received, written and
quarantined, and why.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Sequence

from agent import __version__
from agent.center.accounts import cli as accounts_cli
from agent.center.config import CenterConfig, load
from agent.center.fleet import Fleet
from agent.center.influx import make_writer
from agent.config.refuse import refuse
from agent.errors import ConfigError
from agent.systemd.notify import SystemdNotifier

log = logging.getLogger("agent.center")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="energy-center", description="Energy-centre ingestor: MQTT -> InfluxDB")
    parser.add_argument("--version", action="version", version=f"energy-center {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run = sub.add_parser("run", help="consume the agents' topics and write to InfluxDB")
    run.add_argument("config", help="center.yaml")
    validate = sub.add_parser("validate", help="check center.yaml and exit 0 or 78")
    validate.add_argument("config", help="center.yaml")
    accounts_cli.add_parsers(sub)
    return parser


async def serve(config: CenterConfig, notifier: SystemdNotifier) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    ready_sent = False

    def ready() -> None:  # once, when a first broker granted the subscriptions
        nonlocal ready_sent
        if not ready_sent:
            ready_sent = True
            notifier.ready(f"subscribed; writing to {fleet.target}")

    fleet = await asyncio.to_thread(Fleet, config, make_writer, ready=ready)
    helpers = [
        asyncio.create_task(notifier.watchdog(fleet.stalled)),
        asyncio.create_task(notifier.status_updates(fleet.summary, period_s=5.0)),
    ]
    if config.accounts is not None:
        from agent.center.accounts.service import AccountsService

        accounts = await asyncio.to_thread(AccountsService.for_influx, config.accounts, config.influx)
        helpers.append(asyncio.create_task(accounts.run(stop)))
        log.info("accounts: %d unit(s), state in %s", len(config.accounts.units), config.accounts.state_dir)
    try:
        await fleet.run(stop)
    finally:
        notifier.stopping()
        for task in helpers:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command in accounts_cli.COMMANDS:
        return accounts_cli.main(args)
    try:
        config = load(args.config)
    except ConfigError as exc:
        status = refuse(exc)
        errors = len(exc.issues)
        print(f"config not valid: {errors} error{'s' if errors != 1 else ''}", file=sys.stderr)
        return status
    if args.command == "validate":
        print(f"{args.config}: ok")
        return 0
    logging.basicConfig(
        level=config.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    notifier = SystemdNotifier()
    try:
        try:
            import uvloop

            uvloop.run(serve(config, notifier))
        except ImportError:
            asyncio.run(serve(config, notifier))
    finally:
        notifier.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
