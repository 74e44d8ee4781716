"""The admin page in a real headless Chromium (Debian's, with fonts-nanum), at a laptop's
1366x768, over the demo catalog's tree of 120 intents: the page an operator meets at 2 a.m.
Each intent keeps only its first hint, so the catalog embeds in a quarter of the time.

Screenshots go to ``$CHATDA_TEST_ARTIFACTS`` when set (CI keeps them), else to the test's
tmp_path; docs/img/admin-page.png is one of them, copied by hand.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from playwright.sync_api import Browser, Dialog, Page, expect

from chatda.catalog.models import IntentUpdate
from chatda.demo import catalog_path
from chatda.settings import Settings
from query.app import create_app
from tests.catalog.conftest import ADMIN
from tests.fixtures.browser import chromium, served

LAPTOP = {"width": 1366, "height": 768}
DEMO_INTENTS = 120
DEMO_ROOTS = 12
WRITE_MS = 60_000
"""A write answers once the catalog has embedded its new texts: seconds on a loaded CPU."""


@pytest.fixture(scope="module")
def server(models_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("admin-page")
    demo = yaml.safe_load(catalog_path().read_text(encoding="utf-8"))
    for intent in demo["intents"]:
        intent["hints"] = intent["hints"][:1]
    catalog = root / "catalog.yaml"
    catalog.write_text(yaml.safe_dump(demo, allow_unicode=True), encoding="utf-8")
    settings = Settings(
        data_dir=root,
        models_dir_override=models_dir,
        device="cpu",
        catalog_file=catalog,
        admin_token=ADMIN,
        request_timeout_ms=30_000,  # the page is under test, not latency on a loaded box
    )
    with served(create_app(settings), _catalog_ready, timeout_s=180) as base:
        yield base


def _catalog_ready(base: str) -> bool:
    return bool(httpx.get(f"{base}/healthz").json()["catalog"]["ready"])


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    folder = os.environ.get("CHATDA_TEST_ARTIFACTS")
    out = Path(folder) if folder else tmp_path
    out.mkdir(parents=True, exist_ok=True)
    return out


@pytest.fixture
def page(
    browser: Browser, server: str, shots: Path, request: pytest.FixtureRequest
) -> Iterator[Page]:
    """Signed in, at 1366x768, with the tree listed; the last state is kept as a screenshot,
    which is what a failure needs."""
    context = browser.new_context(viewport=LAPTOP)
    tab = context.new_page()
    tab.goto(f"{server}/admin")
    tab.fill("#token", ADMIN)
    tab.click("#login")
    tab.wait_for_selector("#intent-tree li")
    yield tab
    tab.screenshot(path=str(shots / f"{request.node.name}-end.png"))
    context.close()


@pytest.fixture
def admin_api(server: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server, headers={"authorization": f"Bearer {ADMIN}"}) as client:
        yield client


def in_viewport(page: Page, selector: str) -> bool:
    """Wholly inside the viewport, and the topmost element at its centre (nothing covers it)."""
    return page.evaluate(
        """s => {
            const el = document.querySelector(s), r = el.getBoundingClientRect();
            const top = document.elementFromPoint(r.x + r.width / 2, r.y + r.height / 2);
            return r.width > 0 && r.top >= 0 && r.left >= 0 && r.bottom <= innerHeight
                && r.right <= innerWidth && (top === el || el.contains(top));
        }""",
        selector,
    )


def node(intent_id: int) -> str:
    return f"#intent-tree .node[data-id='{intent_id}']"


def test_wrong_token_is_refused_and_the_right_one_signs_in(browser: Browser, server: str) -> None:
    context = browser.new_context(viewport=LAPTOP)
    tab = context.new_page()
    tab.goto(f"{server}/admin")
    tab.fill("#token", "wrong")
    tab.click("#login")
    assert "올바르지 않습니다" in tab.content()
    tab.goto(f"{server}/admin")
    tab.fill("#token", ADMIN)
    tab.click("#login")
    tab.wait_for_selector("#intent-tree li")
    assert tab.inner_text("#intent-count") == str(DEMO_INTENTS)
    context.close()


def test_operator_edits_a_hint_and_sees_the_new_match(page: Page, shots: Path) -> None:
    query = "비트코인 거래소로 돈 옮기기"
    page.fill("#try-query", query)
    page.wait_for_selector("#try-results tbody tr")
    assert page.locator("#try-results tbody tr").first.get_attribute("data-id") != "701"

    page.click(f"{node(7)} .twisty")  # 환전/해외: the tree opens folded at its roots
    page.click(node(701))
    page.wait_for_selector("#edit-form:not([hidden])")
    name = page.input_value("#f-name")
    page.click("#add-hint")
    page.locator(".f-hint").last.fill(query)
    expect(page.locator("#edit-msg")).to_have_class("msg dirty")
    page.click("#save")
    expect(page.locator("#edit-msg")).to_have_text("저장됨 (v2)", timeout=WRITE_MS)
    page.wait_for_function("document.querySelector('#try-results tbody tr')?.dataset.id === '701'")
    top = page.locator("#try-results tbody tr").first
    assert name in top.inner_text() and query in top.inner_text() and "통과" in top.inner_text()
    page.screenshot(path=str(shots / "admin-page.png"))


def test_save_bar_and_its_confirmation_stay_in_view_at_1366x768(page: Page, shots: Path) -> None:
    page.click("#expand-all")
    expect(page.locator("#intent-tree li")).to_have_count(DEMO_INTENTS)
    page.hover("#tree-scroll")
    page.mouse.wheel(0, 20_000)
    page.wait_for_function("document.querySelector('#tree-scroll').scrollTop > 0")
    last = page.locator("#intent-tree .node").last
    last.click()
    page.wait_for_selector("#edit-form:not([hidden])")
    for i in range(25):  # a long form: the editor scrolls, its save bar does not
        page.click("#add-hint")
        page.locator(".f-hint").last.fill(f"긴 힌트 {i}")
    page.hover("#edit-scroll")
    page.mouse.wheel(0, 20_000)
    page.wait_for_function("document.querySelector('#edit-scroll').scrollTop > 0")
    page.mouse.wheel(0, 20_000)  # over the page too: it has nothing to scroll
    assert page.evaluate("scrollY") == 0
    assert in_viewport(page, "#save")
    page.click("#save")
    expect(page.locator("#edit-msg")).to_contain_text("저장됨", timeout=WRITE_MS)
    assert in_viewport(page, "#edit-msg")
    assert in_viewport(page, "#save")
    page.screenshot(path=str(shots / "save-bar-1366x768.png"))


def test_tree_expands_collapses_and_filters(page: Page) -> None:
    roots = page.locator("#intent-tree > li")
    expect(roots).to_have_count(DEMO_ROOTS)
    child = page.locator(node(102))  # 송금/이체 > 해외송금
    expect(child).to_be_hidden()
    page.click(f"{node(1)} .twisty")
    expect(child).to_be_visible()
    assert page.get_attribute("#intent-tree li[data-id='1']", "aria-expanded") == "true"
    expect(page.locator(node(1021))).to_be_hidden()  # a grandchild stays folded
    page.click(f"{node(1)} .twisty")
    expect(child).to_be_hidden()
    assert page.get_attribute("#intent-tree li[data-id='1']", "aria-expanded") == "false"

    page.click("#expand-all")
    expect(page.locator("#intent-tree .node:visible")).to_have_count(DEMO_INTENTS)
    page.click("#collapse-all")
    expect(page.locator("#intent-tree .node:visible")).to_have_count(DEMO_ROOTS)

    page.fill("#search", "해외송금 받기")
    expect(page.locator("#intent-tree .node.hit")).to_have_count(1)
    hit = page.locator(node(1021))
    expect(hit).to_be_visible()  # shown with its ancestors, unfolded
    expect(page.locator(node(1))).to_have_class("node context")
    expect(page.locator("#intent-tree > li")).to_have_count(1)
    expect(page.locator("#intent-count")).to_have_text(f"1 / {DEMO_INTENTS}")
    assert "q=" in page.url
    page.fill("#search", "")
    expect(roots).to_have_count(DEMO_ROOTS)


def test_create_then_delete_round_trips_through_the_api(
    page: Page, admin_api: httpx.Client
) -> None:
    page.click(f"{node(3)} .twisty")  # 카드
    page.click(node(3))
    page.wait_for_selector("#edit-form:not([hidden])")
    page.click("#new-intent")
    assert page.input_value("#f-parent") == "3"
    new_id = int(page.input_value("#f-id"))
    assert admin_api.get(f"/v1/admin/intents/{new_id}").status_code == 404
    page.fill("#f-name", "카드 포인트 기부")
    page.locator(".f-hint").last.fill("쌓인 카드 포인트를 자선단체에 기부하기")
    page.click("#save")
    expect(page.locator("#edit-msg")).to_contain_text(f"#{new_id}", timeout=WRITE_MS)
    created = admin_api.get(f"/v1/admin/intents/{new_id}").json()
    assert created["parent_id"] == 3 and created["name"] == "카드 포인트 기부"
    assert created["hints"] == ["쌓인 카드 포인트를 자선단체에 기부하기"]
    expect(page.locator(f"#intent-tree li[data-id='3'] .node[data-id='{new_id}']")).to_be_visible()
    expect(page.locator(node(new_id))).to_have_class("node sel")
    expect(page.locator("#intent-count")).to_have_text(str(DEMO_INTENTS + 1))

    page.fill("#try-query", "카드 포인트 기부하고 싶어")
    page.wait_for_function(
        f"document.querySelector('#try-results tbody tr')?.dataset.id === '{new_id}'"
    )

    dialogs: list[str] = []

    def answer(accept: bool):
        def handle(dialog: Dialog) -> None:
            dialogs.append(dialog.message)
            if accept:
                dialog.accept()
            else:
                dialog.dismiss()

        return handle

    page.once("dialog", answer(False))
    page.click("#delete")
    assert dialogs and "카드 포인트 기부" in dialogs[-1]
    assert admin_api.get(f"/v1/admin/intents/{new_id}").status_code == 200

    page.once("dialog", answer(True))
    page.click("#delete")
    expect(page.locator("#edit-msg")).to_contain_text("삭제됨", timeout=WRITE_MS)
    assert admin_api.get(f"/v1/admin/intents/{new_id}").status_code == 404
    expect(page.locator(node(new_id))).to_have_count(0)
    expect(page.locator("#intent-count")).to_have_text(str(DEMO_INTENTS))
    page.wait_for_function(
        f"document.querySelector('#try-results tbody tr')?.dataset.id !== '{new_id}'"
    )

    page.click(node(3))  # a parent: refused before asking, and kept
    asked = len(dialogs)
    page.click("#delete")
    expect(page.locator("#edit-msg")).to_contain_text("하위 의도")
    assert len(dialogs) == asked
    assert admin_api.get("/v1/admin/intents/3").status_code == 200


def _put(admin_api: httpx.Client, intent_id: int, change: dict) -> None:
    """Another operator's save, straight through the API."""
    seen = admin_api.get(f"/v1/admin/intents/{intent_id}").json()
    body = {k: seen[k] for k in IntentUpdate.model_fields} | change
    assert admin_api.put(f"/v1/admin/intents/{intent_id}", json=body).status_code == 200


