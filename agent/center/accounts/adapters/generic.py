"""``generic``: the canonical record as JSON (docs/reference/accounts-upload-v1.schema.json), one record per POST.

Request: ``POST <url>``, ``Content-Type: application/json``, ``Idempotency-Key: <record id>`` (a receiver that
keeps the IDs it accepted takes a resend after a crash as the same record), body = the record, keys sorted.
Answer: any 2xx acknowledges; 408, 425, 429 and 5xx mean try again later (backoff); any other 4xx refuses the
record (kept, listed by ``energy-center outbox list --state refused``, resent only by ``outbox retry``).
"""

from __future__ import annotations

import json
from typing import Any

from agent.center.accounts.adapters import Verdict

RETRY_STATUSES = frozenset({408, 425, 429})


class GenericJson:
    name = "generic"

    def encode(self, record: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
        body = json.dumps(record, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()
        return body, {"Content-Type": "application/json; charset=utf-8", "Idempotency-Key": str(record["id"])}

    def verdict(self, status: int, body: bytes) -> Verdict:
        if 200 <= status < 300:
            return "ack"
        if status in RETRY_STATUSES or status >= 500:
            return "retry"
        return "refused"
