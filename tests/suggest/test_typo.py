from hypothesis import given, settings
from hypothesis import strategies as st

from chatda.suggest.typo import fuzzy_prefix_ranges


def osa(a: str, b: str) -> int:
    rows = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i in range(len(a) + 1):
        rows[i][0] = i
    for j in range(len(b) + 1):
        rows[0][j] = j
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            rows[i][j] = min(
                rows[i - 1][j] + 1, rows[i][j - 1] + 1, rows[i - 1][j - 1] + (a[i - 1] != b[j - 1])
            )
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                rows[i][j] = min(rows[i][j], rows[i - 2][j - 2] + 1)
    return rows[-1][-1]


def prefix_distance(query: str, key: str) -> int:
    return min(osa(query, key[:length]) for length in range(len(key) + 1))


def best_by_key(keys: list[str], query: str, max_edits: int) -> dict[int, int]:
    best: dict[int, int] = {}
    for found in fuzzy_prefix_ranges(keys, query, max_edits):
        for at in range(found.start, found.end):
            best[at] = min(best.get(at, found.edits), found.edits)
            assert len(keys[at]) >= found.depth
    return best


def test_examples() -> None:
    keys = sorted(["ㅅㅗㅇㄱㅡㅁ", "ㅅㅗㅇㄱㅡㅁㄴㅐㅇㅕㄱ", "ㅎㅗㅏㄴㅈㅓㄴ", "ㅅㅏㄱㅡㅁ"])
    found = best_by_key(keys, "ㅅㅗㅇㄱㅡㅇ", 1)
    assert {keys[at]: edits for at, edits in found.items()} == {
        "ㅅㅗㅇㄱㅡㅁ": 1,
        "ㅅㅗㅇㄱㅡㅁㄴㅐㅇㅕㄱ": 1,
    }
    assert best_by_key(keys, "ㅎㅗㅏㄴㅈㅕㄴ", 1) == {keys.index("ㅎㅗㅏㄴㅈㅓㄴ"): 1}
    assert best_by_key(keys, "ㅅㅗㄱㅇㅡㅁ", 1) == {  # swapped keys are one edit
        keys.index("ㅅㅗㅇㄱㅡㅁ"): 1,
        keys.index("ㅅㅗㅇㄱㅡㅁㄴㅐㅇㅕㄱ"): 1,
    }


def test_first_key_is_taken_as_typed() -> None:
    assert fuzzy_prefix_ranges(["ㅅㅗㅇㄱㅡㅁ"], "ㅆㅗㅇㄱㅡㅁ", 1) == []


def test_empty_inputs() -> None:
    assert fuzzy_prefix_ranges([], "ㅅㅗㅇㄱ", 1) == []
    assert fuzzy_prefix_ranges(["ㅅㅗㅇ"], "", 1) == []


def test_node_budget_bounds_the_walk() -> None:
    keys = sorted({f"a{x}{y}{z}" for x in "abcd" for y in "abcd" for z in "abcd"})
    assert len(fuzzy_prefix_ranges(keys, "aaaa", 2, max_nodes=3)) <= 3 * 4


@settings(max_examples=300, deadline=None)
@given(
    keys=st.lists(st.text("abc", min_size=1, max_size=7), max_size=25),
    query=st.text("abc", min_size=1, max_size=6),
    max_edits=st.integers(min_value=1, max_value=2),
)
def test_agrees_with_brute_force(keys: list[str], query: str, max_edits: int) -> None:
    keys = sorted(keys)
    expected = {
        at: distance
        for at, key in enumerate(keys)
        if key[0] == query[0] and (distance := prefix_distance(query, key)) <= max_edits
    }
    assert best_by_key(keys, query, max_edits) == expected
