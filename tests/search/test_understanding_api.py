"""``understood_as`` over HTTP: search and intent matching read thdrma and ㅅㄱ as 송금.

The app without Milvus or Kafka is enough: the intents source and ``/v1/intents/match`` answer
from the catalog, and the vocabulary for 초성 is the live suggestion index.
"""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

ATTEMPTS = 20


def patiently(call: Any, *args: Any, **kwargs: Any) -> httpx.Response:
    """Ask until the encoder answered: on a loaded 2-core test box it may refuse (429), miss
    its deadline (504), or leave the intents source out of a search (partial). None of that is
    what these tests are about, and a client would simply ask again."""
    for _ in range(ATTEMPTS):
        response = call(*args, **kwargs)
        if response.status_code == 200:
            sources = response.json().get("sources", {})
            if sources.get("intents", {"status": "ok"})["status"] == "ok":
                return response
        elif response.status_code not in (429, 504):
            break
        time.sleep(1.0)
    raise AssertionError(f"no full answer: {response.status_code} {response.text}")


def search(client: TestClient, **params: Any) -> dict[str, Any]:
    return patiently(client.get, "/v1/search", params={"profile": "patient", **params}).json()


def match(client: TestClient, **params: Any) -> dict[str, Any]:
    return patiently(client.get, "/v1/intents/match", params=params).json()


def names(intents: list[dict[str, Any]]) -> list[str]:
    return [intent["name"] for intent in intents]


@pytest.mark.parametrize("typed", ["thdrma", "ㅅㄱ"])
def test_search_finds_what_was_meant(bare_client: TestClient, typed: str) -> None:
    body = search(bare_client, q=typed)
    assert body["query"] == typed
    assert body["understood_as"] == "송금"
    assert body["normalized"] == "송금"
    assert "송금" in names(body["intents"])


def test_post_search_understands_too(bare_client: TestClient) -> None:
    response = patiently(bare_client.post, "/v1/search", json={"q": "ㅅㄱ", "profile": "patient"})
    assert response.json()["understood_as"] == "송금"
    assert "송금" in names(response.json()["intents"])


@pytest.mark.parametrize("typed", ["thdrma", "ㅅㄱ"])
def test_intent_match_finds_what_was_meant(bare_client: TestClient, typed: str) -> None:
    body = match(bare_client, q=typed)
    assert (body["query"], body["understood_as"]) == (typed, "송금")
    assert names(body["intents"])[0] == "송금"


def test_verbatim_searches_as_typed(bare_client: TestClient) -> None:
    body = search(bare_client, q="thdrma", verbatim="true")
    assert (body["understood_as"], body["normalized"]) == (None, "thdrma")
    assert "송금" not in names(body["intents"])
    matched = match(bare_client, q="thdrma", verbatim=True)
    assert matched["understood_as"] is None and "송금" not in names(matched["intents"])
    posted = patiently(
        bare_client.post, "/v1/search", json={"q": "ㅅㄱ", "verbatim": True, "profile": "patient"}
    )
    assert posted.json()["understood_as"] is None


@pytest.mark.parametrize("typed", ["bank", "iphone", "pdf", "api key", "video", "송금 내역"])
def test_ordinary_queries_are_searched_as_typed(bare_client: TestClient, typed: str) -> None:
    body = search(bare_client, q=typed)
    assert body["understood_as"] is None and body["normalized"] == typed
    assert match(bare_client, q=typed)["understood_as"] is None


def test_understood_as_is_documented(bare_client: TestClient) -> None:
    schemas = bare_client.get("/openapi.json").json()["components"]["schemas"]
    for model in ("SearchResponse", "MatchResponse"):
        field = schemas[model]["properties"]["understood_as"]
        assert "understood_as" in schemas[model]["required"]
        assert {"type": "null"} in field["anyOf"] and "초성" in field["description"]
    assert "verbatim" in schemas["SearchRequest"]["properties"]
