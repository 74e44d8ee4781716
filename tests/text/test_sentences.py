from itertools import pairwise

from hypothesis import given, settings
from hypothesis import strategies as st

from chatda.text.sentences import sentence_spans, split_sentences


def test_korean_sentences_without_punctuation() -> None:
    text = "송금 한도는 하루 500만원입니다. 해외 송금은 별도예요 수수료는 없습니다"
    sentences = split_sentences(text)
    assert sentences[0] == "송금 한도는 하루 500만원입니다. "
    assert len(sentences) == 3
    assert "".join(sentences) == text


def test_line_breaks_end_sentences() -> None:
    assert split_sentences("송금 안내\n\n첫 문장입니다.") == ["송금 안내\n\n", "첫 문장입니다."]


def test_non_korean_falls_back_to_punctuation() -> None:
    assert split_sentences("Hello world. Version 3.11 is out! Is it?\nNext line") == [
        "Hello world. ",
        "Version 3.11 is out! ",
        "Is it?\n",
        "Next line",
    ]
    assert split_sentences("日本語です。次の文。") == ["日本語です。", "次の文。"]


def test_spans_survive_characters_outside_the_bmp() -> None:
    text = "😀😀 송금했어요. 🎉 다음 문장입니다! 𝕏 끝"
    spans = sentence_spans(text)
    assert "".join(text[start:end] for start, end in spans) == text
    assert text[spans[1][0] :].startswith("🎉")


def test_empty_and_odd_input() -> None:
    assert sentence_spans("") == []
    assert split_sentences("   ") == ["   "]
    for text in ["\ud800 송금", "\x00", "ㅋㅋㅋ", "a" * 5000]:
        assert "".join(split_sentences(text)) == text


korean_prose = st.lists(
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
            "?",
            "\n",
            " ",
            "😀",
            "Hello",
            "3.11",
            "。",
            "\ud800",
        ]
    ),
    max_size=30,
).map(" ".join)


@settings(deadline=None)
@given(st.one_of(korean_prose, st.text(max_size=80)))
def test_spans_tile_the_text(text: str) -> None:
    spans = sentence_spans(text)
    assert "".join(text[start:end] for start, end in spans) == text
    assert all(start < end for start, end in spans)
    assert all(a[1] == b[0] for a, b in pairwise(spans))
