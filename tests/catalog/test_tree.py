"""The intent tree's rules and paths, on chains deep enough to break a recursive walk."""

from __future__ import annotations

import pytest

from chatda.catalog.errors import InvalidCatalog
from chatda.catalog.tree import MAX_DEPTH, PATH_SEPARATOR, check_tree, paths


def chain(levels: int) -> dict[int, int | None]:
    """Root ``levels``, each child's id one below its parent's: a walk from the lowest id
    goes all the way up before it finds a known path."""
    return {n: (n + 1 if n < levels else None) for n in range(1, levels + 1)}


def test_paths_of_a_chain_deeper_than_pythons_stack() -> None:
    parents = chain(5000)  # a recursive walk raised RecursionError from about 1,000
    found = paths({n: f"n{n}" for n in parents}, parents)
    assert found[5000] == "n5000"
    assert found[1].count(PATH_SEPARATOR) == 4999 and found[1].endswith("n2 > n1")


def test_a_chain_at_the_depth_bound_passes_and_one_level_more_is_refused() -> None:
    check_tree(chain(MAX_DEPTH))
    with pytest.raises(InvalidCatalog, match=f"intent 1: {MAX_DEPTH + 1} levels deep"):
        check_tree(chain(MAX_DEPTH + 1))
    with pytest.raises(InvalidCatalog, match="levels deep"):
        check_tree(chain(5000))


def test_cycles_and_missing_parents_are_named() -> None:
    with pytest.raises(InvalidCatalog, match="cycle"):
        check_tree({1: 2, 2: 3, 3: 2, 4: None})
    with pytest.raises(InvalidCatalog, match="intent 2: parent_id 9 does not exist"):
        check_tree({1: None, 2: 9})
    with pytest.raises(InvalidCatalog, match="cycle"):
        paths({1: "a", 2: "b"}, {1: 2, 2: 1})


def test_paths_share_their_ancestors() -> None:
    parents = {1: None, 2: 1, 3: 2, 4: 1, 5: None}
    names = {1: "금융", 2: "송금", 3: "해외송금", 4: "카드", 5: "설정"}
    assert paths(names, parents) == {
        1: "금융",
        2: "금융 > 송금",
        3: "금융 > 송금 > 해외송금",
        4: "금융 > 카드",
        5: "설정",
    }
