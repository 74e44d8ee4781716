"""The intent tree: parent checks, cycle detection, a depth bound and derived paths
("금융 > 송금 > 해외송금").

Walked with loops and memoised, never recursion: a chain of a thousand intents whose ids ran
against their parents' exhausted Python's stack in ``paths``, so the import answered 500 after
committing, and every snapshot build failed after it (the API never loaded its catalog again).
The depth bound keeps every path, and every walk, short.
"""

from __future__ import annotations

from collections.abc import Mapping

from chatda.catalog.errors import InvalidCatalog

PATH_SEPARATOR = " > "
MAX_DEPTH = 32
"""Levels from a root to its deepest intent; real catalogs use two to four."""


def _chain(node: int, parents: Mapping[int, int | None], known: Mapping[int, object]) -> list[int]:
    """``node`` and its ancestors, nearest first, up to (not including) the first one in
    ``known``, or through the root."""
    chain = [node]
    parent = parents.get(node)
    while parent is not None and parent not in known:
        if len(chain) > len(parents):
            raise InvalidCatalog(f"intent {node}: parent chain forms a cycle", id=node)
        chain.append(parent)
        parent = parents.get(parent)
    return chain


def check_tree(parents: Mapping[int, int | None]) -> None:
    """Every parent exists, no intent is its own ancestor, and no branch is deeper than
    :data:`MAX_DEPTH`."""
    for child, parent in parents.items():
        if parent is not None and parent not in parents:
            raise InvalidCatalog(f"intent {child}: parent_id {parent} does not exist", id=child)
    depth: dict[int, int] = {}
    for start in parents:
        if start in depth:
            continue
        chain = [start]
        on_chain = {start}
        parent = parents[start]
        while parent is not None and parent not in depth:
            if parent in on_chain:
                raise InvalidCatalog(f"intent {start}: parent chain forms a cycle", id=start)
            chain.append(parent)
            on_chain.add(parent)
            parent = parents[parent]
        below = 0 if parent is None else depth[parent]
        for node in reversed(chain):
            below += 1
            depth[node] = below
        if depth[start] > MAX_DEPTH:
            raise InvalidCatalog(
                f"intent {start}: {depth[start]} levels deep, more than {MAX_DEPTH}", id=start
            )


def paths(names: Mapping[int, str], parents: Mapping[int, int | None]) -> dict[int, str]:
    """Each intent's names from its root down, joined by :data:`PATH_SEPARATOR`."""
    out: dict[int, str] = {}
    for node in names:
        if node in out:
            continue
        chain = _chain(node, parents, out)
        top = parents.get(chain[-1])
        prefix = out[top] + PATH_SEPARATOR if top is not None else ""
        for link in reversed(chain):
            out[link] = prefix + names[link]
            prefix = out[link] + PATH_SEPARATOR
    return out
