"""``energy-center``: the energy-centre ingestor's console script.

    energy-center run center.yaml        consume MQTT and write to InfluxDB until SIGTERM/SIGINT
    energy-center validate center.yaml   check the config; exit 0, or 78 (EX_CONFIG) listing every problem

Exit codes: 0 clean stop, 78 bad config (the systemd unit does not restart on it), 1 anything else.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Sequence

from agent.center.config import CenterConfig, load
from agent.center.influx import make_writer
from agent.center.ingestor import Ingestor
from agent.errors import EX_CONFIG, ConfigError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="energy-center", description="Energy-centre ingestor: MQTT -> InfluxDB")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run = sub.add_parser("run", help="consume the agents' topics and write to InfluxDB")
    run.add_argument("config", help="center.yaml")
    validate = sub.add_parser("validate", help="check center.yaml and exit 0 or 78")
    validate.add_argument("config", help="center.yaml")
    return parser


async def serve(config: CenterConfig) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    writer = await asyncio.to_thread(make_writer, config.influx)
    await Ingestor(config, writer).run(stop)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        config = load(args.config)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return EX_CONFIG
    if args.command == "validate":
        print(f"{args.config}: ok")
        return 0
    logging.basicConfig(
        level=config.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    try:
        import uvloop

        uvloop.run(serve(config))
    except ImportError:
        asyncio.run(serve(config))
    return 0


if __name__ == "__main__":
    sys.exit(main())
