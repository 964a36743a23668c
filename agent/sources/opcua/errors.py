"""The asyncua boundary: asyncua / socket exceptions become ``agent.errors``' tree here and nowhere else.

``map_error(device, endpoint, exc)`` names the device and endpoint in every message and the OPC UA status by name
(``BadNodeIdUnknown``). What asyncua (or the cryptography it calls) raised is the device's failure, whatever its
type; the same types raised in our own code are bugs and propagate.
"""

from __future__ import annotations

import os
import socket
import sysconfig
from pathlib import Path
from urllib.parse import urlsplit

import asyncua
import cryptography
from asyncua.ua.uaerrors import UaError, UaStatusCodeError

from agent.errors import ConnectionLost, DeviceException, DeviceTimeout, SecurityError, SourceError
from agent.sources.opcua.status import status_name

_SECURITY_STATUS = ("BadUser", "BadIdentity", "BadCertificate", "BadSecurity", "BadNoValidCertificates")


def map_error(device: str, endpoint: str, exc: BaseException) -> SourceError:
    """The one place asyncua / socket exceptions become our exception tree; messages start with the device.

    asyncua also raises exceptions of general types for a server's answers: an AssertionError when the server
    refuses OpenSecureChannel (typically BadSecurityChecksFailed for a client certificate it does not trust; the
    status itself is lost inside asyncua), struct.error, NotEnoughData, ValueError or KeyError on a message it
    cannot decode. Whatever was raised inside asyncua (or the cryptography it calls) is the device's failure; the
    same types raised in our own code are bugs and propagate.
    """
    if isinstance(exc, SourceError):
        return exc
    if isinstance(exc, UaStatusCodeError):
        name = status_name(exc.code)
        if name.startswith(_SECURITY_STATUS):
            return SecurityError(f"{device}: {endpoint} refused the connection: {name}")
        return DeviceException(f"{device}: {endpoint} answered {name}", exc.code, name)
    if isinstance(exc, TimeoutError):
        return DeviceTimeout(f"{device}: no answer from {endpoint} in time")
    if isinstance(exc, socket.gaierror):
        host = urlsplit(endpoint).hostname or endpoint
        return ConnectionLost(f"{device}: the host name {host!r} of {endpoint} does not resolve ({exc.strerror})")
    if isinstance(exc, ConnectionRefusedError):
        return ConnectionLost(f"{device}: {endpoint} refused the TCP connection")
    if isinstance(exc, OSError | ConnectionError | EOFError):
        return ConnectionLost(f"{device}: connection to {endpoint} failed: {exc or type(exc).__name__}")
    if isinstance(exc, UaError):
        return ConnectionLost(f"{device}: {endpoint}: {exc}")
    where = _library_frame(exc)
    if where == "open_secure_channel" and isinstance(exc, AssertionError):
        return SecurityError(
            f"{device}: {endpoint} {CHANNEL_REFUSED} (a bad status, e.g. BadSecurityChecksFailed, to OpenSecureChannel)"
        )
    if where is not None:
        detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        return ConnectionLost(f"{device}: {endpoint}: the OPC UA client failed on the server's answer ({detail})")
    raise exc  # a bug: let it propagate


CHANNEL_REFUSED = "refused the secure channel"
_LIBRARIES = tuple(str(Path(m.__file__).parent) + os.sep for m in (asyncua, cryptography) if m.__file__)
_STDLIB = sysconfig.get_paths()["stdlib"] + os.sep


def _library_frame(exc: BaseException) -> str | None:
    """The asyncua (or cryptography) function an exception was raised in, or None when it came from our code.

    The innermost frame outside the standard library decides (exceptions raised in C, like struct.error, have no
    frame of their own; asyncio's frames sit between asyncua and a TimeoutError)."""
    frames = []
    tb = exc.__traceback__
    while tb is not None:
        frames.append(tb.tb_frame.f_code)
        tb = tb.tb_next
    for code in reversed(frames):
        if code.co_filename.startswith(_STDLIB) and "site-packages" not in code.co_filename:
            continue
        return code.co_name if code.co_filename.startswith(_LIBRARIES) else None
    return None
