"""The admin page in a real headless Chromium: log in, edit a hint, save, see it match live."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
import uvicorn
from playwright.sync_api import sync_playwright

from bench.server import free_port
from chatda.settings import Settings
from query.app import create_app
from tests.catalog.conftest import ADMIN, SMALL_CATALOG

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="module")
def server(models_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("admin-page")
    catalog = root / "catalog.yaml"
    catalog.write_text(SMALL_CATALOG, encoding="utf-8")
    settings = Settings(
        data_dir=root,
        models_dir_override=models_dir,
        device="cpu",
        catalog_file=catalog,
        admin_token=ADMIN,
    )
    port = free_port()
    srv = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_config=None)
    )
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 120
    import httpx

    base = f"http://127.0.0.1:{port}"
    while True:
        try:
            if httpx.get(f"{base}/healthz").json()["catalog"]["ready"]:
                break
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.2)
    yield base
    srv.should_exit = True
    thread.join(timeout=10)


def test_operator_edits_a_hint_and_sees_the_new_match(server: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        page.goto(f"{server}/admin")
        page.fill("#token", "wrong")
        page.click("#login")
        assert "올바르지 않습니다" in page.content()
        page.goto(f"{server}/admin")
        page.fill("#token", ADMIN)
        page.click("#login")
        page.wait_for_selector("#intent-list li")
        assert page.locator("#intent-list li").count() == 5

        query = "비트코인 거래소로 돈 옮기기"
        page.fill("#try-query", query)
        page.wait_for_selector("#try-results tbody tr")
        assert page.locator("#try-results tbody tr").first.get_attribute("data-id") != "3"

        page.click("#intent-list li[data-id='3']")
        page.wait_for_selector("#edit-form:not([hidden])")
        assert page.input_value("#f-name") == "환전"
        page.click("#add-hint")
        page.locator(".f-hint").last.fill(query)
        page.click("#save")
        page.wait_for_selector("#edit-msg.ok")
        assert "v2" in page.inner_text("#edit-msg")
        page.wait_for_function(
            "document.querySelector('#try-results tbody tr')?.dataset.id === '3'"
        )
        top = page.locator("#try-results tbody tr").first
        assert query in top.inner_text() and "통과" in top.inner_text()
        page.screenshot(path=str(ARTIFACTS / "admin-page.png"), full_page=True)
        browser.close()
