from collections.abc import Callable
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chatda.text.chunker import Chunk, chunk


def words(text: str) -> int:
    return len(text.split())


def chars(text: str) -> int:
    return len(text)


BODY = (
    "송금 한도는 하루 500만원입니다. 해외 송금은 별도 한도가 적용됩니다. "
    "수수료는 건당 1000원입니다.\n\n환전은 앱에서 신청할 수 있습니다. "
    "환전 우대율은 최대 90%입니다. 공항에서 수령할 수 있습니다."
)


def test_chunks_follow_sentences_and_carry_the_title() -> None:
    chunks = chunk("송금 안내", BODY, words, max_tokens=12)
    assert [c.n for c in chunks] == list(range(len(chunks)))
    assert chunks[0].text == "송금 한도는 하루 500만원입니다. 해외 송금은 별도 한도가 적용됩니다. "
    for c in chunks:
        assert c.embed_text == f"송금 안내\n{c.text}"
        assert c.text == BODY[c.start : c.end]
        assert words(c.embed_text) <= 12


def test_neighbours_overlap_by_a_sentence() -> None:
    chunks = chunk("송금 안내", BODY, words, max_tokens=12)
    assert chunks[1].text.startswith("해외 송금은 별도 한도가 적용됩니다.")
    assert chunks[1].start < chunks[0].end


def test_no_overlap() -> None:
    chunks = chunk("송금 안내", BODY, words, max_tokens=12, overlap_sentences=0)
    assert all(a.end == b.start for a, b in pairwise(chunks))


def test_whole_body_fits_in_one_chunk() -> None:
    assert chunk("송금 안내", BODY, words) == [Chunk(0, BODY, f"송금 안내\n{BODY}", 0, len(BODY))]


def test_empty_body_gives_a_title_only_chunk() -> None:
    assert chunk("자주 묻는 질문", "", words) == [Chunk(0, "", "자주 묻는 질문", 0, 0)]
    assert chunk("자주 묻는 질문", "  \n ", words)[0].embed_text == "자주 묻는 질문"


def test_overlong_sentence_is_split_at_spaces() -> None:
    body = " ".join(["송금"] * 50)
    chunks = chunk("제목", body, words, max_tokens=10)
    assert all(words(c.embed_text) <= 10 for c in chunks)
    assert all(c.text.split() == ["송금"] * len(c.text.split()) for c in chunks)
    assert "".join(c.text for c in chunks) == body


def test_overlong_word_is_split_into_characters() -> None:
    body = "가" * 50
    chunks = chunk("제목", body, chars, max_tokens=10)
    assert all(chars(c.embed_text) <= 10 for c in chunks)
    assert "".join(c.text for c in chunks) == body


def test_long_title_is_cut_to_half_the_budget() -> None:
    chunks = chunk("아주 " * 20, "본문입니다.", words, max_tokens=8)
    assert words(chunks[0].embed_text) <= 8
    assert chunks[0].text == "본문입니다."


def test_bad_arguments() -> None:
    with pytest.raises(ValueError):
        chunk("제목", "본문", words, max_tokens=0)
    with pytest.raises(ValueError):
        chunk("제목", "본문", words, overlap_sentences=-1)
    with pytest.raises(ValueError):
        chunk("제목", "본문", chars, max_tokens=1)


def test_odd_input_never_raises() -> None:
    for body in ["\ud800 송금", "\x00\x07", "😀" * 300, "テスト。日本語。English. 한국어"]:
        chunks = chunk("제목", body, chars, max_tokens=40)
        assert all(chars(c.embed_text) <= 40 for c in chunks)


prose = st.lists(
    st.sampled_from(
        [
            "송금",
            "내역을",
            "확인했어요",
            "환전",
            "수수료는",
            "없습니다",
            ".",
            "!",
            "\n",
            "😀",
            "Hello",
            "world.",
            "가" * 30,
            "  ",
            "日本語。",
        ]
    ),
    max_size=40,
).map(" ".join)


@settings(deadline=None, max_examples=60)
@given(
    title=st.sampled_from(["", "송금 안내", "환전 수수료 안내 " * 3]),
    body=st.one_of(prose, st.text(max_size=200)),
    count=st.sampled_from([words, chars]),
    max_tokens=st.integers(min_value=8, max_value=80),
    overlap=st.integers(min_value=0, max_value=2),
)
def test_chunks_cover_the_body_within_budget(
    title: str, body: str, count: Callable[[str], int], max_tokens: int, overlap: int
) -> None:
    chunks = chunk(title, body, count, max_tokens=max_tokens, overlap_sentences=overlap)
    assert chunks
    covered = [False] * len(body)
    for n, c in enumerate(chunks):
        assert c.n == n
        assert c.text == body[c.start : c.end]
        assert count(c.embed_text) <= max_tokens
        for at in range(c.start, c.end):
            covered[at] = True
    assert all(covered)
    assert [c.start for c in chunks] == sorted(c.start for c in chunks)
