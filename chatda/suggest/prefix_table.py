"""Sorted keys with bisect: every key that starts with a typed prefix is one contiguous range.

Picking the best few entries of a range needs no per-prefix precomputation: for a small range
the range is scanned; for a large one (a single typed consonant can match thousands of keys) the
rows are walked in descending score order and the first ones inside the range are taken, which
takes about `count * len(table) / len(range)` steps.
"""

from bisect import bisect_left
from collections.abc import Container, Iterable, Sequence
from typing import NamedTuple

_AFTER_ALL = "\U0010ffff"
_SCAN_LIMIT = 256


class Row(NamedTuple):
    key: str
    entry: int
    offset: int


class PrefixTable:
    """Immutable once built; `offset` says where inside the entry the key begins (for infixes).

    `scores[entry]` ranks entries; the table keeps them to answer `best` quickly.
    """

    def __init__(self, rows: Iterable[Row], scores: Sequence[float]) -> None:
        ordered = sorted(rows)
        self.keys = [row.key for row in ordered]
        self.entries = [row.entry for row in ordered]
        self.offsets = [row.offset for row in ordered]
        self._scores = scores
        self._by_score = sorted(range(len(ordered)), key=lambda at: -scores[self.entries[at]])

    def __len__(self) -> int:
        return len(self.keys)

    def span(self, prefix: str) -> tuple[int, int]:
        """Positions `[start, end)` of the keys that begin with `prefix`."""
        start = bisect_left(self.keys, prefix)
        return start, bisect_left(self.keys, prefix + _AFTER_ALL, start)

    def best(self, prefix: str, count: int, exclude: Container[int] = ()) -> list[Row]:
        """The `count` best-scoring rows for `prefix`, one per entry, none from `exclude`."""
        return self.best_in(*self.span(prefix), count, exclude)

    def best_in(self, start: int, end: int, count: int, exclude: Container[int] = ()) -> list[Row]:
        """`best` for the rows at positions `[start, end)`."""
        if end - start <= _SCAN_LIMIT:
            positions: Iterable[int] = sorted(
                range(start, end), key=lambda at: -self._scores[self.entries[at]]
            )
        else:
            positions = (at for at in self._by_score if start <= at < end)
        rows: list[Row] = []
        seen: set[int] = set()
        for at in positions:
            entry = self.entries[at]
            if entry in exclude or entry in seen:
                continue
            seen.add(entry)
            rows.append(Row(self.keys[at], entry, self.offsets[at]))
            if len(rows) >= count:
                break
        return rows
