"""Record decoding (poison classification) and version planning, without any engine."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from kafka.consumer.fetcher import ConsumerRecord

from chatda.articles.message import ArticleMessage
from ingest.decode import PoisonRecord, decode_article
from ingest.plan import Decoded, newest_per_post, split_stale
from tests.ingest.helpers import BASE_TIME, sample_article

GOOD = sample_article(1, "p")


def record(offset: int, message: ArticleMessage) -> Decoded:
    raw = ConsumerRecord(
        "t", 0, None, offset, 0, 0, message.key, message.to_wire(), [], None, 0, 0, -1
    )
    return Decoded(raw, message)


def version(post_id: str, seconds: int, body: str = "본문") -> ArticleMessage:
    return ArticleMessage(
        post_id=post_id,
        title="제목",
        body=body,
        published_at=BASE_TIME,
        updated_at=BASE_TIME + timedelta(seconds=seconds),
    )


def test_valid_record_decodes() -> None:
    assert decode_article(GOOD.key, GOOD.to_wire(), 2000) == GOOD


@pytest.mark.parametrize(
    "key, value, reason, fragment",
    [
        (b"p-0001", b'{"post_id": "p-0001", ', "json", "line 1"),
        (b"pz-deep", b"[" * 100_000 + b"]" * 100_000, "json", "depth limit"),
        (b"p-0001", b'{"post_id": "\\udfff"}', "json", "surrogate"),
        (b"p-0001", b'{"post_id": "p-0001", "title": "\xff\xfe"}', "encoding", "byte 32"),
        (b"x", b'{"post_id": "bad id", "op": "delete"}', "schema", "post_id"),
        (b"x", b"[1, 2]", "schema", "dictionary"),
        (b"p-0001", None, "schema", "no value"),
        (b"other", GOOD.to_wire(), "key", "post_id"),
        (
            GOOD.key,
            GOOD.to_wire().replace(b'"tags":[', b'"tags":["a\\u0000b",'),
            "schema",
            "tags.0: filter value contains a disallowed character U+0000",
        ),
    ],
)
def test_poison_records_are_classified(
    key: bytes, value: bytes | None, reason: str, fragment: str
) -> None:
    with pytest.raises(PoisonRecord) as info:
        decode_article(key, value, 2000)
    assert info.value.reason == reason
    assert fragment in info.value.detail


def test_oversize_text_is_a_size_failure() -> None:
    big = GOOD.model_copy(update={"body": "가" * 2001})
    with pytest.raises(PoisonRecord) as info:
        decode_article(big.key, json.dumps(big.model_dump(mode="json")).encode(), 2000)
    assert info.value.reason == "size"
    assert "body: must be at most 2000 characters" in info.value.detail


def test_newest_per_post_wins_ties_by_offset() -> None:
    a1, a3, b1, a3_again = (
        record(0, version("a", 1)),
        record(1, version("a", 3)),
        record(2, version("b", 1)),
        record(3, version("a", 3, "다시")),
    )
    a2 = record(4, version("a", 2))
    newest, superseded = newest_per_post([a1, a3, b1, a3_again, a2])
    assert newest == [a3_again, b1]
    assert sorted(d.record.offset for d in superseded) == [0, 1, 4]


def test_older_than_indexed_is_stale_equal_is_applied() -> None:
    older, equal, newer, unknown = (
        record(0, version("a", 5)),
        record(1, version("b", 10)),
        record(2, version("c", 11)),
        record(3, version("d", 0)),
    )
    indexed = {"a": version("a", 6).updated_epoch, "b": version("b", 10).updated_epoch}
    indexed["c"] = version("c", 10).updated_epoch
    current, stale = split_stale([older, equal, newer, unknown], indexed)
    assert current == [equal, newer, unknown]
    assert stale == [older]
