"""Connection helpers of the MQTT sink: the reconnect backoff, the TLS context, and one-sentence descriptions of
connection errors for technicians."""

from __future__ import annotations

import random
import ssl
from collections.abc import Callable
from typing import Any

from agent.config.mqtt import MqttTlsConfig


def tls_context(tls: MqttTlsConfig) -> ssl.SSLContext:
    """A client context that verifies the broker (CA file or the system's CAs), checks its host name unless told
    not to, and presents the client certificate when one is configured. Raises OSError / ssl.SSLError."""
    ctx = ClosingContext(ssl.PROTOCOL_TLS_CLIENT)
    if tls.ca_file is None:
        ctx.load_default_certs()
    else:
        ctx.load_verify_locations(cafile=tls.ca_file)
    ctx.check_hostname = tls.check_hostname
    if tls.cert_file is not None and tls.key_file is not None:
        ctx.load_cert_chain(tls.cert_file, tls.key_file)
    return ctx


def backoff_s(attempt: int, min_s: float, max_s: float, rng: Callable[[], float] = random.random) -> float:
    """Delay before reconnect attempt ``attempt`` (1, 2, ...): exponential from ``min_s`` up to ``max_s``, with
    "equal jitter" (a random point in the upper half), so that gateways cut off together do not return together."""
    base: float = min(max_s, min_s * 2.0 ** min(max(attempt - 1, 0), 30))
    return base / 2 + rng() * base / 2


class ClosingContext(ssl.SSLContext):
    """An SSLContext that remembers the last socket it wrapped, so that the sink can close it when paho's
    ``connect()`` raises during the TLS handshake (paho drops the wrapped socket without closing it)."""

    last: ssl.SSLSocket | None = None

    def wrap_socket(self, *args: Any, **kwargs: Any) -> ssl.SSLSocket:
        sock = super().wrap_socket(*args, **kwargs)
        self.last = sock
        return sock

    def close_last(self) -> None:
        if self.last is not None:
            self.last.close()
            self.last = None


def describe(exc: BaseException) -> str:
    """One sentence for a technician: what failed, in the words of the layer that knows."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS: the broker's certificate is not trusted: {exc.verify_message} (check mqtt.tls.ca_file)"
    if isinstance(exc, ssl.SSLError):
        return f"TLS: {exc.reason or exc}"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused (is the broker running and listening on this port?)"
    if isinstance(exc, TimeoutError):
        return "connection timed out"
    if isinstance(exc, OSError):
        return f"connection failed: {exc.strerror or exc}"
    return str(exc)
