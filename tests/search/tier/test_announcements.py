"""Reading an announcement: only ids an article can have get through, and one warning names
the rest, so a stray producer on ``articles-indexed`` cannot hand the tier an id to choke on."""

from __future__ import annotations

import logging

import pytest

from chatda.search.tier.announcements import decode, encode


def test_a_worker_announcement_reads_back() -> None:
    assert decode(encode(["b", "a:1", "a:1"])) == ["a:1", "b"]


def test_ids_no_article_can_have_are_dropped_with_one_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    value = b'{"post_ids": ["", "ok-1", 7, "a b", "x\\u0000", "p\\n", "' + b"l" * 129 + b'"]}'
    with caplog.at_level(logging.WARNING):
        assert decode(value) == ["ok-1"]
    (record,) = caplog.records
    for named in ("''", "7", "'a b'", "'x\\x00'", "'p\\n'", "'lll"):
        assert named in record.getMessage()


@pytest.mark.parametrize(
    "value", [b"", b"[]", b'{"post_ids": "a"}', b'{"ids": ["a"]}', b"{", b"null"]
)
def test_a_malformed_announcement_is_read_as_none(
    value: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        assert decode(value) == []
    assert len(caplog.records) == 1
