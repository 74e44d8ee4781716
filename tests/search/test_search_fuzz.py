"""Property: whatever a client sends to /v1/search, the answer is never a 5xx.

Strings come from all of Unicode (minus lone surrogates, which no HTTP client can encode),
numbers from far outside every bound, dates in every shape. A 422 must carry the error body;
a 200 must be a well-formed answer.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi.testclient import TestClient
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests.infra.samples import HOSTILE_CATEGORIES

text = st.text(st.characters(exclude_categories=("Cs",)), max_size=60)
numbers = st.one_of(
    st.integers(min_value=-(10**30), max_value=10**30), st.sampled_from([0, 1, 50, 51, -1])
)
number_or_text = st.one_of(numbers, text, st.floats(allow_nan=True, allow_infinity=True))
odd_dates = st.one_of(
    st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat()),
    st.datetimes().map(lambda d: d.isoformat()),  # naive: must be refused, politely
    st.dates().map(str),
    st.sampled_from(
        [
            "2026-02-30",
            "9999-12-31",
            "0001-01-01",
            "2026-13-01T00:00:00Z",
            "1970-01-01T00:00:00-23:59",
            "2026-01-01T24:00:00Z",
            "",
            "now",
        ]
    ),
    text,
)
profiles = st.one_of(st.sampled_from(["instant", "default", "deep", "patient"]), text)
facets = st.one_of(st.lists(st.one_of(text, st.sampled_from(HOSTILE_CATEGORIES)), max_size=4))
_known = st.sampled_from(["송금", "ㅅㄱ", "thdrma", "파킹통장 금리", "😀🙏🏽", "기타 문서"])
queries = st.one_of(_known, _known, text)
FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def check(response: Any) -> None:
    assert response.status_code < 500, response.text
    event(f"HTTP {response.status_code}")
    body = response.json()
    if response.status_code == 200:
        assert {"query_id", "documents", "intents", "sources", "partial"} <= body.keys()
        # a source that did not answer contributes nothing to the documents
        answered = {name for name, s in body["sources"].items() if s["status"] == "ok"}
        assert all(set(d["legs"]) <= answered for d in body["documents"])
    else:
        assert response.status_code == 422 and body["error"]["message"]


def sometimes(valid: st.SearchStrategy[Any], junk: st.SearchStrategy[Any]) -> Any:
    """Mostly absent or valid, sometimes junk: one bad field at a time, so 200s get explored."""
    return st.one_of(st.none(), st.none(), valid, valid, junk)


@FUZZ
@given(
    q=queries,
    profile=sometimes(st.sampled_from(["instant", "default", "deep", "patient"]), text),
    top_k=sometimes(st.integers(min_value=1, max_value=50), number_or_text),
    budget_ms=sometimes(st.integers(min_value=1, max_value=2000), number_or_text),
    published_from=sometimes(st.dates(max_value=date(2026, 1, 1)).map(str), odd_dates),
    published_to=sometimes(st.dates(min_value=date(2026, 1, 1)).map(str), odd_dates),
    category=sometimes(st.lists(st.sampled_from(["저축", "송금"]), max_size=2), facets),
    tag=sometimes(st.lists(st.sampled_from(["금리", "환전"]), max_size=2), facets),
    area=sometimes(
        st.lists(st.sampled_from(["SEARCH", "RECO", "SUGGEST"]), max_size=3),
        st.lists(text, max_size=2),
    ),
)
def test_get_never_fails_on_the_server(
    search_client: TestClient,
    q: str,
    profile: Any,
    top_k: Any,
    budget_ms: Any,
    published_from: Any,
    published_to: Any,
    category: Any,
    tag: Any,
    area: Any,
) -> None:
    scalars = {
        "q": q,
        "profile": profile,
        "top_k": top_k,
        "budget_ms": budget_ms,
        "published_from": published_from,
        "published_to": published_to,
    }
    params: list[tuple[str, Any]] = [(k, v) for k, v in scalars.items() if v is not None]
    for name, values in (("category", category), ("tag", tag), ("area", area)):
        params += [(name, v) for v in values or []]
    check(search_client.get("/v1/search", params=params))


json_values = st.recursive(
    st.one_of(
        st.none(), st.booleans(), numbers, st.floats(allow_nan=False, allow_infinity=False), text
    ),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(text, inner, max_size=3)),
    max_leaves=8,
)


@FUZZ
@given(
    body=st.one_of(
        st.fixed_dictionaries(
            {"q": queries},
            optional={
                "profile": st.one_of(profiles, json_values),
                "top_k": st.one_of(numbers, json_values),
                "budget_ms": st.one_of(numbers, json_values),
                "areas": st.one_of(st.lists(st.sampled_from(["SEARCH", "RECO"])), json_values),
                "filters": st.one_of(
                    st.fixed_dictionaries(
                        {},
                        optional={
                            "category": facets,
                            "series": facets,
                            "tags": facets,
                            "published_from": odd_dates,
                            "published_to": odd_dates,
                        },
                    ),
                    json_values,
                ),
            },
        ),
        json_values,
    )
)
def test_post_never_fails_on_the_server(search_client: TestClient, body: Any) -> None:
    check(search_client.post("/v1/search", json=body))


def test_non_standard_json_numbers_are_refused_politely(search_client: TestClient) -> None:
    """Python's JSON parser accepts NaN and Infinity, which no JSON client should send."""
    for raw in (
        '{"q": "송금", "budget_ms": Infinity}',
        '{"q": "송금", "top_k": NaN}',
        '{"q": "송금", "budget_ms": -Infinity, "top_k": 1e400}',
    ):
        response = search_client.post(
            "/v1/search", content=raw, headers={"content-type": "application/json"}
        )
        assert response.status_code == 422, response.text
