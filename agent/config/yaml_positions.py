"""Where each key, value and sequence item of a YAML document was written, kept compactly.

``Positions`` holds one document's positions in a few flat arrays (filled by ``agent.config.yaml_events``);
``PositionTable`` is the read-only ``path -> (line, col)`` view of them that ``YamlDocument`` offers as its
``keys`` and ``values``. A position is packed into one unsigned 64-bit number (``pack``/``unpack``).
"""

from __future__ import annotations

from array import array
from collections.abc import Iterator, Mapping
from typing import Any

PathKey = tuple[str | int, ...]
Position = tuple[int, int]  # 1-based line, column
LINE = 1 << 32  # a position is packed as line * LINE + col (both 0-based)


def pack(mark: Any) -> int:
    """A parser mark (0-based ``line`` and ``column``) as one number."""
    return int(mark.line * LINE + mark.column)


class Positions:
    """Where everything in one document was written, in a few flat arrays: a profile of 100,000 points would
    otherwise leave 100,000 small long-lived objects scattered among its freed raw data, which keeps that memory
    from being reused.

    Mappings and sequences are numbered (``-1``: none). Container ``c`` has the entries ``first[c]`` to
    ``first[c] + count[c] - 1``; entry ``e`` was written at ``key_at[e]`` (its key; a sequence item's own position)
    and ``value_at[e]``, and ``kid[e]`` is the container written there or -1. A mapping's own keys, in order, are
    ``names[name_of[c]]``; for a sequence ``name_of[c]`` is -1. Positions are packed (see ``pack``)."""

    __slots__ = ("count", "first", "key_at", "kid", "name_of", "names", "root", "value_at")

    def __init__(self) -> None:
        self.first: array[int] = array("L")
        self.count: array[int] = array("L")
        self.name_of: array[int] = array("l")
        self.names: list[tuple[Any, ...]] = []
        self.key_at: array[int] = array("Q")
        self.value_at: array[int] = array("Q")
        self.kid: array[int] = array("l")
        self.root = -1

    def entry(self, container: int, key: Any) -> int:
        """The entry of ``key`` (a mapping key, or a sequence index) in ``container``, or -1."""
        if container < 0:
            return -1
        n = self.name_of[container]
        if n < 0:
            ok = type(key) is int and 0 <= key < self.count[container]
            return self.first[container] + key if ok else -1
        try:
            return self.first[container] + self.names[n].index(key)
        except ValueError:
            return -1

    def keys_of(self, container: int) -> Iterator[tuple[Any, int]]:
        """(key or index, entry) of each entry of ``container``."""
        first, n = self.first[container], self.name_of[container]
        keys: Any = self.names[n] if n >= 0 else range(self.count[container])
        for i, key in enumerate(keys):
            yield key, first + i


def unpack(packed: int) -> Position:
    """``pack``'s number as a 1-based (line, column)."""
    return (packed >> 32) + 1, (packed & (LINE - 1)) + 1


class PositionTable(Mapping[PathKey, Position]):
    """Read-only ``path -> position`` view of a document's positions: of keys (``keys=True``) or of values."""

    def __init__(self, positions: Positions, keys: bool) -> None:
        self._positions = positions
        self._keys = keys

    def __getitem__(self, path: PathKey) -> Position:
        if not path:
            if self._keys:
                raise KeyError(path)
            return (1, 1)
        at = self._positions
        container = at.root
        for part in path[:-1]:
            e = at.entry(container, part)
            if e < 0:
                raise KeyError(path)
            container = at.kid[e]
        e = at.entry(container, path[-1])
        if e < 0:
            raise KeyError(path)
        return unpack(at.key_at[e] if self._keys and at.name_of[container] >= 0 else at.value_at[e])

    def __iter__(self) -> Iterator[PathKey]:
        at = self._positions
        if not self._keys:
            yield ()
        stack: list[tuple[PathKey, int]] = [((), at.root)] if at.root >= 0 else []
        while stack:
            prefix, container = stack.pop()
            if self._keys and at.name_of[container] < 0:  # sequence items have no key, but may hold keys
                stack += [((*prefix, key), at.kid[e]) for key, e in at.keys_of(container) if at.kid[e] >= 0]
                continue
            for key, e in at.keys_of(container):
                yield (*prefix, key)
                if at.kid[e] >= 0:
                    stack.append(((*prefix, key), at.kid[e]))

    def __len__(self) -> int:
        return sum(1 for _ in self)
