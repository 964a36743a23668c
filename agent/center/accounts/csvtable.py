"""The CSV files the accounts import (entries, the meter register): the header checked against the known columns,
and positions as ``file:line:col`` with a did-you-mean."""

from __future__ import annotations

import csv
import difflib
import io
from _csv import Reader
from collections.abc import Sequence
from pathlib import Path

from agent.errors import ConfigError, ConfigIssue


def read_csv_file(path: str | Path) -> str:
    """The text of an import file (UTF-8, with or without a BOM); a file that cannot be read is a ConfigError."""
    try:
        return Path(path).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([ConfigIssue(str(path), 1, 1, "", f"cannot read it: {exc}")]) from None


def near(value: str, known: list[str]) -> str:
    m = difflib.get_close_matches(value, known, n=1)
    return f" (did you mean {m[0]!r}?)" if m else ""


def column_of(line: str, index: int) -> int:
    """1-based character column where CSV field ``index`` of ``line`` starts."""
    col, field, quoted = 0, 0, False
    for i, ch in enumerate(line):
        if field == index:
            return i + 1
        if ch == '"':
            quoted = not quoted
        elif ch == "," and not quoted:
            field += 1
        col = i
    return col + 2 if field == index else 1


def open_table(
    text: str, display: str, columns: Sequence[str], required: Sequence[str]
) -> tuple[list[str], list[str], Reader]:
    """(lines, header, reader) of a CSV whose header names only known columns and every required one;
    ConfigError listing every header problem otherwise. ``reader.line_num`` is the line of the last row read."""
    lines = text.splitlines()
    reader = csv.reader(io.StringIO(text))
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        raise ConfigError([ConfigIssue(display, 1, 1, "", "empty file: the first line names the columns")]) from None
    issues = [
        ConfigIssue(display, 1, column_of(lines[0], i), "", f"unknown column {h!r}{near(h, list(columns))}")
        for i, h in enumerate(header)
        if h not in columns
    ]
    issues += [
        ConfigIssue(display, 1, 1, "", f"missing column {h!r}; the columns are {', '.join(columns)}")
        for h in required
        if h not in header
    ]
    if issues:
        raise ConfigError(issues)
    return lines, header, reader


def command_line_table(columns: Sequence[str], values: Sequence[object]) -> str:
    """A one-row CSV of what a command was given, so that it is checked by the same parser as an imported file."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(columns)
    writer.writerow(values)
    return buf.getvalue()
