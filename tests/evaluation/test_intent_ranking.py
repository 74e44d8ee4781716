"""The evaluation's ranking post-step against the rankings it replaces: the snapshot asked for
every intent (``everything=True``) and each method's list sorted from that, cut at the depth
the metrics read."""

from __future__ import annotations

import asyncio

import pytest

from chatda.catalog.calibration_fit import config_from_settings
from chatda.catalog.decision import decide
from chatda.catalog.snapshot import IntentScore
from chatda.evaluation.intent_ranking import MethodRanker, MethodRanks
from chatda.evaluation.metrics import RANK_DEPTH
from chatda.models.encoder import Encoder
from chatda.settings import Settings
from chatda.text.normalize import normalize_query
from tests.evaluation.catalog_over import catalog_over
from tests.evaluation.demo_set import demo_set

DEPTHS = (RANK_DEPTH, 3)


async def _both(encoder: Encoder) -> list[tuple[list[IntentScore], dict[int, MethodRanks]]]:
    """Per demo query: the full scored list (``everything=True``) and the rankers' answers."""
    corpus, queries = demo_set()
    settings = Settings()
    async with catalog_over(
        encoder, corpus, settings, calibration=config_from_settings(settings)
    ) as (service, batcher):
        rankers = [MethodRanker(service.snapshot, depth) for depth in DEPTHS]
        pairs = []
        for q in queries:
            text = normalize_query(q.text, 1000).text
            terms = service.morphemes.terms(text)
            _, everything, _ = await service.match(text, everything=True, terms=terms)
            cut = {}
            for ranker in rankers:
                context = ranker.context(ranker.snapshot.lexical_scores(terms))
                encoded = await batcher.submit([text], post_step=ranker, context=context)
                assert encoded.extras is not None
                cut[ranker.depth] = encoded.extras[0]
            pairs.append((everything, cut))
    return pairs


def _zero_lexical_in_cut(everything: list[IntentScore], depth: int) -> bool:
    by_lexical = sorted(everything, key=lambda s: -s.lexical)
    return sum(s.lexical == 0 for s in by_lexical[:depth]) >= 2


@pytest.mark.slow
def test_rankings_are_the_full_rankings_cut_at_the_depth(encoder: Encoder) -> None:
    pairs = asyncio.run(_both(encoder))
    for depth in DEPTHS:
        for everything, cut in pairs:
            ranks = cut[depth]
            assert len(everything) > depth  # the cut removes something
            assert ranks.fused == [s.index for s in everything[:depth]]
            assert ranks.served == everything[:depth]  # scores and confidences, not just order
            for method in ("dense", "lexical"):
                full = sorted(everything, key=lambda s, m=method: -getattr(s, m))
                assert getattr(ranks, method) == [s.index for s in full[:depth]], method
            # the served decision reads the top two and who passes among the top
            cut_answer, whole_answer = decide(ranks.served, 0.02), decide(everything, 0.02)
            assert cut_answer.decision == whole_answer.decision
            assert cut_answer.intents[:2] == whole_answer.intents[:2]
        # intents without a shared term all score 0 lexically: the cut reaches such ties, so
        # their fused order was exercised
        assert any(_zero_lexical_in_cut(everything, depth) for everything, _ in pairs)
    # the demo catalog is calibrated, so confidences were compared too
    assert all(everything[0].confidence is not None for everything, _ in pairs)
