"""Typo-tolerant prefix search: keys whose beginning is within a few keystroke edits of the input.

The sorted key list doubles as an implicit trie (the keys sharing a prefix are one bisect range),
so the search walks it depth-first carrying one row of the Damerau (optimal string alignment)
distance table per level, and abandons a branch as soon as no cell of its row is within budget.
Only cells within `max_edits` of the diagonal can be within budget, so only those are computed.

Two bounds keep the latency flat: the first keystroke is taken as typed (people rarely miss the
first key, and it cuts the walk to one subtree), and the walk stops after `max_nodes` trie nodes,
returning what it found so far.
"""

from bisect import bisect_left
from collections.abc import Sequence
from typing import NamedTuple

_AFTER_ALL = "\U0010ffff"
MAX_NODES = 3000


class FuzzyRange(NamedTuple):
    """Keys `[start, end)` all begin with a string `edits` away from the input, `depth` long."""

    start: int
    end: int
    edits: int
    depth: int


class _Node(NamedTuple):
    start: int
    end: int
    depth: int
    row: list[int]
    before: list[int] | None
    char: str
    bound: int


def _next_row(node: _Node, query: str, char: str, max_edits: int) -> list[int]:
    """The distance row one level below `node`, exact up to `max_edits`, capped above it."""
    depth = node.depth + 1
    cap = max_edits + 1
    row, before, last = node.row, node.before, node.char
    new_row = [cap] * (len(query) + 1)
    if depth < cap:
        new_row[0] = depth
    for j in range(max(1, depth - max_edits), min(len(query), depth + max_edits) + 1):
        typed = query[j - 1]
        best = min(row[j - 1] + (typed != char), row[j] + 1, new_row[j - 1] + 1)
        if before is not None and j > 1 and typed == last and query[j - 2] == char:
            best = min(best, before[j - 2] + 1)
        new_row[j] = min(best, cap)
    return new_row


def _span(keys: Sequence[str], prefix: str, low: int, high: int) -> tuple[int, int]:
    start = bisect_left(keys, prefix, low, high)
    return start, bisect_left(keys, prefix + _AFTER_ALL, start, high)


def fuzzy_prefix_ranges(
    keys: Sequence[str], query: str, max_edits: int, max_nodes: int = MAX_NODES
) -> list[FuzzyRange]:
    """Ranges of sorted `keys` with a prefix at most `max_edits` edits from `query`.

    A range found at some depth already holds every longer key below it, so the walk only goes
    deeper where it could still find a smaller distance.
    """
    if not query:
        return []
    found: list[FuzzyRange] = []
    max_depth = len(query) + max_edits
    start, end = _span(keys, query[0], 0, len(keys))
    stack = [_Node(start, end, 0, list(range(len(query) + 1)), None, "", max_edits + 1)]
    visited = 0
    while stack and visited < max_nodes:
        node = stack.pop()
        position = node.start
        while position < node.end and len(keys[position]) == node.depth:
            position += 1
        while position < node.end:
            key = keys[position]
            char = key[node.depth]
            end = bisect_left(keys, key[: node.depth + 1] + _AFTER_ALL, position, node.end)
            visited += 1
            row = _next_row(node, query, char, max_edits)
            bound = node.bound
            if row[-1] < bound:
                found.append(FuzzyRange(position, end, row[-1], node.depth + 1))
                bound = row[-1]
            if node.depth + 1 < max_depth and min(row) < bound:
                stack.append(_Node(position, end, node.depth + 1, row, node.row, char, bound))
            position = end
    return found
