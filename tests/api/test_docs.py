"""/docs and /redoc render in a real headless Chromium with no network beyond the API itself:
Swagger UI and ReDoc come from the fastapi-offline package's bundled assets, not a CDN
(issue #26 item 4). Every request the page makes to another origin is refused and recorded,
so a page that still reached for a CDN fails here even on a machine that has internet (ReDoc's
bundle fetched Redocly's logo from their CDN until the pages got a same-origin policy)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from playwright.sync_api import Page, Route

from chatda.settings import Settings
from query.app import create_app
from query.docs_pages import CONTENT_SECURITY_POLICY, install_docs
from tests.fixtures.browser import chromium, served

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def server(models_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("docs"), models_dir_override=models_dir, device="cpu"
    )
    with served(create_app(settings)) as base:
        yield base


@pytest.fixture(scope="module")
def operations(server: str) -> list[tuple[str, str]]:
    spec = httpx.get(f"{server}/openapi.json").json()
    return [(method.upper(), path) for path, item in spec["paths"].items() for method in item]


def offline_page(server: str, run: Callable[[Page], None]) -> list[str]:
    """Run ``run(page)`` with every request outside ``server`` aborted; the aborted URLs."""
    refused: list[str] = []

    def only_local(route: Route) -> None:
        if route.request.url.startswith(server):
            route.continue_()
        else:
            refused.append(route.request.url)
            route.abort()

    with chromium() as browser:
        context = browser.new_context(viewport={"width": 1366, "height": 768})
        context.route("**/*", only_local)
        run(context.new_page())
    return refused


def test_swagger_ui_renders_every_operation_offline(server: str, operations) -> None:
    seen: dict[str, object] = {}

    def run(page: Page) -> None:
        page.goto(f"{server}/docs")
        page.wait_for_selector(".opblock", timeout=30_000)
        seen["operations"] = [
            (
                block.locator(".opblock-summary-method").inner_text().strip(),
                block.locator(".opblock-summary-path").get_attribute("data-path"),
            )
            for block in page.locator(".opblock").all()
        ]
        page.click("button.authorize")
        page.wait_for_selector(".auth-container")
        seen["schemes"] = page.locator(".auth-container h4").all_inner_texts()

    refused = offline_page(server, run)
    assert refused == []
    assert sorted(seen["operations"]) == sorted(operations)  # type: ignore[arg-type]
    schemes = " ".join(seen["schemes"])  # type: ignore[arg-type]
    assert "admin" in schemes and "publisher" in schemes


def test_redoc_renders_every_operation_offline(server: str, operations) -> None:
    seen: dict[str, object] = {}

    def run(page: Page) -> None:
        page.goto(f"{server}/redoc")
        page.wait_for_selector("[data-section-id^='operation/']", timeout=30_000)
        seen["sections"] = page.locator("[data-section-id^='operation/']").count()
        seen["text"] = page.locator("body").inner_text()

    refused = offline_page(server, run)
    assert refused == []
    assert seen["sections"] == len(operations)
    text = str(seen["text"])  # ReDoc upper-cases its section labels
    assert "AUTHORIZATIONS:\npublisher" in text and "AUTHORIZATIONS:\nadmin" in text


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
def test_docs_pages_allow_only_their_own_origin(server: str, path: str) -> None:
    response = httpx.get(f"{server}{path}")
    assert response.status_code == 200
    policy = response.headers["content-security-policy"]
    assert "default-src 'self'" in policy and "img-src 'self' data:" in policy
    assert "cdn" not in response.text


def test_docs_pages_link_through_a_proxy_prefix() -> None:
    """Behind a proxy that strips a prefix (``root_path``), every link a page makes carries it
    back, and every page, the OAuth2 redirect included, has the same-origin policy."""
    app = FastAPI(title="t", docs_url=None, redoc_url=None)
    install_docs(app)
    client = TestClient(app, root_path="/chatda")
    docs = client.get("/docs").text
    assert "'/chatda/openapi.json'" in docs
    assert '"/chatda/docs-assets/swagger-ui-bundle.js"' in docs
    redoc = client.get("/redoc").text
    assert '"/chatda/openapi.json"' in redoc
    assert '"/chatda/docs-assets/redoc.standalone.js"' in redoc
    for path in ("/docs", "/docs/oauth2-redirect", "/redoc"):
        response = client.get(path)
        assert response.status_code == 200, path
        assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY, path
