"""``energy-agent`` command line. Commands only: each subcommand is a module in this package exposing

    NAME: str                                   the subcommand, e.g. "validate"
    HELP: str                                   one line for --help
    def register(parser: argparse.ArgumentParser) -> None
    def run(args: argparse.Namespace) -> int    the exit code (78 = bad config)

Modules are discovered, so adding a command touches no other file. Modules whose name starts with ``_`` are
helpers, not commands.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from collections.abc import Sequence
from typing import Protocol

from agent import __version__


class Command(Protocol):
    NAME: str
    HELP: str

    def register(self, parser: argparse.ArgumentParser) -> None: ...

    def run(self, args: argparse.Namespace) -> int: ...


def _commands() -> list[Command]:
    found: list[Command] = []
    for info in pkgutil.iter_modules(__path__):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        found.append(module)
    return sorted(found, key=lambda c: c.NAME)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="energy-agent", description="Plant energy edge agent")
    parser.add_argument("--version", action="version", version=f"energy-agent {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in _commands():
        p = sub.add_parser(command.NAME, help=command.HELP, description=command.HELP)
        command.register(p)
        p.set_defaults(_run=command.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    code: int = args._run(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