def test_a_64_bit_service_id_survives_an_edit_of_another_field(
    page: Page, admin_api: httpx.Client
) -> None:
    """The page read JSON numbers as doubles: 2^53 + 1 showed as 2^53, and saving the memo
    alone stored the rounded service id."""
    big = 2**53 + 1
    _put(admin_api, 1101, {"service_id": big})
    page.click(f"{node(11)} .twisty")
    page.click(node(1101))
    page.wait_for_selector("#edit-form:not([hidden])")
    assert page.input_value("#f-service") == str(big)
    page.fill("#f-memo", "메모만 고침")
    page.click("#save")
    expect(page.locator("#edit-msg")).to_contain_text("저장됨", timeout=WRITE_MS)
    after = admin_api.get("/v1/admin/intents/1101").json()
    assert after["service_id"] == big and after["memo"] == "메모만 고침"


def test_a_save_over_someone_elses_edit_says_so_and_reloads(
    page: Page, admin_api: httpx.Client
) -> None:
    page.click(f"{node(11)} .twisty")
    page.click(node(1102))
    page.wait_for_selector("#edit-form:not([hidden])")
    _put(admin_api, 1102, {"memo": "다른 운영자"})
    page.fill("#f-memo", "내 수정")
    page.click("#save")
    expect(page.locator("#edit-msg")).to_contain_text("먼저 저장했습니다", timeout=WRITE_MS)
    assert in_viewport(page, "#reload") and in_viewport(page, "#edit-msg")
    assert page.input_value("#f-memo") == "내 수정"  # kept to copy from
    page.click("#reload")
    expect(page.locator("#f-memo")).to_have_value("다른 운영자")
    expect(page.locator("#reload")).to_be_hidden()
    assert admin_api.get("/v1/admin/intents/1102").json()["memo"] == "다른 운영자"


