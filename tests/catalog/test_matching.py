"""Matching with the real model: thresholds, closed intents, areas, snapshots and re-embedding."""

from __future__ import annotations

import asyncio

import pytest

from chatda.batching.batcher import DynamicBatcher
from chatda.catalog.file_format import parse_catalog
from chatda.catalog.models import Area, IntentIn
from chatda.catalog.service import CatalogService
from chatda.catalog.snapshot import Fusion
from chatda.settings import Settings
from chatda.text.morphemes import default_morphemes
from tests.catalog.conftest import SMALL_CATALOG


@pytest.fixture
async def service(store, encoder):
    store.import_intents(parse_catalog(SMALL_CATALOG))
    batcher = DynamicBatcher(encoder)
    svc = CatalogService(
        store, batcher, default_morphemes(), 0.86, Fusion.from_settings(Settings()), poll_s=0.2
    )
    await svc.refresh()
    yield svc
    await svc.close()
    await batcher.close()


def ids(snap, scores):
    return [snap.intents[s.index].id for s in scores]


async def test_best_intent_matched_hint_and_margin(service) -> None:
    snap, scores, embedding = await service.match("해외로 돈 보내고 싶어", top_k=3)
    top = scores[0]
    assert snap.intents[top.index].id == 2
    assert snap.row_texts[top.row] in snap.intents[top.index].hints
    assert top.passed and top.margin == pytest.approx(top.score - 0.86, abs=1e-6)
    assert embedding.shape == (384,)


async def test_scores_are_sorted_and_fused(service) -> None:
    _, scores, _ = await service.match("환전", top_k=4)
    values = [s.score for s in scores]
    assert values == sorted(values, reverse=True)
    for s in scores:
        assert s.score == pytest.approx(s.dense + 0.06 * s.lexical, abs=1e-5)
    assert scores[0].lexical == pytest.approx(1.0)


async def test_closed_intents_never_appear(service) -> None:
    snap, scores, _ = await service.match("리볼빙 신청", top_k=10)
    assert 5 not in ids(snap, scores)
    snap, everything, _ = await service.match("리볼빙 신청", everything=True)
    assert ids(snap, everything)[0] == 5


async def test_area_filter(service) -> None:
    snap, scores, _ = await service.match("해외 계좌로 송금", area=Area.SUGGEST, top_k=10)
    assert set(ids(snap, scores)) == {1, 3, 4}
    snap, scores, _ = await service.match("해외 계좌로 송금", area=Area.RECO, top_k=10)
    assert 2 not in ids(snap, scores) and 3 not in ids(snap, scores)


async def test_threshold_override_beats_global_default(service) -> None:
    # The loan intent's own 0.99 refuses a related query that clears the global 0.86, while
    # intents scored lower than it pass on the global default.
    snap, scores, _ = await service.match("마이너스통장 금리", top_k=5)
    loan = next(s for s in scores if snap.intents[s.index].id == 4)
    assert loan.threshold == pytest.approx(0.99)
    assert 0.86 < loan.score < 0.99 and not loan.passed
    others = [s for s in scores if snap.intents[s.index].id != 4]
    assert all(s.threshold == pytest.approx(0.86) for s in others)
    assert any(s.passed and s.score < loan.score for s in others)
    # its own hint clears the higher bar
    snap, scores, _ = await service.match("신용대출 금리", top_k=1)
    assert ids(snap, scores) == [4] and scores[0].passed


async def test_unrelated_query_scores_below_related(service) -> None:
    _, related, _ = await service.match("달러 환전", top_k=1)
    _, unrelated, _ = await service.match("오늘 저녁 김치찌개 레시피", top_k=1)
    assert unrelated[0].score < related[0].score - 0.05


async def test_edit_builds_new_snapshot_reembedding_only_changes(service, store) -> None:
    old = service.snapshot
    cached = len(service._vectors)
    store.create(IntentIn(id=9, name="적금", hints=["매달 돈 모으기", "자유적금 가입"]))
    assert await service.refresh()
    new = service.snapshot
    assert new is not old and new.version == old.version + 1
    assert len(service._vectors) == cached + 3
    snap, scores, _ = await service.match("매달 조금씩 돈 모으고 싶어", top_k=1)
    assert ids(snap, scores) == [9]


async def test_in_flight_query_finishes_on_its_snapshot(service, store) -> None:
    old = service.snapshot
    pending = asyncio.ensure_future(service.match("돈보내기", top_k=2))
    await asyncio.sleep(0)
    store.create(IntentIn(id=8, name="돈보내기 이벤트", hints=["돈보내기"]))
    await service.refresh()
    snap, scores, _ = await pending
    assert snap is old and 8 not in ids(snap, scores)


async def test_poller_follows_the_store(service, store) -> None:
    await service.start()
    before = service.snapshot.version
    store.create(IntentIn(id=7, name="예금", hints=["정기예금 가입"]))
    for _ in range(100):
        if service.snapshot.version > before:
            break
        await asyncio.sleep(0.1)
    assert service.snapshot.version > before
