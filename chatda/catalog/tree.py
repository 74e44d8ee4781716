"""The intent tree: parent checks, cycle detection and derived paths ("금융 > 송금 > 해외송금")."""

from __future__ import annotations

from collections.abc import Mapping

from chatda.catalog.errors import InvalidCatalog

PATH_SEPARATOR = " > "


def check_tree(parents: Mapping[int, int | None]) -> None:
    """Every parent exists and no intent is its own ancestor."""
    for child, parent in parents.items():
        if parent is not None and parent not in parents:
            raise InvalidCatalog(f"intent {child}: parent_id {parent} does not exist", id=child)
    for start in parents:
        seen = {start}
        ancestor = parents[start]
        while ancestor is not None:
            if ancestor in seen:
                raise InvalidCatalog(f"intent {start}: parent chain forms a cycle", id=start)
            seen.add(ancestor)
            ancestor = parents[ancestor]


def paths(names: Mapping[int, str], parents: Mapping[int, int | None]) -> dict[int, str]:
    out: dict[int, str] = {}

    def path(node: int) -> str:
        if node not in out:
            parent = parents.get(node)
            out[node] = (
                names[node] if parent is None else path(parent) + PATH_SEPARATOR + names[node]
            )
        return out[node]

    for node in names:
        path(node)
    return out