VERDICT = {
    "passed": "통과",
    "ambiguous": "모호",
    "below_threshold": "미달",
    "not_shown": "미표시",
    "hidden": "숨김",
}
DECIDED = {"passed": "통과", "ambiguous": "모호", "no_match": "일치 없음"}


def test_try_box_shows_confidence_raw_scores_and_why(page: Page, admin_api: httpx.Client) -> None:
    """For a query with a service and one without: the decision, and for each of the top rows
    the calibrated confidence, the raw cosine and fused score, and the reason, all as the
    admin API answers them."""
    seen = set()
    for query in ("해외 계좌로 돈 보내고 싶어", "오늘 저녁 김치찌개 레시피"):
        answer = admin_api.post("/v1/admin/intents:test", json={"query": query}).json()
        assert answer["calibrated"]
        seen.add(answer["decision"])
        top = answer["intents"][0]
        page.fill("#try-query", query)
        banner = page.locator("#try-decision")
        expect(banner).to_have_attribute("data-decision", answer["decision"])
        page.wait_for_function(
            f"document.querySelector('#try-results tbody tr')?.dataset.id === '{top['id']}'"
        )
        assert banner.inner_text().startswith(DECIDED[answer["decision"]])
        assert top["name"] in banner.inner_text()
        threshold = f"{answer['global_threshold']:g}"
        assert f"신뢰도 ≥ {threshold} (전역)" in banner.inner_text()
        assert f"신뢰도 임계값 {threshold}" in page.inner_text("header .meta")
        rows = page.locator("#try-results tbody tr")
        for n, want in enumerate(answer["intents"][:4]):
            row = rows.nth(n)
            assert row.get_attribute("data-id") == str(want["id"])
            assert row.locator("td.conf").inner_text() == f"{want['confidence']:.3f}"
            assert row.locator("td.dense").inner_text() == f"{want['dense']:.3f}"
            assert row.locator("td.fused").inner_text() == f"{want['score']:.3f}"
            why = row.locator(".why").inner_text()
            assert why.startswith(VERDICT[want["outcome"]] + ":")
            if want["outcome"] in ("passed", "below_threshold", "not_shown"):
                sign = "≥" if want["confidence"] >= want["threshold"] else "<"
                source = "개별 설정" if want["threshold_source"] == "override" else "전역"
                value, limit = f"{want['confidence']:.3f}", f"{want['threshold']:g}"
                assert f"신뢰도 {value} {sign} 임계값 {limit} ({source})" in why
            if want["outcome"] == "ambiguous":
                assert want["rival"] in why and "둘 다 표시" in why
    assert "no_match" in seen and seen & {"passed", "ambiguous"}


