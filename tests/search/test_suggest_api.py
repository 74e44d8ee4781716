"""``/v1/suggest`` over HTTP: every way of typing, every source, and rebuilds."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pymilvus import MilvusClient

from chatda.models.encoder import Encoder
from chatda.search.suggestions import FOLLOW_COST_RATIO, SuggestOptions, SuggestService
from indexer.suggest_job import refresh_suggestions
from tests.search.conftest import ADMIN_TOKEN, CHUNK_TOKENS, announce_written
from tests.search.corpus import Article, article_rows


def suggest(client: TestClient, q: str, limit: int = 10) -> list[dict[str, Any]]:
    response = client.get("/v1/suggest", params={"q": q, "limit": limit})
    assert response.status_code == 200, response.text
    return response.json()["suggestions"]


@pytest.mark.parametrize(
    ("typed", "text", "match"),
    [
        ("송그", "송금", "prefix"),  # mid-syllable: ㄱ of 금 typed, ㅡ on its way
        ("ㅅㄱ", "송금", "chosung"),
        ("thdrma", "송금", "qwerty"),  # 송금 typed with the Latin layout on
        ("환젼", "환전", "typo"),
        ("내역", "송금 내역", "infix"),
    ],
)
def test_each_way_of_typing(search_client: TestClient, typed: str, text: str, match: str) -> None:
    top = suggest(search_client, typed)[0]
    assert (top["text"], top["match"]) == (text, match)
    assert top["kind"] == "intent" and top["ref"] is not None
    assert top["highlight"] and all(0 <= a < b <= len(text) for a, b in top["highlight"])


def test_article_titles_are_suggested(search_client: TestClient) -> None:
    found = suggest(search_client, "파킹")
    assert {"text": "파킹통장 고르는 법", "kind": "title", "ref": "parking"}.items() <= (
        found[0].items()
    )


def test_a_new_articles_title_is_suggested_within_seconds(
    search_client: TestClient, milvus_uri: str, articles_alias: str, encoder: Encoder
) -> None:
    """Titles were reloaded every five minutes only: a first run's suggestions had no titles
    until then, as the demo articles were indexed after the first load."""
    fresh = Article(
        "suggest-fresh", "풍차돌리기 적금 비법", "매달 새 적금을 하나씩 엽니다.", "저축"
    )
    milvus = MilvusClient(uri=milvus_uri)
    milvus.insert(articles_alias, article_rows(encoder, [fresh], CHUNK_TOKENS))
    try:
        announce_written(search_client, [fresh.post_id])
        deadline = time.monotonic() + 30  # follow_s (5 s) after the tier applied it, at most
        while not any(s["ref"] == fresh.post_id for s in suggest(search_client, "풍차돌리")):
            assert time.monotonic() < deadline, suggest(search_client, "풍차돌리")
            time.sleep(0.2)
    finally:
        milvus.delete(articles_alias, filter=f'post_id in ["{fresh.post_id}"]')
        milvus.close()
        announce_written(search_client, [fresh.post_id])


def test_short_hints_are_suggested_with_their_intent(search_client: TestClient) -> None:
    hint = next(s for s in suggest(search_client, "계좌이") if s["text"] == "계좌이체")
    assert hint["kind"] == "hint" and hint["ref"] == "1"


def test_closed_and_non_suggest_intents_are_not_suggested(search_client: TestClient) -> None:
    assert "송곳 대출" not in [s["text"] for s in suggest(search_client, "송고")]
    assert "계좌 개설" not in [s["text"] for s in suggest(search_client, "계좌")]


def test_index_reports_its_sources(search_client: TestClient) -> None:
    index = search_client.get("/v1/suggest", params={"q": "송"}).json()["index"]
    assert index["intents"] > 0 and index["titles"] >= 6 and index["catalog_version"] >= 1
    assert index["entries"] <= index["intents"] + index["titles"] + index["queries"]


@pytest.mark.parametrize("q", ["", " ", "\x00", "가" * 100])
def test_odd_input_gets_no_suggestions(search_client: TestClient, q: str) -> None:
    assert suggest(search_client, q) == []


@pytest.mark.parametrize(
    "params", [{"q": "송", "limit": 0}, {"q": "송", "limit": 51}, {"q": "송" * 300}, {}]
)
def test_bad_parameters_are_422(search_client: TestClient, params: dict) -> None:
    response = search_client.get("/v1/suggest", params=params)
    assert response.status_code == 422
    assert response.json()["error"]["message"]


def test_limit_is_honoured(search_client: TestClient) -> None:
    assert len(suggest(search_client, "ㅅ", limit=2)) == 2


def wait_for(client: TestClient, typed: str, text: str, timeout_s: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for suggestion in suggest(client, typed):
            if suggestion["text"] == text:
                return suggestion
        time.sleep(0.2)
    raise AssertionError(f"{text!r} never suggested for {typed!r}")


def test_catalog_edits_rebuild_the_index(bare_client: TestClient) -> None:
    before = bare_client.get("/v1/suggest", params={"q": "적"}).json()["index"]["catalog_version"]
    created = bare_client.post(
        "/v1/admin/intents",
        json={"id": 70, "name": "적립식 펀드", "hints": ["펀드 적립"], "areas": ["SUGGEST"]},
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
    )
    assert created.status_code == 201, created.text
    found = wait_for(bare_client, "ㅈㄹ", "적립식 펀드")
    assert (found["kind"], found["ref"], found["match"]) == ("intent", "70", "chosung")
    after = bare_client.get("/v1/suggest", params={"q": "적"}).json()["index"]["catalog_version"]
    assert after > before


def click(client: TestClient, query: str, clicked_id: str) -> None:
    search = client.get("/v1/search", params={"q": query, "profile": "patient"}).json()
    sent = client.post(
        "/v1/feedback",
        json={
            "type": "click",
            "query_id": search["query_id"],
            "clicked_id": clicked_id,
            "position": 1,
        },
    )
    assert sent.json() == {**sent.json(), "known_query": True, "stored_via": "sql"}


def refresh_popularity(client: TestClient) -> None:
    """What the scheduler does (the refresh-suggestions job), then the API's periodic reload."""
    state = client.app.state.chatda  # type: ignore[attr-defined]
    suggest_service = state.search.suggest
    refresh_suggestions(state.settings, suggest_service.popularity.engine)
    assert client.portal is not None
    client.portal.call(suggest_service.reload_sources)
    client.portal.call(suggest_service.rebuild)


def test_without_milvus_the_titles_count_as_read(bare_client: TestClient) -> None:
    """A title read that fails is retried at the next follow (every 5 s); with no Milvus
    configured there is nothing to read, so the follow must not reload the sources (an SQL
    popularity query) every 5 s for ever."""
    suggest_service = bare_client.app.state.chatda.search.suggest  # type: ignore[attr-defined]
    assert bare_client.portal is not None
    _, titles_read = bare_client.portal.call(suggest_service.reload_sources)
    assert titles_read


class SlowReload(SuggestService):
    """A stand-in for a large title set: the real reload, made to take at least ``seconds``
    (50,000 titles take ~1.6 s here; a test cannot wait for that many)."""

    def __init__(self, seconds: float, *args: Any) -> None:
        super().__init__(*args)
        self.seconds = seconds
        self.reloads = 0

    async def reload_sources(self) -> tuple[bool, bool]:
        self.reloads += 1
        await asyncio.sleep(self.seconds)
        return await super().reload_sources()


def test_the_title_follow_waits_twenty_times_its_own_cost(bare_client: TestClient) -> None:
    """Under steady publishing the articles' version moves every second; a reload that costs
    0.1 s must then wait FOLLOW_COST_RATIO x 0.1 = 2 s, not follow_s (0.2 s), so the follow
    never takes more than a twentieth of a core however fast articles arrive."""
    real = bare_client.app.state.chatda.search.suggest  # type: ignore[attr-defined]
    version = iter(range(1_000_000))
    slow = SlowReload(
        0.1,
        real.catalog,
        real.articles,
        real.popularity,
        SuggestOptions(refresh_s=3600, follow_s=0.2),
        lambda: next(version),  # a new version at every look: articles keep arriving
    )
    assert bare_client.portal is not None
    started = time.monotonic()
    bare_client.portal.call(slow.tick)
    assert slow.reloads == 1
    # the wait follows the reload's real cost, which a loaded box stretches: a fixed cap
    # (10 s) failed as soon as the first reload took more than half a second
    deadline = started + FOLLOW_COST_RATIO * (time.monotonic() - started) + 5
    while slow.reloads == 1 and time.monotonic() < deadline:
        bare_client.portal.call(slow.tick)
        time.sleep(0.05)
    assert slow.reloads == 2, "the follow never ran again"
    assert time.monotonic() - started >= FOLLOW_COST_RATIO * slow.seconds  # not follow_s


def test_popular_queries_from_feedback(bare_client: TestClient) -> None:
    query = "환전 우대 " + uuid.uuid4().hex[:4]  # unique, so earlier runs cannot interfere
    click(bare_client, query, "2")
    refresh_popularity(bare_client)
    assert query not in [s["text"] for s in suggest(bare_client, "환전 우대")]  # one search only
    click(bare_client, query, "2")  # suggest_min_query_searches=2 in the test settings
    refresh_popularity(bare_client)
    found = wait_for(bare_client, "환전 우대", query, timeout_s=5)
    assert found["kind"] == "query" and found["ref"] is None


def test_clicked_intents_rise_among_equal_matches(bare_client: TestClient) -> None:
    before = [s["text"] for s in suggest(bare_client, "송금")]
    assert before.index("송금") < before.index("송금 내역")  # shorter first, all else equal
    for _ in range(6):
        click(bare_client, "송금 기록 " + uuid.uuid4().hex[:4], "4")  # intent 4: 송금 내역
    refresh_popularity(bare_client)
    assert [s["text"] for s in suggest(bare_client, "송금", 2)] == ["송금 내역", "송금"]
