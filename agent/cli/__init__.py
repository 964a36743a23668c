"""``energy-agent`` command line. Commands only: each subcommand is a module in this package exposing

    NAME: str                                   the subcommand, e.g. "validate"
    HELP: str                                   one line for --help
    def register(parser: argparse.ArgumentParser) -> None
    def run(args: argparse.Namespace) -> int    the exit code (78 = bad config)

Modules are discovered, so adding a command touches no other file. Modules whose name starts with ``_`` are
helpers, not commands; a command named like a builtin lives in ``<name>_.py`` (``list_.py``: a submodule named
``list`` would become the package attribute ``list`` and shadow the builtin in this module). When the command is
named on the command line only its module is imported: the service (``run``) must not pay for what commissioning
commands import (asyncua alone is ~25 MB of RSS). A closed stdout (``| head``) ends a command quietly with 141.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys
from collections.abc import Sequence
from typing import Protocol

from agent import __version__

EX_BROKEN_PIPE = 141  # 128 + SIGPIPE, as a shell reports a command killed by it


class Command(Protocol):
    NAME: str
    HELP: str

    def register(self, parser: argparse.ArgumentParser) -> None: ...

    def run(self, args: argparse.Namespace) -> int: ...


def _module_names() -> list[str]:
    return sorted(info.name for info in pkgutil.iter_modules(__path__) if not info.name.startswith("_"))


def _commands(only: str | None = None) -> list[Command]:
    names = _module_names()
    if only is not None:  # "web-password" lives in web_password.py
        only = only.replace("-", "_")
    if only is not None and (only in names or f"{only}_" in names):
        names = [only if only in names else f"{only}_"]
    found: list[Command] = [importlib.import_module(f"{__name__}.{name}") for name in names]
    return sorted(found, key=lambda c: c.NAME)


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="energy-agent", description="Plant energy edge agent")
    parser.add_argument("--version", action="version", version=f"energy-agent {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in _commands(only):
        p = sub.add_parser(command.NAME, help=command.HELP, description=command.HELP)
        command.register(p)
        p.set_defaults(_run=command.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    first = next((a for a in argv if not a.startswith("-")), None)
    args = build_parser(first).parse_args(argv)
    try:
        code: int = args._run(args)
        sys.stdout.flush()
    except BrokenPipeError:  # `energy-agent list profiles | head`: the reader is gone, which is not our fault
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so the flush at exit stays quiet too
        return EX_BROKEN_PIPE
    return code


if __name__ == "__main__":
    sys.exit(main())
