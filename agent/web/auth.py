"""Passwords and sessions of the web page.

The site file holds only an scrypt hash of the password (``scrypt$n$r$p$salt$hash``, standard base64), made by
:func:`hash_password` (``energy-agent web-password``). A login verifies the password against it in a worker thread
(scrypt costs ~50 ms of CPU on purpose; one verification at a time, so a flood of logins cannot eat the CPU the
pollers need; a wrong password holds that turn for a second, so guesses go one a second at most, however many
arrive at once) and, when it matches, hands out a random session token (a cookie). Sessions live in memory, are
bounded in number and expire; a restart logs everybody out. :func:`load_password_hash` and :func:`tls_context`
read what the ``web:`` section points at (relative paths from the site file's folder).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import secrets
import ssl
import time
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

from agent.config.web import WebConfig

SCRYPT_N = 2**14
SCRYPT_R = 8
SCRYPT_P = 1
MAX_SESSIONS = 256
FAILURE_DELAY_S = 1.0


def hash_password(password: str, *, n: int = SCRYPT_N, r: int = SCRYPT_R, p: int = SCRYPT_P) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, dklen=32)
    return f"scrypt${n}${r}${p}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def verify_password(password: str, stored: str) -> bool:
    """True when ``password`` matches the ``scrypt$...`` hash; False for a wrong password or a malformed hash."""
    try:
        scheme, n, r, p, salt, digest = stored.strip().split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        got = hashlib.scrypt(
            password.encode(),
            salt=base64.b64decode(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            dklen=len(expected),
            maxmem=256 * 1024 * 1024,
        )
    except ValueError:
        return False
    return hmac.compare_digest(got, expected)


class Sessions:
    """Login sessions: token -> expiry (monotonic). Bounded: the oldest session goes when a new one would overflow."""

    def __init__(
        self, ttl_s: float, monotonic: Callable[[], float] = time.monotonic, failure_delay_s: float = FAILURE_DELAY_S
    ) -> None:
        self.ttl_s = ttl_s
        self.failure_delay_s = failure_delay_s
        self._monotonic = monotonic
        self._tokens: OrderedDict[str, float] = OrderedDict()
        self._verifying = asyncio.Lock()

    def __len__(self) -> int:
        return len(self._tokens)

    async def login(self, password: str, stored_hash: str) -> str | None:
        """A new session token when the password matches, else None (after the same scrypt work either way)."""
        async with self._verifying:
            ok = await asyncio.to_thread(verify_password, password, stored_hash)
            if not ok:  # still holding the lock: guesses go one at a time, at most one per failure_delay_s
                await asyncio.sleep(self.failure_delay_s)
                return None
        token = secrets.token_urlsafe(32)
        self._tokens[token] = self._monotonic() + self.ttl_s
        while len(self._tokens) > MAX_SESSIONS:
            self._tokens.popitem(last=False)
        return token

    def valid(self, token: str | None) -> bool:
        if not token:
            return False
        expiry = self._tokens.get(token)
        if expiry is None:
            return False
        if expiry < self._monotonic():
            del self._tokens[token]
            return False
        return True

    def logout(self, token: str | None) -> None:
        if token:
            self._tokens.pop(token, None)


def load_password_hash(config: WebConfig, site_dir: Path) -> str | None:
    """The configured hash: ``password_hash``, or the first line of ``password_file`` (relative to the site file)."""
    if config.password_hash is not None:
        return config.password_hash
    if config.password_file is None:
        return None
    path = Path(config.password_file).expanduser()
    path = path if path.is_absolute() else site_dir / path
    text = path.read_text(encoding="utf-8").strip().splitlines()
    if not text or not text[0].startswith("scrypt$"):
        raise ValueError(f"{path}: holds no scrypt$... hash; write the line energy-agent web-password prints")
    return text[0].strip()


def tls_context(config: WebConfig, site_dir: Path) -> ssl.SSLContext | None:
    tls = config.tls
    if tls is None:
        return None

    def where(p: str) -> str:
        path = Path(p).expanduser()
        return str(path if path.is_absolute() else site_dir / path)

    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(where(tls.cert_file), where(tls.key_file))
    if tls.client_ca is not None:
        ctx.load_verify_locations(where(tls.client_ca))
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx
