"""Upload adapters: how one platform wants a record on the wire, and what its answers mean.

An adapter is one module in this package with its own tests (tests/unit/test_accounts_adapter_<name>.py) and one
line in ``_ADAPTERS``. It gets the canonical record (docs/reference/accounts-upload-v1.schema.json) and returns
the request body and headers; it reads the receiver's answer as acknowledged, retry later, or refused. It never
does I/O: the outbox owns connections, TLS, retries and state. Provincial formats are not public and differ by
province; ``generic`` is the documented JSON format a platform or a relay can take as it is.
"""

from __future__ import annotations

from typing import Any, Literal, Protocol

Verdict = Literal["ack", "retry", "refused"]


class Adapter(Protocol):
    name: str

    def encode(self, record: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
        """The request body and headers (the outbox adds authorisation)."""
        ...

    def verdict(self, status: int, body: bytes) -> Verdict:
        """What the receiver's HTTP answer means for this record."""
        ...


def adapter_names() -> list[str]:
    return sorted(_ADAPTERS)


def get_adapter(name: str) -> Adapter:
    try:
        return _ADAPTERS[name]
    except KeyError:
        raise KeyError(f"no upload adapter {name!r}; shipped: {', '.join(adapter_names())}") from None


from agent.center.accounts.adapters.generic import GenericJson  # noqa: E402  (the registry needs the modules)

_ADAPTERS: dict[str, Adapter] = {"generic": GenericJson()}
