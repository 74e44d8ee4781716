"""The tier against the real engines: Milvus FLAT as the dense reference, writes followed
through announcements on the broker, a write during the load, and an alias swap."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from pymilvus import MilvusClient

from chatda.broker.kafka import make_producer
from chatda.search.articles import ArticleIndex
from chatda.search.tier.announcements import Announcer
from chatda.search.tier.follower import TierFollower
from chatda.search.tier.tier import ArticleTier
from chatda.search.tier.view import DocumentQuery, TierView
from chatda.storage.articles_schema import DENSE_DIM, article_index_params, article_schema
from chatda.storage.index_models import ServedIndex

MODEL = "test-model@1"
WORDS = ["송금", "환전", "카드", "대출", "적금", "금리", "보험", "계좌"]


def _rows(post_ids: list[str], seed: int, chunks: int = 2) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    rows = []
    for post in post_ids:
        for n in range(chunks):
            vector = rng.normal(size=DENSE_DIM).astype(np.float32)
            terms = [WORDS[i] for i in rng.integers(0, len(WORDS), size=6)]
            rows.append(
                {
                    "chunk_id": f"{post}#{n}",
                    "post_id": post,
                    "chunk_no": n,
                    "title": post,
                    "text": " ".join(terms),
                    "bm25_text": " ".join(terms),
                    "sparse": None,
                    "dense": (vector / np.linalg.norm(vector)).tolist(),
                    "series": "",
                    "category": "c",
                    "tags": [],
                    "published_at": 0,
                    "updated_at": 0,
                    "model_version": MODEL,
                }
            )
    for row in rows:
        del row["sparse"]
    return rows


def _flat_collection(client: MilvusClient) -> str:
    """An article collection whose dense index is FLAT: exact search, the reference."""
    name = f"articles__tiertest_{uuid.uuid4().hex[:8]}"
    params = article_index_params()
    flat = MilvusClient.prepare_index_params()
    for param in params:
        if param.field_name == "dense":
            flat.add_index("dense", "FLAT", "dense", metric_type="IP")
        else:
            flat.append(param)
    client.create_collection(name, schema=article_schema(), index_params=flat)
    client.load_collection(name)
    return name


@pytest.fixture
def engines(milvus_uri: str, kafka_bootstrap: str) -> Iterator[tuple[MilvusClient, ArticleIndex]]:
    client = MilvusClient(uri=milvus_uri)
    index = ArticleIndex(milvus_uri, Path("."), "unused")
    assert index.connect()
    yield client, index
    index.close()
    client.close()


def _follow(
    index: ArticleIndex, bootstrap: str, topic: str, tier: ArticleTier | None = None
) -> tuple[ArticleTier, TierFollower]:
    tier = tier or ArticleTier(index, 1 << 30, "cpu", DENSE_DIM)
    follower = TierFollower(tier, bootstrap, topic)
    follower.start()
    return tier, follower


def _wait(predicate: Callable[[], bool], timeout_s: float = 20) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def _view(tier: ArticleTier) -> TierView:
    view = tier.view_for(MODEL)
    assert view is not None
    return view


def _live(view: TierView) -> set[str]:
    return {view.columns.texts[i].chunk_id for i in np.flatnonzero(view.alive)}


def test_dense_ranking_equals_milvus_flat(engines, kafka_bootstrap: str) -> None:
    client, index = engines
    name = _flat_collection(client)
    client.insert(name, _rows([f"a{i}" for i in range(150)], seed=1))
    tier, follower = _follow(index, kafka_bootstrap, f"indexed-{uuid.uuid4().hex[:8]}")
    try:
        asyncio.run(follower.hold(ServedIndex(name, MODEL)))
        view = _view(tier)
        queries = np.random.default_rng(7).normal(size=(5, DENSE_DIM)).astype(np.float32)
        queries /= np.linalg.norm(queries, axis=1, keepdims=True)
        got = view.score(torch.as_tensor(queries), [DocumentQuery((), 20, 0)] * len(queries))
        expected = client.search(
            name,
            data=queries.tolist(),
            anns_field="dense",
            limit=20,
            search_params={"metric_type": "IP"},
            output_fields=["chunk_id"],
        )
        for hits, reference in zip(got, expected, strict=True):
            assert [h.chunk_id for h in hits.dense] == [r["chunk_id"] for r in reference]
            assert [h.score for h in hits.dense] == pytest.approx(
                [r["distance"] for r in reference], abs=1e-4
            )
    finally:
        follower.close()
        client.drop_collection(name)


def test_publish_update_and_delete_are_followed(engines, kafka_bootstrap: str) -> None:
    client, index = engines
    name = _flat_collection(client)
    client.insert(name, _rows(["keep", "change", "gone"], seed=2))
    topic = f"indexed-{uuid.uuid4().hex[:8]}"
    tier, follower = _follow(index, kafka_bootstrap, topic)
    producer = make_producer(kafka_bootstrap)
    announcer = Announcer(producer, topic)
    try:
        asyncio.run(follower.hold(ServedIndex(name, MODEL)))
        assert _view(tier).live == 6
        client.upsert(name, _rows(["new"], seed=3, chunks=3))
        client.upsert(name, _rows(["change"], seed=4, chunks=1))
        client.delete(name, ids=["change#1"])
        client.delete(name, filter='post_id == "gone"')
        announcer.announce(["new", "change", "gone"])
        _wait(lambda: "new#0" in _live(_view(tier)))
        view = _view(tier)
        assert _live(view) == {"keep#0", "keep#1", "new#0", "new#1", "new#2", "change#0"}
        assert view.articles == 3
    finally:
        producer.close()
        follower.close()
        client.drop_collection(name)


class _WritesDuringLoad(ArticleTier):
    """A worker writes (and announces) an article after the load's iterator has read past
    it, before the load is done: the worst moment. The tier must end up holding it."""

    write: Callable[[], None]

    def _read_all(self, collection: str):  # type: ignore[no-untyped-def]
        columns = super()._read_all(collection)
        self.write()
        return columns


def test_an_article_written_while_loading_is_not_missed(engines, kafka_bootstrap: str) -> None:
    client, index = engines
    name = _flat_collection(client)
    client.insert(name, _rows([f"b{i}" for i in range(20)], seed=5))
    topic = f"indexed-{uuid.uuid4().hex[:8]}"
    producer = make_producer(kafka_bootstrap)
    tier = _WritesDuringLoad(index, 1 << 30, "cpu", DENSE_DIM)

    def write() -> None:
        if tier.holding is None:  # only during the first load
            client.upsert(name, _rows(["late"], seed=6))
            Announcer(producer, topic).announce(["late"])

    tier.write = write
    tier, follower = _follow(index, kafka_bootstrap, topic, tier)
    try:
        asyncio.run(follower.hold(ServedIndex(name, MODEL)))
        _wait(lambda: "late#0" in _live(_view(tier)))
        assert _view(tier).live == 42
    finally:
        producer.close()
        follower.close()
        client.drop_collection(name)


def test_a_swap_loads_the_new_collection_and_old_views_stay_whole(
    engines, kafka_bootstrap: str
) -> None:
    client, index = engines
    old, new = _flat_collection(client), _flat_collection(client)
    client.insert(old, _rows(["o1", "o2"], seed=7))
    client.insert(new, _rows(["n1", "n2", "n3"], seed=8))
    tier, follower = _follow(index, kafka_bootstrap, f"indexed-{uuid.uuid4().hex[:8]}")
    try:
        asyncio.run(follower.hold(ServedIndex(old, MODEL)))
        before = _view(tier)
        asyncio.run(follower.hold(ServedIndex(new, MODEL)))
        after = _view(tier)
        assert (before.collection, before.live) == (old, 4)
        assert (after.collection, after.live) == (new, 6)
        assert {t.post_id for t in before.columns.texts} == {"o1", "o2"}
    finally:
        follower.close()
        client.drop_collection(old)
        client.drop_collection(new)


def test_a_collection_over_the_budget_is_left_to_milvus(engines, kafka_bootstrap: str) -> None:
    client, index = engines
    name = _flat_collection(client)
    client.insert(name, _rows([f"c{i}" for i in range(50)], seed=9))
    tier = ArticleTier(index, 64 * 1024, "cpu", DENSE_DIM)
    tier, follower = _follow(index, kafka_bootstrap, f"indexed-{uuid.uuid4().hex[:8]}", tier)
    try:
        asyncio.run(follower.hold(ServedIndex(name, MODEL)))
        assert tier.view_for(MODEL) is None
        assert tier.status.ready and "memory budget" in tier.status.detail
    finally:
        follower.close()
        client.drop_collection(name)
