"""The calibrated decision (issue #27): a monotone fit, held-out hints above the background,
the three decisions, and catalog files whose thresholds predate calibration."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

import numpy as np
import pytest
from fastapi.testclient import TestClient

from chatda.batching.batcher import DynamicBatcher
from chatda.catalog import service as service_module
from chatda.catalog.calibration import FEATURES, fit_logistic
from chatda.catalog.calibration_fit import (
    CalibrationConfig,
    FitOptions,
    background_queries,
    collect_examples,
    intent_clicks,
)
from chatda.catalog.decision import Decision, Outcome, decide, outcome
from chatda.catalog.file_format import dump_catalog, parse_catalog, read_catalog
from chatda.catalog.models import IntentUpdate
from chatda.catalog.service import CatalogService
from chatda.catalog.snapshot import Fusion, IntentScore
from chatda.catalog.store import CatalogStore
from chatda.demo import catalog_path
from chatda.evaluation.open_set import OpenSetOutcome, auroc, open_set_report
from chatda.feedback.events import Click, FeedbackRecord
from chatda.feedback.store import FeedbackStore
from chatda.settings import Settings
from chatda.text.morphemes import default_morphemes
from query.app import create_app
from tests.catalog.conftest import wait_catalog

FAMILIES = (1, 2, 3, 4)
"""Four of the demo catalog's twelve families: 40 intents, enough hints to calibrate on."""


def _service(
    store: CatalogStore,
    batcher: DynamicBatcher,
    calibration: CalibrationConfig,
    clicks: FeedbackStore | None = None,
) -> CatalogService:
    """A calibrated catalog service as the API builds one (raw threshold 0.92, shipped fusion)."""
    return CatalogService(
        store,
        batcher,
        default_morphemes(),
        0.92,
        Fusion.from_settings(Settings()),
        calibration=calibration,
        clicks=clicks,
    )


def demo_families(families: tuple[int, ...] = FAMILIES) -> str:
    intents = read_catalog(catalog_path())
    by_id = {i.id: i for i in intents}

    def root(intent):
        while intent.parent_id is not None:
            intent = by_id[intent.parent_id]
        return intent.id

    return dump_catalog([i for i in intents if root(i) in families])


def test_fit_is_monotone_in_every_feature() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(400, len(FEATURES)))
    # one feature pushes the wrong way: its weight must stay 0, never negative
    y = (x[:, 0] + x[:, 2] - 0.5 * x[:, 1] + rng.normal(scale=0.5, size=400) > 0).astype(float)
    cal = fit_logistic(x, y, np.ones(400))
    assert (cal.weights >= 0).all() and cal.weights[1] == 0
    base = np.zeros((50, len(FEATURES)))
    for column in range(len(FEATURES)):
        grid = base.copy()
        grid[:, column] = np.linspace(-3, 3, 50)
        assert (np.diff(cal.probability(grid)) >= 0).all()
    assert cal.probability(np.array([[2.0, 0, 2.0, 0]]))[0] > 0.9


def score(index: int, value: float, confidence: float | None, threshold: float) -> IntentScore:
    return IntentScore(index, value, value, 0.0, index, threshold, confidence)


def test_decide_three_cases_and_the_raw_rule() -> None:
    passed = decide([score(0, 0.95, 0.9, 0.5), score(1, 0.9, 0.2, 0.5)], 0.1)
    assert passed.decision is Decision.PASSED and [s.index for s in passed.intents] == [0]
    close = decide([score(0, 0.95, 0.6, 0.5), score(1, 0.94, 0.55, 0.5)], 0.1)
    assert close.decision is Decision.AMBIGUOUS
    assert [(s.index, s.ambiguous) for s in close.intents] == [(0, True), (1, True)]
    none = decide([score(0, 0.95, 0.3, 0.5), score(1, 0.94, 0.29, 0.5)], 0.1)
    assert none.decision is Decision.NO_MATCH and none.intents == []
    # a per-intent threshold applies to the confidence
    strict = [replace(score(0, 0.95, 0.9, 0.95)), score(1, 0.9, 0.2, 0.5)]
    assert decide(strict, 0.1).decision is Decision.NO_MATCH
    # raw rule (no confidence): no ambiguity, every intent over its threshold passes
    raw = decide([score(0, 0.95, None, 0.9), score(1, 0.949, None, 0.9)], 0.1)
    assert raw.decision is Decision.PASSED and len(raw.intents) == 2


