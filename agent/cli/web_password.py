"""``energy-agent web-password``: ask for the web page's password twice and print its scrypt hash for the site file
(``web.password_hash``) or a credential file (``web.password_file``). ``--stdin`` reads it from one line of standard
input instead (for scripts). The password itself is printed nowhere and stored nowhere."""

from __future__ import annotations

import argparse
import getpass
import sys

from agent.web.auth import hash_password

NAME = "web-password"
HELP = "print the scrypt hash of a password for the web page (web.password_hash or web.password_file)"
MIN_LENGTH = 8


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--stdin", action="store_true", help="read the password from one line of standard input")


def run(args: argparse.Namespace) -> int:
    if args.stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = getpass.getpass("password for the web page: ")
        if getpass.getpass("again: ") != password:
            print("energy-agent web-password: the two entries differ; nothing printed", file=sys.stderr)
            return 2
    if len(password) < MIN_LENGTH:
        print(f"energy-agent web-password: use at least {MIN_LENGTH} characters", file=sys.stderr)
        return 2
    print(hash_password(password))
    return 0
