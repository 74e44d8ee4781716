"""The article message contract: what is accepted, what is refused, and the committed schema."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from chatda.articles.message import ArticleMessage
from chatda.articles.schema import render_schema, schema_path
from chatda.demo import articles_path
from chatda.input_errors import error_summary
from chatda.storage.articles_schema import article_schema
from chatda.storage.filters import check_value
from cli import ingest_commands

DELETE = {"post_id": "a-1", "op": "delete", "updated_at": "2026-06-01T09:00:00+09:00"}
UPSERT = {
    "post_id": "a-1",
    "title": "파킹통장 고르는 법",
    "body": "파킹통장은 수시입출금 통장입니다.",
    "published_at": "2026-06-01T09:00:00+09:00",
    "updated_at": "2026-06-01T09:00:00+09:00",
}


def summary(data: dict[str, Any], **context: Any) -> str:
    with pytest.raises(ValidationError) as info:
        ArticleMessage.model_validate(data, context=context or None)
    return error_summary(info.value)


def test_every_demo_article_is_a_valid_message() -> None:
    lines = articles_path().read_text(encoding="utf-8").splitlines()
    messages = [ArticleMessage.model_validate_json(line) for line in lines]
    assert len(messages) == 75
    assert all(m.op == "upsert" and m.language == "ko" for m in messages)


def test_delete_needs_only_id_version_and_op() -> None:
    message = ArticleMessage.model_validate(DELETE)
    assert message.key == b"a-1"
    assert message.updated_epoch == int(datetime(2026, 6, 1, tzinfo=UTC).timestamp())
    assert json.loads(message.to_wire())["op"] == "delete"


def test_wire_round_trip() -> None:
    message = ArticleMessage.model_validate(UPSERT)
    assert ArticleMessage.model_validate_json(message.to_wire()) == message


@pytest.mark.parametrize(
    "change, fragment",
    [
        ({"post_id": "a b"}, "post_id"),
        ({"post_id": "x" * 129}, "post_id"),
        ({"post_id": ""}, "post_id"),
        ({"title": "가" * 501}, "title"),
        ({"tags": [f"t{i}" for i in range(17)]}, "tags"),
        ({"tags": ["t" * 65]}, "tags.0"),
        ({"tags": ["이자" * 11]}, "tags.0: must be at most 64 UTF-8 bytes"),
        ({"category": "저축" * 22}, "category"),
        ({"updated_at": "2026-06-01T09:00:00"}, "updated_at"),
        ({"published_at": "2026-06-01"}, "published_at"),
        ({"updated_at": 0.5}, "updated_at: must be an RFC 3339 date-time"),
        ({"published_at": "1780000000"}, "published_at: must be an RFC 3339 date-time"),
        ({"op": "patch"}, "op"),
        ({"unknown": 1}, "unknown"),
        ({"title": None}, "an upsert needs title"),
        ({"title": "   "}, "title: must have a visible character"),  # was indexed as ''
        ({"title": "\u202e\u202d"}, "title: must have a visible character"),
    ],
)
def test_invalid_upserts_name_the_field(change: dict[str, Any], fragment: str) -> None:
    assert fragment in summary({**UPSERT, **change})


@pytest.mark.parametrize(
    "change, fragment",
    [
        ({"category": "a\x00b"}, "category: filter value contains a disallowed character U+0000"),
        ({"tags": ["ok", "x\x00"]}, "tags.1: filter value contains a disallowed character"),
        ({"tags": ["\ue000"]}, "tags.0: filter value contains a disallowed character U+E000"),
        ({"series": "\u2028"}, "series: filter value contains a disallowed character U+2028"),
        ({"series": "탭\t구분"}, "series"),
        ({"category": "여행\u00a0팁"}, "category"),
        ({"tags": ["\U000e0041"]}, "tags.0"),
    ],
)
def test_a_facet_value_no_search_could_filter_on_is_refused(
    change: dict[str, Any], fragment: str
) -> None:
    """Category, series and tags are filtered on, and a filter value passes ``check_value``:
    a value it refuses was accepted and indexed, and then could never be asked for."""
    message = summary({**UPSERT, **change})
    assert fragment in message and "a search could never filter on it" in message


@pytest.mark.parametrize(
    "change",
    [
        {"category": ""},
        {"series": ""},
        {"category": '" or 1==1 or category == "'},
        {"series": "back\\slash 시리즈"},
        {"tags": ["해외송금", "C++", "🏦"]},
    ],
)
def test_every_accepted_facet_value_is_a_valid_filter_value(change: dict[str, Any]) -> None:
    message = ArticleMessage.model_validate({**UPSERT, **change})
    for value in [message.category, message.series, *message.tags]:
        if value:
            assert check_value(value) == value


def test_body_limit_comes_from_settings_or_context() -> None:
    assert "body: must be at most 10 characters, got 18" in summary(UPSERT, max_text_chars=10)
    ArticleMessage.model_validate({**UPSERT, "body": "가" * 20000})
    assert "body" in summary({**UPSERT, "body": "가" * 20001})


def test_limits_fit_the_milvus_schema() -> None:
    """A message that validates can always be written: byte limits match the collection's."""
    fields = {f.name: f.params for f in article_schema().fields}
    assert fields["post_id"]["max_length"] == 128
    assert fields["series"]["max_length"] == 256
    assert fields["category"]["max_length"] == 128
    assert fields["tags"]["max_length"] == 64 and fields["tags"]["max_capacity"] == 16
    assert fields["title"]["max_length"] >= 500 * 4  # 500 characters of up to 4 bytes


def test_committed_schema_matches_the_model() -> None:
    assert json.loads(schema_path().read_text(encoding="utf-8")) == (
        ArticleMessage.model_json_schema()
    )
    assert schema_path().read_text(encoding="utf-8") == render_schema()


def test_schema_command_prints_the_schema() -> None:
    result = CliRunner().invoke(ingest_commands.app, ["articles", "schema"])
    assert result.exit_code == 0
    assert json.loads(result.output) == ArticleMessage.model_json_schema()
