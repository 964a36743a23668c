"""The site file as the page shows it: every secret value replaced by ``********``.

A value is secret when its key names one (``password``, ``password_hash``, ``token``, ``secret``, ``api_key``,
``private_key`` and keys ending in them); paths to secret files (``password_file``, ``key_file``) and environment
variable names (``password_env``) are not secrets and stay. Block scalars (``|``, ``>``) under a secret key are
masked whole, and so is a secret inside a flow mapping (``{user: op, password: p}``). Works on the text, so comments and layout stay as written.
"""

from __future__ import annotations

import re

MASK = "********"
_SECRET_KEY = re.compile(
    r"^(?P<lead>\s*(?:-\s+)?)(?P<key>[\"']?[A-Za-z0-9_]*?(?:password|password_hash|token|secret|api_key|private_key)"
    r"[\"']?)(?P<sep>\s*:)(?P<rest>.*)$",
    re.IGNORECASE,
)


_INLINE = re.compile(
    r"(?P<key>(?<![A-Za-z0-9_])[\"']?[A-Za-z0-9_]*?(?:password|password_hash|token|secret|api_key|private_key)[\"']?"
    r"\s*:\s*)(?P<value>\"[^\"]*\"|'[^']*'|[^,}\s#][^,}#]*?)(?=\s*(?:[,}]|\s#|$))",
    re.IGNORECASE,
)


def mask_secrets(text: str) -> str:
    out: list[str] = []
    block_indent: int | None = None
    for line in text.splitlines():
        indent = len(line) - len(line.lstrip())
        if block_indent is not None:
            if line.strip() == "" or indent > block_indent:
                out.append(" " * indent + MASK if line.strip() else line)
                continue
            block_indent = None
        m = _SECRET_KEY.match(line)
        if m is None or not m.group("rest").strip() or m.group("rest").strip().startswith(("#", "{")):
            out.append(_INLINE.sub(lambda f: f.group("key") + MASK, line))  # flow mappings: {user: u, password: p}
            continue
        rest = m.group("rest").strip()
        if rest[0] in "|>":
            block_indent = len(m.group("lead"))
        out.append(f"{m.group('lead')}{m.group('key')}{m.group('sep')} {MASK}")
    return "\n".join(out) + ("\n" if text.endswith("\n") else "")
