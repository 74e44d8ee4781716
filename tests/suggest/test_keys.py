from chatda.suggest.highlight import highlight
from chatda.suggest.keys import entry_keys, query_keys
from chatda.suggest.prefix_table import PrefixTable, Row


def test_entry_keys_skip_spaces_and_remember_characters() -> None:
    keys = entry_keys("KB 송금")
    assert keys.keys == "kbㅅㅗㅇㄱㅡㅁ"
    assert keys.key_chars == (0, 1, 3, 3, 3, 4, 4, 4)
    assert keys.chosung == "kbㅅㄱ"
    assert keys.chosung_chars == (0, 1, 3, 4)
    assert keys.word_starts == ((2, 2),)


def test_query_keys() -> None:
    assert query_keys("송금 ㄴ") == "ㅅㅗㅇㄱㅡㅁㄴ"
    assert query_keys("ㄳ KB") == "ㄱㅅkb"
    assert query_keys("  ") == ""


def test_highlight_splits_at_spaces() -> None:
    assert highlight("송금 내역", 0, 4) == [(0, 2), (3, 4)]
    assert highlight("송금 내역", 3, 5) == [(3, 5)]
    assert highlight("송금", 0, 0) == []


def test_best_on_a_large_range_walks_by_score() -> None:
    scores = [float(i % 97) for i in range(1000)]
    table = PrefixTable((Row(f"a{i:04d}", i, 0) for i in range(1000)), scores)
    rows = table.best("a", 5, exclude={96})
    assert [row.entry for row in rows] == [193, 290, 387, 484, 581]
    small = table.best("a000", 3)
    assert [row.entry for row in small] == [9, 8, 7]
    assert table.best("b", 5) == []