def test_outcome_says_why_each_intent_is_or_is_not_shown() -> None:
    """What the try box explains: shown, ambiguous, under its threshold, or over it and still
    not shown (the top one failed; an ambiguous answer shows only two)."""
    three = [score(0, 0.95, 0.6, 0.5), score(1, 0.94, 0.55, 0.5), score(2, 0.9, 0.52, 0.5)]
    close = decide(three, 0.1)
    assert [outcome(s, close) for s in three] == [
        Outcome.AMBIGUOUS,
        Outcome.AMBIGUOUS,
        Outcome.NOT_SHOWN,
    ]
    apart = [score(0, 0.95, 0.9, 0.5), score(1, 0.9, 0.6, 0.5), score(2, 0.8, 0.1, 0.5)]
    passed = decide(apart, 0.1)
    assert [outcome(s, passed) for s in apart] == [
        Outcome.PASSED,
        Outcome.PASSED,
        Outcome.BELOW_THRESHOLD,
    ]
    # the second's own threshold is lower, but the top one fails: nothing is shown
    blocked = [score(0, 0.95, 0.3, 0.5), score(1, 0.9, 0.2, 0.15)]
    nothing = decide(blocked, 0.02)
    assert [outcome(s, nothing) for s in blocked] == [
        Outcome.BELOW_THRESHOLD,
        Outcome.NOT_SHOWN,
    ]


@pytest.fixture
async def calibrated(encoder, store):
    store.import_intents(parse_catalog(demo_families()))
    batcher = DynamicBatcher(encoder, default_timeout_s=60)  # a loaded box: no 2 s deadline
    service = _service(store, batcher, CalibrationConfig(0.25, 0.02))
    await service.refresh()
    yield service
    await batcher.close()


async def test_held_out_hints_score_above_background_and_served_confidence(calibrated) -> None:
    snap = calibrated.snapshot
    assert snap.calibrator is not None and snap.ambiguity_margin == 0.02
    background = list(background_queries())
    vectors = np.stack([calibrated._vectors[t] for t in background])
    examples = collect_examples(
        snap,
        calibrated._terms,
        vectors,
        [calibrated._terms[t] for t in background],
        FitOptions(),
    )
    p = snap.calibrator.probability(examples.features)
    held_out_right = p[(examples.kinds == 0) & (examples.labels == 1)]
    background_p = p[examples.kinds == 2]
    assert held_out_right.size >= 100 and background_p.size == len(background)
    assert np.median(held_out_right) > np.median(background_p)
    assert np.mean(held_out_right[:, None] > background_p[None, :]) > 0.9
    # the fit scores a query as serving does: a background query's top intent gets, served,
    # the confidence its fit example has (the fit re-implements the fusion with rows masked,
    # so a change to serving's dense or lexical leg must be mirrored in calibration_fit)
    for query, fitted in list(zip(background, background_p, strict=True))[:8]:
        _, served, _ = await calibrated.match(query, top_k=2)
        assert served[0].confidence == pytest.approx(fitted, abs=1e-3), query

    _, related, _ = await calibrated.match("해외 계좌로 돈 보내고 싶어", top_k=3)
    _, unrelated, _ = await calibrated.match("오늘 저녁 김치찌개 레시피", top_k=3)
    assert related[0].confidence is not None and unrelated[0].confidence is not None
    assert related[0].confidence > 0.25 > unrelated[0].confidence
    assert related[0].threshold == pytest.approx(0.25) and related[0].passed
    assert not unrelated[0].passed


OLD_CATALOG = """\
version: 1
intents:
  - id: 1
    name: 송금
    hints: [다른 계좌나 사용자에게 돈을 보내는 기능, 이체, 계좌 송금, 돈보내기]
    threshold: 0.71
"""


