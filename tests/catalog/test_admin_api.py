"""The admin JSON API and the public match endpoint, over HTTP with the real model."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

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
    for blank in ("   ", "\x00", "\u202e"):  # 200 no_match before; /v1/search answered 422
        r = api.get("/v1/intents/match", params={"q": blank})
        assert r.status_code == 422 and "no searchable characters" in r.text
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


def test_test_endpoint_takes_q_like_every_route(api) -> None:
    """``q`` as /v1/search and /v1/intents/match name it; ``query`` (its old name) still read;
    a query with nothing searchable is a 422 there as on the public routes."""
    by_q = api.post("/v1/admin/intents:test", json={"q": "카드값 이월"}, headers=AUTH)
    by_query = api.post("/v1/admin/intents:test", json={"query": "카드값 이월"}, headers=AUTH)
    assert by_q.status_code == by_query.status_code == 200
    assert by_q.json()["query"] == "카드값 이월"
    assert [i["id"] for i in by_q.json()["intents"]] == [
        i["id"] for i in by_query.json()["intents"]
    ]
    for blank in ("   ", "\x00", "\u202e"):
        r = api.post("/v1/admin/intents:test", json={"q": blank}, headers=AUTH)
        assert r.status_code == 422 and "no searchable characters" in r.text
    assert api.post("/v1/admin/intents:test", json={}, headers=AUTH).status_code == 422


def test_create_update_conflict_delete(api) -> None:
    new = {"id": 50, "name": "적금", "hints": ["매달 돈 모으기", "자유적금 가입"]}
    created = api.post("/v1/admin/intents", json=new, headers=AUTH)
    catalog_version = api.get("/v1/admin/intents", headers=AUTH).json()["catalog_version"]
    assert created.status_code == 201 and created.json()["version"] == catalog_version
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


def test_an_update_missing_a_field_is_422_and_changes_nothing(api) -> None:
    """A PUT replaces every field: one left out used to take its default, so changing a
    threshold alone moved the intent to the root and dropped its hints with a 200."""
    seen = api.get("/v1/admin/intents/3", headers=AUTH).json()
    r = api.put(
        "/v1/admin/intents/3",
        json={"name": seen["name"], "threshold": 0.5, "version": seen["version"]},
        headers=AUTH,
    )
    assert r.status_code == 422
    message = r.json()["error"]["message"]
    assert "parent_id" in message and "hints" in message and "threshold" not in message
    assert api.get("/v1/admin/intents/3", headers=AUTH).json() == seen
    as_read = seen | {"threshold": 0.5}  # GET's body as it is: id, path, updated_at too
    assert api.put("/v1/admin/intents/3", json=as_read, headers=AUTH).status_code == 200
    after = api.get("/v1/admin/intents/3", headers=AUTH).json()
    assert after["threshold"] == 0.5 and after["hints"] == seen["hints"]
    assert after["parent_id"] == seen["parent_id"] and after["path"] == seen["path"]
    other = after | {"id": 2, "memo": "다른 의도"}
    r = api.put("/v1/admin/intents/3", json=other, headers=AUTH)
    assert r.status_code == 422 and "the body is intent 2, the URL intent 3" in r.text
    assert api.get("/v1/admin/intents/3", headers=AUTH).json() == after


def test_an_import_deeper_than_the_bound_is_422_and_the_catalog_still_serves(api) -> None:
    """A 1,200-deep chain (ids running against their parents) answered 500 after committing,
    and no snapshot could be built after it: the catalog never loaded again."""
    before = api.get("/v1/admin/intents", headers=AUTH).json()["catalog_version"]
    deep = "".join(
        f"- {{id: {n}, name: c{n}{f', parent_id: {n + 1}' if n < 401200 else ''}}}\n"
        for n in range(400001, 401201)
    )
    r = api.post(
        "/v1/admin/intents:import",
        params={"mode": "merge"},
        content=f"version: 1\nintents:\n{deep}",
        headers=AUTH,
    )
    assert r.status_code == 422 and "levels deep" in r.json()["error"]["message"]
    assert api.get("/v1/admin/intents", headers=AUTH).json()["catalog_version"] == before
    assert api.get("/v1/intents/match", params={"q": "달러 환전"}).status_code == 200


def test_an_unexpected_failure_is_a_json_500(api) -> None:
    """README: errors are JSON for every status; an unhandled exception was Starlette's
    text/plain "Internal Server Error"."""
    from fastapi.testclient import TestClient

    async def broken() -> None:
        raise RuntimeError("a bug")

    api.app.add_api_route("/v1/admin/broken-on-purpose", broken, include_in_schema=False)
    try:
        client = TestClient(api.app, raise_server_exceptions=False)  # no `with`: one lifespan
        r = client.get("/v1/admin/broken-on-purpose", headers=AUTH)
    finally:
        api.app.router.routes.pop()
    assert r.status_code == 500 and r.headers["content-type"] == "application/json"
    assert r.json() == {"error": {"message": "internal error; the server's log has the details"}}


def test_a_single_valued_query_parameter_given_twice_is_422(api) -> None:
    """FastAPI keeps the last value: ``mode=merge&mode=replace`` with an empty file replaced
    the whole catalog with nothing."""
    before = api.get("/v1/admin/intents", headers=AUTH).json()
    r = api.post(
        "/v1/admin/intents:import?mode=merge&mode=replace",
        content="version: 1\nintents: []\n",
        headers=AUTH,
    )
    assert r.status_code == 422
    assert (
        r.json()["error"]["message"]
        == "query parameter 'mode' is given 2 times; it takes one value"
    )
    assert api.get("/v1/admin/intents", headers=AUTH).json() == before
    assert api.get("/v1/intents/match?q=환전&top_k=1&top_k=2").status_code == 422


def test_a_json_body_sent_as_a_form_names_the_content_type(api) -> None:
    """``curl -d '{…}'`` sends application/x-www-form-urlencoded: the 422 said only "Input
    should be a valid dictionary", naming no field and no cause."""
    r = api.post(
        "/v1/admin/intents",
        content='{"id": 70, "name": "폼"}',
        headers=AUTH | {"content-type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 422
    message = r.json()["error"]["message"]
    assert message.startswith("the body must be JSON, sent with Content-Type: application/json")
    assert "said application/x-www-form-urlencoded" in message
    assert api.get("/v1/admin/intents/70", headers=AUTH).status_code == 404
    yaml_route = api.post(  # takes YAML: no JSON advice for its empty body
        "/v1/admin/intents:import", headers=AUTH | {"content-type": "application/yaml"}
    )
    assert yaml_route.status_code == 422 and "JSON" not in yaml_route.json()["error"]["message"]


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


BIG = 2**63
WHOLE = {
    "parent_id": None,
    "service_id": None,
    "name": "x",
    "hints": [],
    "memo": "",
    "open": True,
    "areas": ["SEARCH"],
    "threshold": None,
}
"""Every field of an update, so a case fails on the value it names, not on a missing field."""


@pytest.mark.parametrize(
    "method, path, kwargs",
    [
        ("post", "/v1/admin/intents", {"json": {"id": BIG, "name": "x"}}),
        ("post", "/v1/admin/intents", {"json": {"id": 61, "name": "x", "service_id": BIG}}),
        ("post", "/v1/admin/intents", {"json": {"id": 61, "name": "x", "service_id": -BIG - 1}}),
        ("post", "/v1/admin/intents", {"json": {"id": 61, "name": "x", "parent_id": BIG}}),
        ("post", "/v1/admin/intents", {"json": {"id": True, "name": "x"}}),
        ("post", "/v1/admin/intents", {"json": {"id": 61, "name": "x", "service_id": False}}),
        ("get", f"/v1/admin/intents/{BIG}", {}),
        ("put", f"/v1/admin/intents/{BIG}", {"json": WHOLE | {"version": 1}}),
        ("put", "/v1/admin/intents/1", {"json": WHOLE | {"version": BIG}}),
        ("put", "/v1/admin/intents/1", {"json": WHOLE | {"version": True}}),
        ("delete", f"/v1/admin/intents/{BIG}", {}),
        ("delete", "/v1/admin/intents/1", {"params": {"version": str(BIG)}}),
        (
            "post",
            "/v1/admin/intents:import",
            {"content": f"version: 1\nintents:\n- {{id: {BIG}, name: x}}\n"},
        ),
        (
            "post",
            "/v1/admin/intents:import",
            {"content": "version: 1\nintents:\n- {id: 61, name: x, service_id: " + "9" * 30 + "}"},
        ),
        ("post", "/v1/admin/intents:import", {"content": "version: true\nintents: []\n"}),
        ("post", "/v1/admin/intents:import", {"content": "[" * 100_000 + "]" * 100_000}),
        (
            "post",
            "/v1/admin/intents:import",
            {"content": "[" * 100_000, "headers": {"content-type": "application/json"}},
        ),
        (
            "post",
            "/v1/admin/intents",
            {"content": "[" * 100_000, "headers": {"content-type": "application/json"}},
        ),
        (
            "post",
            "/v1/admin/intents",
            {
                "content": '{"id": 61, "name": "\\udfff"}',
                "headers": {"content-type": "application/json"},
            },
        ),
    ],
)
def test_out_of_range_or_malformed_input_is_422_and_writes_nothing(
    api, method: str, path: str, kwargs: dict
) -> None:
    """Issue #23 items 1 and 6: 64-bit overflows (SQLite OverflowError), booleans taken for
    integers and deep nesting (RecursionError) answered 500 or were accepted."""
    before = api.get("/v1/admin/intents", headers=AUTH).json()["catalog_version"]
    headers = AUTH | kwargs.pop("headers", {})
    r = api.request(method.upper(), path, headers=headers, **kwargs)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["message"]
    assert api.get("/v1/admin/intents", headers=AUTH).json()["catalog_version"] == before


@pytest.mark.parametrize(
    "content",
    [b"[" * 100_000, b"{not json", b'{"id": "x"}', b'{"query": ""}'],
)
def test_the_token_is_checked_before_the_body(api, content: bytes) -> None:
    """Issue #23 item 10: an unauthenticated bad body got 422 with the admin contract in it."""
    for path in ("/v1/admin/intents", "/v1/admin/intents:test", "/v1/admin/intents:import"):
        r = api.post(path, content=content, headers={"content-type": "application/json"})
        assert r.status_code == 401
        assert r.headers["WWW-Authenticate"] == "Bearer"


@pytest.mark.parametrize(
    "method, path, headers, status",
    [
        ("get", "/v1/admin/intents", {}, 401),
        ("get", "/v1/admin/intents", {"authorization": "Bearer nope"}, 403),
        ("get", "/v1/admin/intents/999", AUTH, 404),
        ("get", "/no/such/path", {}, 404),
        ("delete", "/v1/search", {}, 405),
    ],
)
def test_every_error_has_the_documented_shape(api, method, path, headers, status) -> None:
    """Issue #23 item 10: 401/403/404/405 answered ``{"detail": ...}``."""
    r = api.request(method.upper(), path, headers=headers)
    assert r.status_code == status
    assert isinstance(r.json()["error"]["message"], str) and "detail" not in r.json()


@pytest.mark.parametrize(
    "path, allowed",
    [("/v1/admin/intents", "GET, POST"), ("/v1/admin/intents/1", "DELETE, GET, PUT")],
)
def test_405_names_every_method_of_the_path(api, path, allowed) -> None:
    """Starlette's 405 named only the first route matching the path (``Allow: GET``), though
    GET and POST on one path are two routes here; HTTP requires every method."""
    r = api.request("PATCH", path, headers=AUTH)
    assert r.status_code == 405
    assert r.headers["Allow"] == allowed


def test_openapi_declares_the_admin_bearer_scheme(api) -> None:
    """Issue #23 item 10: /docs could not send a token."""
    spec = api.get("/openapi.json").json()
    assert spec["components"]["securitySchemes"]["admin"]["scheme"] == "bearer"
    admin = [item for path, item in spec["paths"].items() if path.startswith("/v1/admin/")]
    assert len(admin) == 5
    for item in admin:
        assert all(operation["security"] == [{"admin": []}] for operation in item.values())
    assert "security" not in spec["paths"]["/v1/search"]["get"]


def _put_and_delete_at_once(api, body: dict) -> tuple[int, int]:
    barrier = threading.Barrier(2)

    def put() -> int:
        barrier.wait()
        return api.put("/v1/admin/intents/70", json=body, headers=AUTH).status_code

    def delete() -> int:
        barrier.wait()
        return api.delete("/v1/admin/intents/70", headers=AUTH).status_code

    with ThreadPoolExecutor(2) as pool:
        put_status, delete_status = pool.submit(put), pool.submit(delete)
        return put_status.result(), delete_status.result()


def test_concurrent_put_and_delete_never_answer_500(api) -> None:
    """Issue #23 item 6: the PUT's answer was built after a DELETE removed the intent (500)."""
    for attempt in range(8):
        body = {"id": 70, "name": f"경합 {attempt}", "hints": [f"동시 수정 {attempt}"]}
        created = api.post("/v1/admin/intents", json=body, headers=AUTH)
        assert created.status_code == 201
        put_body = editable(created.json()) | {"hints": [f"새 힌트 {attempt}"]}
        put_status, delete_status = _put_and_delete_at_once(api, put_body)
        assert put_status in (200, 404, 409) and delete_status in (204, 404, 409)
        if api.get("/v1/admin/intents/70", headers=AUTH).status_code == 200:
            assert api.delete("/v1/admin/intents/70", headers=AUTH).status_code == 204


def test_repeated_wrong_tokens_are_slowed_down(api) -> None:
    """Issue #23 item 7: 100 wrong admin tokens in 0.7 s were all compared."""
    from fastapi.testclient import TestClient

    from query.auth_failures import MAX_AUTH_FAILURES

    guesser = TestClient(api.app, client=("203.0.113.7", 40000))
    wrong = {"authorization": "Bearer guess"}
    codes = [guesser.get("/v1/admin/intents", headers=wrong).status_code for _ in range(25)]
    assert codes[:MAX_AUTH_FAILURES] == [403] * MAX_AUTH_FAILURES
    assert set(codes[MAX_AUTH_FAILURES:]) == {429}
    throttled = guesser.get("/v1/admin/intents", headers=AUTH)
    assert throttled.status_code == 429 and int(throttled.headers["Retry-After"]) >= 1
    assert "too many" in throttled.json()["error"]["message"]
    form = guesser.post("/admin/login", data={"token": ADMIN}, follow_redirects=False)
    assert form.status_code == 429
    assert api.get("/v1/admin/intents", headers=AUTH).status_code == 200  # other addresses


def test_the_admin_cookie_is_a_signed_expiring_session(api) -> None:
    """Issue #23 item 10: the cookie held the raw admin token and never expired."""
    from fastapi.testclient import TestClient

    from query.auth import ADMIN_COOKIE, ADMIN_SESSION_S, admin_session

    browser = TestClient(api.app, client=("198.51.100.4", 40000))
    r = browser.post("/admin/login", data={"token": ADMIN}, follow_redirects=False)
    assert r.status_code == 303
    set_cookie = r.headers["set-cookie"]
    assert ADMIN not in set_cookie
    assert f"Max-Age={ADMIN_SESSION_S}" in set_cookie
    assert "HttpOnly" in set_cookie and "SameSite=strict" in set_cookie
    session = r.cookies[ADMIN_COOKIE]
    browser.cookies.clear()

    def with_cookie(value: str) -> int:
        return browser.get("/v1/admin/intents", cookies={ADMIN_COOKIE: value}).status_code

    assert with_cookie(session) == 200
    assert with_cookie(ADMIN) == 401  # the raw token is no session
    expires, _, signature = session.partition(".")
    assert with_cookie(f"{int(expires) + 3600}.{signature}") == 401  # extended expiry
    from pydantic import SecretStr

    old = admin_session(SecretStr(ADMIN), now=time.time() - ADMIN_SESSION_S - 1)
    assert with_cookie(old) == 401
    assert with_cookie(admin_session(SecretStr("another-token"))) == 401
    for hostile in (f"{expires}.{signature[:-1]}é", "ü"):  # compare_digest refuses non-ASCII
        cookie = f"{ADMIN_COOKIE}={hostile}".encode("latin-1")
        assert browser.get("/v1/admin/intents", headers={"cookie": cookie}).status_code == 401
