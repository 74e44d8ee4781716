"""Search requests: constrained values only, and filters that reach Milvus only via build_filter."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from chatda.catalog.models import Area
from chatda.search.request import SearchFilters, SearchRequest
from chatda.storage.filters import quote
from tests.infra.samples import HOSTILE_CATEGORIES


def test_defaults() -> None:
    request = SearchRequest(q="  송금   하는 법 ")
    assert request.normalized == "송금 하는 법"
    assert request.areas == [Area.SEARCH] and request.top_k == 10
    assert request.profile is None and request.budget_ms is None
    assert request.filters.expression(templated=False) == ("", {})


@pytest.mark.parametrize(
    "payload",
    [
        {"q": ""},
        {"q": "   \u200b "},  # nothing left once normalised
        {"q": "가" * 1001},
        {"q": "x", "top_k": 0},
        {"q": "x", "top_k": 51},
        {"q": "x", "top_k": -5},
        {"q": "x", "top_k": 10**30},
        {"q": "x", "budget_ms": 0},
        {"q": "x", "budget_ms": 10**9},
        {"q": "x", "areas": []},
        {"q": "x", "areas": ["EVERYWHERE"]},
        {"q": "x", "profile": "../etc"},
        {"q": "x", "profile": "DEFAULT"},
        {"q": "x", "unknown": 1},
        {"q": "x", "filters": {"color": ["red"]}},
        {"q": "x", "filters": {"category": ["a\nb"]}},
        {"q": "x", "filters": {"tags": ["nul\x00"]}},
        {"q": "x", "filters": {"series": [""]}},
        {"q": "x", "filters": {"category": ["x" * 257]}},
        {"q": "x", "filters": {"category": ["c"] * 65}},
        {"q": "x", "filters": {"published_from": "2026-01-01T00:00:00"}},  # no offset
        {"q": "x", "filters": {"published_from": "2026-02-30"}},
        {"q": "x", "filters": {"published_from": "yesterday"}},
        {"q": "x", "filters": {"published_from": "2026-03-01", "published_to": "2026-02-01"}},
    ],
)
def test_invalid_requests_are_rejected(payload: dict) -> None:
    with pytest.raises(ValidationError):
        SearchRequest.model_validate(payload)


@pytest.mark.parametrize("hostile", HOSTILE_CATEGORIES)
def test_hostile_facets_are_quoted_never_pasted(hostile: str) -> None:
    filters = SearchFilters(category=[hostile])
    expression, params = filters.expression(templated=False)
    assert (expression, params) == (f"category in [{quote(hostile)}]", {})
    expression, params = filters.expression(templated=True)
    assert expression == "category in {category}" and params == {"category": [hostile]}


def test_plain_dates_cover_whole_utc_days() -> None:
    filters = SearchFilters(published_from="2026-01-01", published_to="2026-01-31")
    assert filters.published_from == datetime(2026, 1, 1, tzinfo=UTC)
    assert filters.published_to == datetime(2026, 1, 31, 23, 59, 59, tzinfo=UTC)
    expression, _ = filters.expression(templated=False)
    assert expression == "published_at >= 1767225600 and published_at <= 1769903999"


def test_offsets_are_respected() -> None:
    seoul = timezone(timedelta(hours=9))
    filters = SearchFilters(published_from="2026-01-01T09:00:00+09:00")
    assert filters.published_from == datetime(2026, 1, 1, 9, tzinfo=seoul)
    assert filters.expression(templated=False)[0] == "published_at >= 1767225600"


def test_extreme_but_valid_dates_build_a_filter() -> None:
    filters = SearchFilters(
        published_from="0001-01-01T00:00:00+23:59", published_to="9999-12-31T23:59:59-23:59"
    )
    expression, _ = filters.expression(templated=False)
    assert expression.startswith("published_at >= -62135")


def test_repeated_areas_collapse() -> None:
    assert SearchRequest(q="x", areas=["SEARCH", "SEARCH", "RECO"]).areas == [
        Area.SEARCH,
        Area.RECO,
    ]