async def test_old_catalog_file_loads_and_its_override_is_a_confidence(encoder, store) -> None:
    """A file written before calibration (format 1, ``threshold`` a cosine) still imports; on
    the calibrated rule its override is read as a confidence (docs/intents.md, migration)."""
    intents = parse_catalog(OLD_CATALOG) + parse_catalog(demo_families((2, 3, 4)))
    store.import_intents(intents)
    batcher = DynamicBatcher(encoder)
    service = _service(store, batcher, CalibrationConfig(0.4, 0.1))
    try:
        await service.refresh()
        snap = service.snapshot
        assert snap.calibrator is not None
        thresholds = dict(zip([i.id for i in snap.intents], snap.thresholds, strict=True))
        assert thresholds[1] == pytest.approx(0.71)
        for intent in snap.intents[1:]:
            expected = intent.threshold if intent.threshold is not None else 0.4
            assert thresholds[intent.id] == pytest.approx(expected)
    finally:
        await batcher.close()


@pytest.fixture(scope="module")
def calibrated_api(models_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("calibrated-api")
    catalog = root / "catalog.yaml"
    catalog.write_text(demo_families(), encoding="utf-8")
    settings = Settings(
        data_dir=root,
        models_dir_override=models_dir,
        device="cpu",
        catalog_file=catalog,
        catalog_poll_s=0.5,
        intent_ambiguity_margin=0.3,
        request_timeout_ms=60000,  # a loaded test machine must not turn an answer into 504
    )
    with TestClient(create_app(settings)) as client:
        wait_catalog(client)
        yield client


def test_match_answers_passed_ambiguous_and_no_match(calibrated_api) -> None:
    def match(q: str) -> dict:
        response = calibrated_api.get("/v1/intents/match", params={"q": q, "top_k": 1})
        assert response.status_code == 200
        return response.json()

    passed = match("이체")
    assert passed["decision"] == "passed"
    assert [i["id"] for i in passed["intents"]] == [1]
    assert passed["intents"][0]["confidence"] >= passed["intents"][0]["threshold"]
    assert not passed["intents"][0]["ambiguous"]

    # a service and one of its own sub-services close together: both are shown, even with
    # top_k=1
    ambiguous = match("해외송금")
    assert ambiguous["decision"] == "ambiguous"
    shown = {i["id"] for i in ambiguous["intents"]}
    assert len(shown) == 2 and 102 in shown and shown <= {102, 1021, 1022}
    first, second = ambiguous["intents"]
    assert first["ambiguous"] and second["ambiguous"]
    assert abs(first["confidence"] - second["confidence"]) < 0.3

    nothing = match("오늘 저녁 김치찌개 레시피")
    assert nothing["decision"] == "no_match" and nothing["intents"] == []


def test_open_set_report_counts_each_case() -> None:
    """Three in-scope queries (right and passed, ambiguous with the right one, wrong and
    passed) and two out-of-scope ones (rejected, passed)."""
    outcomes = [
        OpenSetOutcome("a", 0.99, 0.9, Decision.PASSED, ["a"]),
        OpenSetOutcome("b", 0.95, 0.5, Decision.AMBIGUOUS, ["b", "c"]),
        OpenSetOutcome("x", 0.93, 0.4, Decision.PASSED, ["x"]),
        OpenSetOutcome("a", 0.90, 0.1, Decision.NO_MATCH, []),
        OpenSetOutcome("b", 0.96, 0.6, Decision.PASSED, ["b"]),
    ]
    relevants = [{"a"}, {"c"}, {"y"}, set(), set()]
    report = open_set_report(outcomes, relevants, 0.92, "calibrated", 0.3, 0.1, None)
    served = report["served"]
    assert served["in_scope_correct"] == pytest.approx(1 / 3, abs=1e-4)
    assert served["in_scope_ambiguous_with_right"] == pytest.approx(1 / 3, abs=1e-4)
    assert served["out_of_scope_rejected"] == 0.5
    assert served["ambiguous_share"] == 0.2
    # the top intent is right only for the first query: its confidence 0.9 beats both
    # out-of-scope ones, so AUROC is 1 and it survives 90 % rejection
    assert served["curve"]["auroc"] == 1.0
    old = report["old_rule"]
    assert (old["in_scope_correct"], old["out_of_scope_rejected"]) == (
        pytest.approx(1 / 3, abs=1e-4),
        0.5,
    )
    assert auroc(np.array([0.5, 0.5]), np.array([0.5])) == 0.5


CLICKED = [
    ("엄마 통장으로 50만원 보내기", 101),
    ("미국 사는 동생한테 달러 보내기", 102),
    ("해외에서 보낸 돈 언제 들어와", 1022),
    ("지난달 이체한 기록 보기", 103),
    ("매달 관리비 자동으로 빠져나가게", 104),
    ("하루 이체 한도 올리기", 106),
    ("친구들이랑 밥값 나눠 내기", 107),
    ("전화번호로 돈 보내기", 108),
    ("잘못 보낸 돈 돌려받기", 109),
    ("통장 새로 만들고 싶어", 201),
    ("매달 조금씩 모으는 적금", 2022),
    ("통장 잔액 확인", 203),
    ("잔액증명서 떼기", 204),
    ("카드 잃어버렸어", 302),
    ("이번달 카드 얼마 썼지", 303),
    ("카드 결제일 바꾸기", 304),
    ("해외 결제 막아줘", 306),
    ("카드 한도 올리고 싶어", 308),
    ("대출 이자 싼 곳 비교", 401),
    ("전세 대출 받고 싶어", 405),
    ("대출 갈아타기", 407),
]
"""Queries users typed into search and the intent each clicked in its answer."""


def click(
    query: str | None, clicked: str, at: datetime, kind: Literal["intent", "article"] | None = None
) -> FeedbackRecord:
    event = Click(type="click", query_id=uuid.uuid4(), clicked_id=clicked, position=1, kind=kind)
    return FeedbackRecord(
        event_id=uuid.uuid4(),
        received_at=at,
        query=query,
        known_query=query is not None,
        event=event,
    )


def test_recent_clicks_are_capped_newest_first_and_only_on_intents(store) -> None:
    feedback = FeedbackStore(store.engine)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    minutes = [start + timedelta(minutes=n) for n in range(6)]
    feedback.save(
        [
            click("송금", "1", minutes[0]),
            click("송금", "1", minutes[1]),
            click("적금", "2022", minutes[2]),
            click("환율 뉴스", "a-0001", minutes[3]),  # an article
            click(None, "3", minutes[4]),  # a query id nobody knew
            click("카드", "3", minutes[5]),
            click("3월 카드 뉴스", "3", minutes[5], kind="article"),  # an article whose id is 3
            click("카드 분실", "3", minutes[5], kind="intent"),
        ]
    )
    ids = ["1", "2022", "3"]
    assert feedback.recent_clicks(ids, 10) == [
        ("카드 분실", "3"),
        ("카드", "3"),
        ("적금", "2022"),
        ("송금", "1"),
        ("송금", "1"),
    ]
    assert feedback.recent_clicks(ids, 2) == [("카드 분실", "3"), ("카드", "3")]
    # retraining's query -> document pairs: clicks said or not to be on articles
    pairs = feedback.click_pairs(100)
    assert ("3월 카드 뉴스", "3") in pairs and ("환율 뉴스", "a-0001") in pairs
    assert ("카드 분실", "3") not in pairs
    # a query clicked twice on one intent is one example
    assert intent_clicks(feedback.recent_clicks(ids, 10), [1, 2022, 3]) == [
        ("카드 분실", 3),
        ("카드", 3),
        ("적금", 2022),
        ("송금", 1),
    ]


async def test_clicks_enter_the_fit_and_raise_the_clicked_intents_confidence(
    encoder, store
) -> None:
    """The product's path: clicks in the SQL store's ``search_events``, read when a snapshot
    is built. With users' clicks confirming the top intent of queries like theirs, the fit
    learns that such a top intent is right more often than the hints alone suggest."""
    store.import_intents(parse_catalog(demo_families()))
    batcher = DynamicBatcher(encoder, default_timeout_s=60)  # a loaded box: no 2 s deadline
    feedback = FeedbackStore(store.engine)
    config = CalibrationConfig(0.25, 0.02, max_clicks=1000)
    service = _service(store, batcher, config, feedback)
    try:
        await service.refresh()  # no clicks yet: hints and background only
        before = service.snapshot
        assert before.calibrator is not None and before.calibrator.n_clicks == 0
        top_before = {q: (await service.match(q, top_k=2))[1][0] for q, _ in CLICKED}
        right = [q for q, i in CLICKED if before.intents[top_before[q].index].id == i]
        assert len(right) >= len(CLICKED) // 2

        start = datetime(2026, 1, 1, tzinfo=UTC)
        feedback.save(
            [
                click(q, str(i), start + timedelta(seconds=n * 10 + k))
                for n, (q, i) in enumerate(CLICKED)
                for k in range(3)  # three users: still one example each
            ]
        )
        intent = store.get(1)  # an edit rebuilds the snapshot, and the fit reads the clicks
        fields = intent.model_dump(include=set(IntentUpdate.model_fields) - {"version"})
        store.update(1, IntentUpdate(**fields, version=intent.version))
        assert await service.refresh()
        after = service.snapshot
        assert after.calibrator is not None
        assert after.calibrator.n_clicks == len(CLICKED)
        assert after.calibrator.describe()["clicks"] == len(CLICKED)
        rises = []
        for q in right:  # same top intent, same raw scores: only the fit changed
            top = (await service.match(q, top_k=2))[1][0]
            assert top.index == top_before[q].index and top.score == top_before[q].score
            rises.append(top.confidence - top_before[q].confidence)
        # 21 clicked queries against ~340 held-out hints: about +0.02 on average here, up to
        # +0.04; the fit is one model for every query, so a query can also move a hair down
        assert np.mean(rises) > 0.01 and np.mean(np.array(rises) > 0) >= 0.8

    finally:
        await batcher.close()


@pytest.fixture
async def refitting(
    encoder, store, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[CatalogService, FeedbackStore]]:
    """The demo catalog behind a service that refits once ``CLICKED``'s count of intent clicks
    arrived, counting them at every poll, and the click store it reads."""
    monkeypatch.setattr(service_module, "CLICKS_CHECK_S", 0.0)
    store.import_intents(parse_catalog(demo_families()))
    batcher = DynamicBatcher(encoder, default_timeout_s=60)
    feedback = FeedbackStore(store.engine)
    config = CalibrationConfig(0.25, 0.02, max_clicks=1000, refit_clicks=len(CLICKED))
    service = _service(store, batcher, config, feedback)
    try:
        yield service, feedback
    finally:
        await batcher.close()


def clicked_records() -> list[FeedbackRecord]:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    return [click(q, str(i), start + timedelta(seconds=n)) for n, (q, i) in enumerate(CLICKED)]


async def test_enough_new_intent_clicks_refit_without_a_catalog_edit(
    refitting: tuple[CatalogService, FeedbackStore],
) -> None:
    """Clicks keep arriving while the catalog stays the same: once ``refit_clicks`` of them
    landed on its intents since the last fit, the next poll refits. Clicks on articles and
    clicks whose query the server did not know do not count."""
    service, feedback = refitting
    assert await service.refresh()
    first = service.snapshot
    assert first.calibrator is not None and first.calibrator.n_clicks == 0
    on_intents = clicked_records()
    start = datetime(2026, 1, 1, tzinfo=UTC)
    others = [click("환율 뉴스", "a-0001", start), click(None, "101", start)]
    feedback.save([*on_intents[:-1], *others])
    assert not await service.refresh()  # one intent click short, the others do not count
    assert service.snapshot is first
    feedback.save(on_intents[-1:])
    assert await service.refresh()
    refit = service.snapshot
    assert refit is not first and refit.version == first.version
    assert refit.calibrator is not None and refit.calibrator.n_clicks == len(CLICKED)
    assert refit.click_mark == feedback.click_mark() > first.click_mark
    assert not await service.refresh()  # counted from the refit's read: nothing new


async def test_a_failed_build_keeps_the_serving_snapshots_click_mark(
    refitting: tuple[CatalogService, FeedbackStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The clicks a refit is owed stay owed when the build fails: the mark belongs to the
    snapshot that was fitted, not to the attempt."""
    service, feedback = refitting
    assert await service.refresh()
    first = service.snapshot
    feedback.save(clicked_records())

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("calibration failed")

    with monkeypatch.context() as patched:
        patched.setattr(service_module, "calibrate", broken)
        with pytest.raises(RuntimeError, match="calibration failed"):
            await service.refresh()
    assert service.snapshot is first and first.click_mark < feedback.click_mark()
    assert await service.refresh()  # the clicks still count: the refit happens now
    assert service.snapshot.calibrator.n_clicks == len(CLICKED)  # type: ignore[union-attr]
