"""How one Modbus request's reply becomes values: the Samples of its points (each with its quality and reason), or,
for a reply whose every point decodes good, just their values (``ReplyDecoder.good_values``, the columns of
``GoodReads``). What each point needs is worked out on a request's first reply and kept."""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass

from agent.model import Quality, Role, Sample, Value, new_sample
from agent.sources.modbus.codec import NOT_A_NUMBER, Decoded, bulk_struct, swap_bytes
from agent.sources.modbus.plan import ReadRequest

# a point as decode needs it: name, its codec's decode, its offset in the reply, unit, role
_Row = tuple[str, Callable[[bytes, bytes | None, int], Decoded], int, str, Role | None]
# the same for a read unpacked at once (codec.bulk_struct): name, plain float (no scale/range), finish, unit, role
_BulkRow = tuple[str, bool, Callable[[int | float], Decoded], str, Role | None]


@dataclass(frozen=True, slots=True)
class _Decoding:
    """How to decode one request's reply, built on its first reply: one unpack for the whole read where the codec
    allows (``bulk``), else each point on its own (``rows``)."""

    request: ReadRequest
    rows: tuple[_Row, ...]
    bulk: struct.Struct | None
    bulk_rows: tuple[_BulkRow, ...]
    all_plain: bool  # bulk, and every point a plain float: the unpacked tuple is the values once all are finite


class ReplyDecoder:
    """The decoding of one device's replies; ``meta`` gives each point's unit and role."""

    def __init__(self, device: str, meta: dict[str, tuple[str, Role | None]], requests: int) -> None:
        self.device = device
        self._meta = meta
        self._requests = requests  # in the read plan
        # per request (by identity; split requests get theirs on first use): what decoding each point needs
        self._rows: dict[int, _Decoding] = {}

    def _entry(self, request: ReadRequest) -> _Decoding:
        entry = self._rows.get(id(request))
        return entry if entry is not None and entry.request is request else self._decoding(request)

    def _decoding(self, request: ReadRequest) -> _Decoding:
        if len(self._rows) > 4 * self._requests + 64:  # split requests come and go: keep it small
            self._rows.clear()
        meta = self._meta
        rows = tuple((p.name, p.codec.decode, p.offset, *meta[p.name]) for p in request.points)
        bulk = None if request.is_bits else bulk_struct([(p.codec, p.offset) for p in request.points])
        bulk_rows = (
            tuple((p.name, p.codec.plain_float, p.codec.finish, *meta[p.name]) for p in request.points)
            if bulk is not None
            else ()
        )
        entry = _Decoding(request, rows, bulk, bulk_rows, bool(bulk_rows) and all(r[1] for r in bulk_rows))
        self._rows[id(request)] = entry
        return entry

    def good_values(self, request: ReadRequest, data: bytes) -> tuple[Value, ...] | None:
        """The values of a reply in the request's point order when every point decodes good, else None (then
        ``decode`` makes its Samples, with the quality and reason of each)."""
        entry = self._entry(request)
        bulk = entry.bulk
        if bulk is not None and len(data) >= bulk.size:
            raws = bulk.unpack_from(data)
            if entry.all_plain:
                # NaN or an infinity makes the sum not finite (so may float64s near the limit: then point by point)
                total = sum(raws)
                if total - total != 0.0:
                    return None
                return tuple(r + 0.0 for r in raws) if 0.0 in raws else raws  # -0.0 reads 0.0, as in _decode
            values: list[Value] = []
            for (_, plain, finish, _, _), raw in zip(entry.bulk_rows, raws, strict=True):
                if plain:
                    value = raw + 0.0
                    if value - value != 0.0:
                        return None
                    values.append(value)
                    continue
                quality, decoded, _ = finish(raw)
                if quality is not Quality.GOOD:
                    return None
                values.append(decoded)
            return tuple(values)
        if bulk is not None:  # a short reply: _decode says which points it misses
            return None
        swapped = swap_bytes(data) if request.needs_swapped else None
        out: list[Value] = []
        for _, decode, offset, _, _ in entry.rows:
            quality, decoded, _ = decode(data, swapped, offset)
            if quality is not Quality.GOOD:
                return None
            out.append(decoded)
        return tuple(out)

    def decode(self, samples: dict[str, Sample], request: ReadRequest, data: bytes, ts: float) -> None:
        name = self.device
        entry = self._entry(request)
        bulk = entry.bulk
        if bulk is not None and len(data) >= bulk.size:
            good = Quality.GOOD
            for (point, plain, finish, unit, role), raw in zip(entry.bulk_rows, bulk.unpack_from(data), strict=True):
                if plain:  # what finish does for a float without scale or range
                    value = raw + 0.0
                    if value - value == 0.0:  # finite
                        samples[point] = new_sample(name, point, value, unit, good, ts, "", role)
                        continue
                    quality, value, reason = Quality.BAD, None, NOT_A_NUMBER
                else:
                    quality, value, reason = finish(raw)
                samples[point] = new_sample(name, point, value, unit, quality, ts, reason, role)
        else:
            swapped = swap_bytes(data) if request.needs_swapped else None
            for point, decode, offset, unit, role in entry.rows:
                quality, value, reason = decode(data, swapped, offset)
                samples[point] = new_sample(name, point, value, unit, quality, ts, reason, role)
