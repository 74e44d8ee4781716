"""The tier's top chunks equal the references on a corpus where its shortcuts all engage:
common terms as dense weight vectors (and past their cap), rare ones as posting lists, a
sampled lower bound on the top scores, masks, deletes, and score arrays reused across queries;
and dense top chunks, scored into a reused array, never retired or filtered out."""

from __future__ import annotations

import random
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch
from rank_bm25 import BM25Okapi

from chatda.search.tier import view as view_module
from chatda.search.tier.columns import ChunkColumns
from chatda.search.tier.view import DocumentQuery, TierView

DIM = 4
WORDS = [f"w{i}" for i in range(400)]
ZIPF = [1 / (i + 1) ** 1.1 for i in range(len(WORDS))]


def _columns(n: int, seed: int, deletes: bool = True) -> ChunkColumns:
    rng = random.Random(seed)
    columns = ChunkColumns(DIM, "cpu", "test", capacity=8)
    rows = []
    for i in range(n):
        terms = rng.choices(WORDS, weights=ZIPF, k=rng.randint(3, 40))
        rows.append(
            {
                "chunk_id": f"p{i // 2}#{i % 2}",
                "post_id": f"p{i // 2}",
                "chunk_no": i % 2,
                "title": "",
                "text": "",
                "bm25_text": " ".join(terms),
                "dense": np.ones(DIM, dtype=np.float32) / 2,
                "category": rng.choice(["bank", "card", "loan"]),
                "series": "",
                "tags": [],
                "published_at": i,
            }
        )
    columns.append(rows)
    for post in rng.sample(
        range(n // 2), n // 20 if deletes else 0
    ):  # deleted: df, N and avgdl change
        columns.replace([f"p{post}"], [])
    return columns


def _expected(columns: ChunkColumns, query: DocumentQuery, depth: int) -> list[tuple[str, float]]:
    live = [i for i in range(columns.size) if columns.alive.buffer[i]]
    okapi = BM25Okapi([list(columns.texts[i].terms) for i in live])
    scores = okapi.get_scores(list(query.terms))
    category = columns.categories.values
    kept = [
        (float(s), i)
        for i, s in zip(live, scores, strict=True)
        if s > 0
        and (not query.category or category[int(columns.category.buffer[i])] in query.category)
    ]
    kept.sort(key=lambda p: (-p[0], p[1]))
    return [(columns.texts[i].chunk_id, s) for s, i in kept[:depth]]


def _queries(seed: int) -> list[DocumentQuery]:
    rng = random.Random(seed)
    queries = []
    for i in range(40):
        terms = tuple(
            rng.choice([rng.choice(WORDS[:5]), rng.choice(WORDS[100:]), "absent"])
            for _ in range(rng.randint(1, 4))
        )
        depth = rng.choice([1, 5, 20, 300])
        category = ("card",) if i % 3 == 0 else ()
        queries.append(DocumentQuery(terms, 0, depth, category=category))
    return queries


def _assert_top(view: TierView, columns: ChunkColumns, query: DocumentQuery) -> None:
    hits = view.bm25(query, view.mask(query))
    expected = _expected(columns, query, query.bm25_depth)
    # equal scores may come in either order at the depth's edge: compare scores, then ids
    assert [h.score for h in hits] == pytest.approx([s for _, s in expected], rel=1e-9)
    reference = dict(_expected(columns, query, columns.size))
    for hit in hits:
        assert hit.score == pytest.approx(reference[hit.chunk_id], rel=1e-9)
    assert len({h.chunk_id for h in hits}) == len(hits)


@pytest.mark.parametrize("deletes", [False, True])
def test_top_chunks_equal_bm25okapi_with_dense_and_sparse_terms(deletes: bool) -> None:
    columns = _columns(800, seed=1, deletes=deletes)
    view = TierView(columns, 1)
    for query in _queries(seed=2):
        _assert_top(view, columns, query)
    common = [t for t in WORDS[:5] if isinstance(view._term_weights(t), np.ndarray)]
    rare = [t for t in WORDS[100:] if isinstance(view._term_weights(t), tuple)]
    assert common and rare  # both representations were exercised


def test_top_chunks_equal_bm25okapi_past_the_dense_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(view_module, "_DENSE_TERMS", 1)
    columns = _columns(800, seed=3)
    view = TierView(columns, 1)
    for query in _queries(seed=4):
        _assert_top(view, columns, query)
    dense = [t for t in WORDS if isinstance(view._weights.get(t), np.ndarray)]
    assert len(dense) == 1
    assert view.cache_nbytes >= 8 * view.n * 2  # the dense vector and a score array


def test_concurrent_scorers_get_their_own_score_arrays() -> None:
    columns = _columns(600, seed=5)
    view = TierView(columns, 1)
    queries = _queries(seed=6)
    alone = [[(h.chunk_id, h.score) for h in view.bm25(q, view.mask(q))] for q in queries]
    with ThreadPoolExecutor(4) as pool:
        together = list(pool.map(lambda q: view.bm25(q, view.mask(q)), queries * 5))
    assert [[(h.chunk_id, h.score) for h in hits] for hits in together] == alone * 5


def test_dense_top_chunks_skip_retired_and_filtered_rows() -> None:
    columns = _columns(300, seed=7, deletes=False)
    rng = np.random.default_rng(1)
    vectors = rng.normal(size=(300, DIM)).astype(np.float32)
    columns.dense[:300] = torch.as_tensor(vectors / np.linalg.norm(vectors, axis=1)[:, None])
    retired, filtered = columns.texts[10], columns.texts[21]
    columns.replace([retired.post_id], [])
    view = TierView(columns, 1)
    queries = torch.stack([columns.dense[10], columns.dense[21], columns.dense[21]])
    other = "bank" if columns.category.buffer[21] != columns.categories.ids["bank"] else "card"
    asks = [
        DocumentQuery((), 5, 0),
        DocumentQuery((), 5, 0),
        DocumentQuery((), 5, 0, category=(other,)),
    ]
    got = [[h.chunk_id for h in hits.dense] for hits in view.score(queries, asks)]
    assert retired.chunk_id not in got[0]
    assert got[1][0] == filtered.chunk_id  # the same vector, unfiltered: first
    assert filtered.chunk_id not in got[2]
