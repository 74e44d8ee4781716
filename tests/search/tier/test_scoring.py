"""The tier's scores against the references: BM25Okapi (rank-bm25) and an exact dense search."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from rank_bm25 import BM25Okapi

from chatda.search.tier.columns import ChunkColumns
from chatda.search.tier.view import DocumentQuery, TierView

VOCAB = ["송금", "계좌", "이체", "카드", "대출", "금리", "적금", "환전", "수수료", "한도", "보험"]
DIM = 16


def _rows(n: int, seed: int, post_prefix: str = "p") -> list[dict]:
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        vector = np.asarray([rng.gauss(0, 1) for _ in range(DIM)], dtype=np.float32)
        terms = [rng.choice(VOCAB) for _ in range(rng.randint(1, 12))]
        post = f"{post_prefix}{i // 3}"
        rows.append(
            {
                "chunk_id": f"{post}#{i % 3}",
                "post_id": post,
                "chunk_no": i % 3,
                "title": f"title {post}",
                "text": " ".join(terms),
                "bm25_text": " ".join(terms),
                "dense": vector / np.linalg.norm(vector),
                "category": rng.choice(["bank", "card"]),
                "series": rng.choice(["", "guide"]),
                "tags": rng.sample(["a", "b", "c"], rng.randint(0, 2)),
                "published_at": rng.randint(0, 1000),
            }
        )
    return rows


def _live(columns: ChunkColumns) -> list[int]:
    return [i for i in range(columns.size) if columns.alive.buffer[i]]


def _reference_bm25(columns: ChunkColumns, query: list[str]) -> dict[str, float]:
    live = _live(columns)
    okapi = BM25Okapi([list(columns.texts[i].terms) for i in live])
    scores = okapi.get_scores(query)
    return {columns.texts[i].chunk_id: float(s) for i, s in zip(live, scores, strict=True)}


def _columns(rows: list[dict]) -> ChunkColumns:
    columns = ChunkColumns(DIM, "cpu", "test", capacity=4)
    columns.append(rows)
    return columns


@pytest.mark.parametrize("query", [["송금"], ["송금", "송금", "계좌"], ["보험", "환전", "없는말"]])
def test_bm25_equals_bm25okapi_before_and_after_updates_and_deletes(query: list[str]) -> None:
    columns = _columns(_rows(90, seed=1))
    for step in range(3):
        view = TierView(columns, step)
        scores = view.bm25_scores(query)
        expected = _reference_bm25(columns, query)
        got = {columns.texts[r].chunk_id: scores[r] for r in range(view.n) if view.alive[r]}
        assert len(got) == len(expected)
        for chunk, score in expected.items():
            assert got.get(chunk, 0.0) == pytest.approx(score, rel=1e-9, abs=1e-12)
        # an update (fewer chunks, new terms) and a delete change N, df and avgdl
        columns.replace([f"p{step}"], _rows(2, seed=10 + step, post_prefix=f"p{step}-")[:1])
        columns.replace([f"p{step + 10}"], [])


def test_bm25_top_chunks_are_the_reference_top_chunks_within_the_filter() -> None:
    rows = _rows(120, seed=2)
    columns = _columns(rows)
    view = TierView(columns, 1)
    query = DocumentQuery(("카드", "한도"), dense_depth=0, bm25_depth=10, category=("card",))
    hits = view.score(None, [query])[0].bm25
    category = {r["chunk_id"]: r["category"] for r in rows}
    expected = sorted(
        (
            (-s, c)
            for c, s in _reference_bm25(columns, list(query.terms)).items()
            if s > 0 and category[c] == "card"
        )
    )[:10]
    assert [h.chunk_id for h in hits] == [c for _, c in expected]
    assert [h.score for h in hits] == pytest.approx([-s for s, _ in expected])
    assert {h.category for h in hits} == {"card"}


@pytest.mark.parametrize("path", ["cpu", "device-fp32", "device-fp16"])
def test_dense_top_chunks_equal_an_exact_search_with_masks(path: str) -> None:
    """``cpu``: the numpy path a CPU serves. ``device-*``: the torch path a CUDA device serves
    (one product, ``masked_fill_``, ``topk``), run on the CPU because no GPU is here: the
    view's CPU path is swapped for it, and ``fp16`` holds the columns in half precision as
    ``ChunkColumns`` does on CUDA. Half precision may reorder near-ties, so there the scores
    are compared, not the order."""
    rows = _rows(150, seed=3)
    columns = _columns(rows)
    columns.replace(["p4"], [])
    if path == "device-fp16":
        columns.dtype = torch.float16
        columns.dense = columns.dense.half()
    view = TierView(columns, 1)
    if path != "cpu":
        view._dense_top_cpu = view._dense_top_device  # type: ignore[method-assign]
    rng = np.random.default_rng(0)
    queries = rng.normal(size=(4, DIM)).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    asks = [
        DocumentQuery((), dense_depth=7, bm25_depth=0),
        DocumentQuery((), dense_depth=5, bm25_depth=0, tags=("a",), published_from=200),
        DocumentQuery((), dense_depth=9, bm25_depth=0, series=("guide",), published_to=600),
        DocumentQuery((), dense_depth=9, bm25_depth=0, published_from=960),  # fewer than 9 left
    ]
    got = view.score(torch.as_tensor(queries), asks)
    matrix = np.stack([np.asarray(r["dense"]) for r in rows])
    for q, ask, hits in zip(queries, asks, got, strict=True):
        allowed = [
            i
            for i, r in enumerate(rows)
            if r["post_id"] != "p4"
            and (not ask.tags or set(ask.tags) & set(r["tags"]))
            and (ask.published_from is None or r["published_at"] >= ask.published_from)
            and (ask.published_to is None or r["published_at"] <= ask.published_to)
            and (not ask.series or r["series"] in ask.series)
        ]
        sims = matrix[allowed] @ q
        assert len(hits.dense) == min(ask.dense_depth, len(allowed))
        best = [rows[allowed[i]]["chunk_id"] for i in np.argsort(-sims)[: ask.dense_depth]]
        tolerance = 1e-5 if path != "device-fp16" else 2e-3
        assert [h.score for h in hits.dense] == pytest.approx(
            sorted(sims, reverse=True)[: ask.dense_depth], abs=tolerance
        )
        if path != "device-fp16":
            assert [h.chunk_id for h in hits.dense] == best
        else:  # every hit is allowed, and scores what it should
            exact = {rows[i]["chunk_id"]: float(v) for i, v in zip(allowed, sims, strict=True)}
            assert all(h.score == pytest.approx(exact[h.chunk_id], abs=2e-3) for h in hits.dense)


def test_a_view_keeps_its_state_while_writes_go_on() -> None:
    columns = _columns(_rows(30, seed=4))
    before = TierView(columns, 1)
    old = before.score(None, [DocumentQuery(("송금",), 0, 50)])[0].bm25
    columns.replace(["p0", "p1"], _rows(600, seed=5, post_prefix="n"))  # grows every buffer
    again = before.score(None, [DocumentQuery(("송금",), 0, 50)])[0].bm25
    assert [(h.chunk_id, h.score) for h in again] == [(h.chunk_id, h.score) for h in old]
    after = TierView(columns, 2)
    assert not {"p0", "p1"} & {
        h.post_id for h in after.score(None, [DocumentQuery(("송금",), 0, 500)])[0].bm25
    }


def test_compaction_keeps_the_live_chunks_and_their_scores() -> None:
    columns = _columns(_rows(60, seed=6))
    for i in range(15):
        columns.replace([f"p{i}"], [])
    view = TierView(columns, 1)
    compact = TierView(columns.compacted(), 2)
    assert compact.n == view.live
    query = DocumentQuery(("계좌", "이체"), 0, 100)
    a = view.score(None, [query])[0].bm25
    b = compact.score(None, [query])[0].bm25
    assert [(h.chunk_id, round(h.score, 9), h.category, h.series) for h in a] == [
        (h.chunk_id, round(h.score, 9), h.category, h.series) for h in b
    ]
