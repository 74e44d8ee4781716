"""The admin JSON API and the public match endpoint, over HTTP with the real model."""

from __future__ import annotations

import time

import pytest

from tests.catalog.conftest import ADMIN

AUTH = {"authorization": f"Bearer {ADMIN}"}


def editable(intent: dict) -> dict:
    keys = (
        "parent_id",
        "service_id",
        "name",
        "hints",
        "memo",
        "open",
        "areas",
        "threshold",
        "version",
    )
    return {k: intent[k] for k in keys}


@pytest.mark.parametrize("headers, status", [({}, 401), ({"authorization": "Bearer nope"}, 403)])
def test_admin_needs_the_token(api, headers, status) -> None:
    assert api.get("/v1/admin/intents", headers=headers).status_code == status
    assert (
        api.post("/v1/admin/intents:test", json={"query": "x"}, headers=headers).status_code
        == status
    )


def test_list_and_get_show_paths(api) -> None:
    body = api.get("/v1/admin/intents", headers=AUTH).json()
    by_id = {i["id"]: i for i in body["intents"]}
    assert by_id[2]["path"] == "송금 > 해외송금"
    assert (
        api.get("/v1/admin/intents", params={"q": "리볼빙"}, headers=AUTH).json()["intents"][0][
            "id"
        ]
        == 5
    )
    assert api.get("/v1/admin/intents/404", headers=AUTH).status_code == 404


def test_match_endpoint_returns_only_passing_visible_intents(api) -> None:
    body = api.get("/v1/intents/match", params={"q": "해외로 돈 보내고 싶어"}).json()
    assert body["intents"][0]["id"] == 2
    assert all(i["passed"] and i["open"] for i in body["intents"])
    suggest = api.get("/v1/intents/match", params={"q": "해외 계좌로 송금", "area": "SUGGEST"})
    assert 2 not in [i["id"] for i in suggest.json()["intents"]]
    assert api.get("/v1/intents/match", params={"q": ""}).status_code == 422
    assert api.get("/v1/intents/match", params={"q": "x", "area": "BANNER"}).status_code == 422
    assert api.get("/v1/intents/match", params={"q": "x", "top_k": 0}).status_code == 422


def test_test_endpoint_shows_every_intent_with_decision(api) -> None:
    body = api.post("/v1/admin/intents:test", json={"query": "카드값 이월"}, headers=AUTH).json()
    assert len(body["intents"]) == 5
    first = body["intents"][0]
    assert first["id"] == 5 and not first["open"]
    for item in body["intents"]:
        assert {"score", "matched_hint", "threshold", "passed", "margin"} <= item.keys()
        assert item["passed"] == (item["score"] >= item["threshold"])


def test_create_update_conflict_delete(api) -> None:
    new = {"id": 50, "name": "적금", "hints": ["매달 돈 모으기", "자유적금 가입"]}
    created = api.post("/v1/admin/intents", json=new, headers=AUTH)
    assert created.status_code == 201 and created.json()["version"] == 1
    assert api.post("/v1/admin/intents", json=new, headers=AUTH).status_code == 409
    top = api.get("/v1/intents/match", params={"q": "매달 조금씩 모으는 적금"}).json()["intents"]
    assert top[0]["id"] == 50

    body = editable(created.json()) | {"hints": ["매달 돈 모으기", "풍차돌리기"]}
    assert api.put("/v1/admin/intents/50", json=body, headers=AUTH).status_code == 200
    stale = api.put("/v1/admin/intents/50", json=body | {"name": "덮어쓰기"}, headers=AUTH)
    assert (
        stale.status_code == 409 and "changed by someone else" in stale.json()["error"]["message"]
    )
    assert api.get("/v1/admin/intents/50", headers=AUTH).json()["name"] == "적금"

    assert api.delete("/v1/admin/intents/50", headers=AUTH).status_code == 204
    assert api.get("/v1/admin/intents/50", headers=AUTH).status_code == 404


@pytest.mark.parametrize(
    "payload, status, fragment",
    [
        ({"id": 60, "name": ""}, 422, "name"),
        ({"id": 60, "name": "x", "threshold": 2}, 422, "threshold"),
        ({"id": 60, "name": "x", "hints": ["h"] * 201}, 422, "hints"),
        ({"id": 60, "name": "x", "hints": ["가" * 501]}, 422, "500"),
        ({"id": 60, "name": "x", "areas": ["BANNER"]}, 422, "areas"),
        ({"id": 60, "name": "x", "parent_id": 999}, 422, "parent_id 999"),
        ({"id": 1, "name": "x"}, 409, "already exists"),
    ],
)
def test_bad_input_is_4xx_with_message_and_writes_nothing(api, payload, status, fragment) -> None:
    before = api.get("/v1/admin/intents", headers=AUTH).json()["catalog_version"]
    r = api.post("/v1/admin/intents", json=payload, headers=AUTH)
    assert r.status_code == status
    assert fragment in r.json()["error"]["message"]
    assert api.get("/v1/admin/intents", headers=AUTH).json()["catalog_version"] == before


def test_cycle_through_update_is_rejected(api) -> None:
    one = api.get("/v1/admin/intents/1", headers=AUTH).json()
    r = api.put("/v1/admin/intents/1", json=editable(one) | {"parent_id": 2}, headers=AUTH)
    assert r.status_code == 422 and "cycle" in r.json()["error"]["message"]


def test_export_then_malformed_import_changes_nothing(api) -> None:
    exported = api.get("/v1/admin/intents:export", headers=AUTH)
    assert exported.status_code == 200 and "version: 1" in exported.text
    bad = exported.text.replace("name: 환전", "name: ''", 1)
    r = api.post("/v1/admin/intents:import", content=bad.encode(), headers=AUTH)
    assert r.status_code == 422 and "request body:" in r.json()["error"]["message"]
    ok = api.post("/v1/admin/intents:import", content=exported.text.encode(), headers=AUTH)
    assert ok.status_code == 200 and ok.json()["imported"] == 5


def test_replicas_converge_through_the_store(api) -> None:
    """An edit written straight to the store (another replica, the CLI) is picked up by polling."""
    state = api.app.state.chatda
    before = state.catalog.snapshot.version
    one = state.store.get(3)
    from chatda.catalog.models import IntentUpdate

    state.store.update(
        3,
        IntentUpdate(
            **one.model_dump(exclude={"id", "updated_at"}) | {"hints": [*one.hints, "엔화 환전"]}
        ),
    )
    deadline = time.monotonic() + 30
    while api.get("/healthz").json()["catalog"]["version"] == before:
        assert time.monotonic() < deadline
        time.sleep(0.1)