def test_number_and_decision_cells_never_wrap_at_1366x768(page: Page, shots: Path) -> None:
    page.fill("#try-query", "해외 계좌로 돈 보내고 싶어")
    page.wait_for_selector("#try-results tbody tr")
    assert page.locator("#try-results td.decision :is(.pass, .amb)").count() >= 1
    cells = page.evaluate(
        """() => [...document.querySelectorAll(
                '#try-results td.decision > span, #try-results td.num, #try-results th')]
            .map(el => {
                const range = document.createRange();
                range.selectNodeContents(el);
                return {text: el.textContent, lines: range.getClientRects().length,
                        height: range.getBoundingClientRect().height,
                        line: parseFloat(getComputedStyle(el).lineHeight)};
            })"""
    )
    assert len(cells) >= 15 * 3 + 5
    wrapped = [c for c in cells if c["lines"] != 1 or c["height"] > 1.5 * c["line"]]
    assert wrapped == []
    assert {"통과", "모호", "미달"} & {c["text"] for c in cells}
    page.screenshot(path=str(shots / "try-box-1366x768.png"))


def test_only_the_pages_own_assets_are_served(server: str) -> None:
    script = httpx.get(f"{server}/admin/static/admin-try.js")
    assert script.status_code == 200
    assert script.headers["content-type"].startswith("text/javascript")
    assert "chatda:catalog-changed" in script.text
    assert httpx.get(f"{server}/admin/static/admin.css").headers["cache-control"] == "no-cache"
    for name in ("nope.js", "..%2Froutes%2Fadmin_page.py", "%2E%2E%2Fapp.py"):
        assert httpx.get(f"{server}/admin/static/{name}").status_code == 404
