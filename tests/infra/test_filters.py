"""Filter building: quoting rules, templated form, and injection attempts against milvus-lite."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pymilvus import MilvusClient
from pymilvus.exceptions import MilvusException

from chatda.storage.filters import MAX_VALUES, build_filter, quote
from tests.infra.samples import HOSTILE_CATEGORIES, ROWS


def matching(client: MilvusClient, collection: str, expr: str, params: dict) -> list[str]:
    rows = client.query(
        collection,
        filter=expr or "chunk_no >= 0",
        filter_params=params,
        output_fields=["chunk_id"],
    )
    return sorted(r["chunk_id"] for r in rows)


def test_quote_escapes_backslash_and_double_quote() -> None:
    assert quote('a"b') == '"a\\"b"'
    assert quote("a\\b") == '"a\\\\b"'
    assert quote("서울 맛집") == '"서울 맛집"'


@pytest.mark.parametrize("bad", ["", "a\nb", "a\rb", "tab\there", "nul\x00", "\u2028", "x" * 257])
def test_quote_rejects_values_outside_the_whitelist(bad: str) -> None:
    with pytest.raises(ValueError):
        quote(bad)


def test_empty_filter() -> None:
    assert build_filter(None, [], None, None, None) == ("", {})


def test_templated_form_keeps_values_out_of_the_expression() -> None:
    expr, params = build_filter(
        ['" or 1==1'], None, ["서울"], datetime(2026, 1, 1, tzinfo=UTC), None, templated=True
    )
    assert expr == (
        "category in {category} and array_contains_any(tags, {tags}) "
        "and published_at >= {published_from}"
    )
    assert params == {"category": ['" or 1==1'], "tags": ["서울"], "published_from": 1767225600}


def test_invalid_arguments_are_rejected() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        build_filter(None, None, None, datetime(2026, 1, 1), None)
    with pytest.raises(ValueError, match="after"):
        build_filter(
            None, None, None, datetime(2026, 2, 1, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC)
        )
    with pytest.raises(ValueError, match="at most"):
        build_filter([f"c{i}" for i in range(MAX_VALUES + 1)], None, None, None, None)


@pytest.mark.parametrize("hostile", HOSTILE_CATEGORIES)
def test_hostile_category_matches_only_its_own_row(
    milvus: MilvusClient, articles: str, hostile: str
) -> None:
    index = HOSTILE_CATEGORIES.index(hostile)
    assert matching(milvus, articles, *build_filter([hostile], None, None, None, None)) == [
        f"hostile-{index}#0"
    ]
    assert matching(milvus, articles, *build_filter(None, None, [hostile], None, None)) == [
        f"hostile-{index}#0"
    ]


def test_facets_combine_with_and_values_with_or(milvus: MilvusClient, articles: str) -> None:
    assert matching(milvus, articles, *build_filter(["맛집", "여행"], None, None, None, None)) == [
        "busan-sea#0",
        "seoul-food#0",
        "seoul-trip#0",
    ]
    assert matching(milvus, articles, *build_filter(["여행"], ["서울 탐방"], None, None, None)) == [
        "seoul-trip#0"
    ]
    assert matching(milvus, articles, *build_filter(None, None, ["부산", "맛집"], None, None)) == [
        "busan-sea#0",
        "seoul-food#0",
    ]


def test_publication_window_is_inclusive(milvus: MilvusClient, articles: str) -> None:
    start = datetime(2026, 1, 10, tzinfo=UTC)
    end = datetime(2026, 3, 5, tzinfo=UTC)
    assert matching(milvus, articles, *build_filter(None, None, None, start, end)) == [
        "busan-sea#0",
        "seoul-food#0",
    ]
    assert len(matching(milvus, articles, *build_filter(None, None, None, None, None))) == len(ROWS)


def test_milvus_lite_still_rejects_filter_templates(milvus: MilvusClient, articles: str) -> None:
    """Canary: when milvus-lite learns templating, Backend.filter_templates can cover it too."""
    with pytest.raises(MilvusException):
        matching(milvus, articles, *build_filter(["여행"], None, None, None, None, templated=True))
