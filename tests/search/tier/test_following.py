"""The tier against the real engines: Milvus FLAT as the dense reference, writes followed
through announcements on the broker, a write during the load, an alias swap, and ids that
Milvus cannot be asked about."""

from __future__ import annotations

import asyncio
import logging
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
from chatda.search.tier import tier as tier_module
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


def _top_dense(view: TierView, row: dict[str, Any]) -> str:
    """The post_id the tier's dense leg ranks first for ``row``'s own vector: the article
    reaches search when it comes first for itself."""
    query = torch.as_tensor([row["dense"]], dtype=torch.float32)
    (hits,) = view.score(query, [DocumentQuery((), 1, 0)])
    return hits.dense[0].post_id


def test_a_poison_announcement_never_blocks_later_writes(
    engines, kafka_bootstrap: str, caplog: pytest.LogCaptureFixture
) -> None:
    """An announcement with an id no article can have (here "") once stopped the tier for
    good: the whole pending set failed to fetch every second and later writes never applied."""
    client, index = engines
    name = _flat_collection(client)
    client.insert(name, _rows(["ann-before", "other"], seed=10))
    topic = f"indexed-{uuid.uuid4().hex[:8]}"
    tier, follower = _follow(index, kafka_bootstrap, topic)
    producer = make_producer(kafka_bootstrap)
    try:
        asyncio.run(follower.hold(ServedIndex(name, MODEL)))
        with caplog.at_level(logging.WARNING, logger="chatda.search.tier"):
            producer.send(topic, b'{"post_ids": ["", "ann-before"]}').get(timeout=10)
            after = _rows(["ann-after"], seed=11)
            client.upsert(name, after)
            Announcer(producer, topic).announce(["ann-after"])
            _wait(lambda: "ann-after#0" in _live(_view(tier)))
        assert _top_dense(_view(tier), after[1]) == "ann-after"
        dropped = [r.getMessage() for r in caplog.records if "no article can have" in r.message]
        assert len(dropped) == 1 and "''" in dropped[0]
    finally:
        producer.close()
        follower.close()
        client.drop_collection(name)


@pytest.mark.parametrize("poison", ["", "x" * 300, "bad\x00id", "a\ue000b"])
def test_an_id_milvus_cannot_be_asked_about_is_skipped_not_retried(
    engines, poison: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Past the announcement's check (an older worker, a bug): the tier isolates the id it
    cannot fetch, applies the rest, and names the one it skipped."""
    client, index = engines
    name = _flat_collection(client)
    client.insert(name, _rows(["kept"], seed=12))
    tier = ArticleTier(index, 1 << 30, "cpu", DENSE_DIM)
    try:
        tier.load(ServedIndex(name, MODEL))
        fresh = _rows([f"fresh{i}" for i in range(70)], seed=13)  # more than one fetch group
        client.upsert(name, fresh)
        with caplog.at_level(logging.WARNING, logger="chatda.search.tier"):
            tier.apply([poison, *(f"fresh{i}" for i in range(70))])
        view = _view(tier)
        assert view.live == 2 + 140
        assert _top_dense(view, fresh[-1]) == "fresh69"
        assert any(repr(poison)[:80] in r.getMessage() for r in caplog.records)
    finally:
        client.drop_collection(name)


def test_an_unreachable_collection_keeps_the_ids_for_a_retry(engines) -> None:
    """Skipping is only for an id Milvus answers others about: when nothing answers (Milvus
    restarting, the collection gone) every id stays pending, or the write would be lost."""
    client, index = engines
    name = _flat_collection(client)
    client.insert(name, _rows(["kept"], seed=14))
    tier = ArticleTier(index, 1 << 30, "cpu", DENSE_DIM)
    tier.load(ServedIndex(name, MODEL))
    client.drop_collection(name)
    with pytest.raises(Exception):  # noqa: B017 - whatever the client raises for it
        tier.apply(["kept", "new"])
    assert _view(tier).live == 2


def test_a_fetch_that_reaches_the_row_limit_is_split(
    engines, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A query returns at most a limit of rows (16384 in Milvus): a group of articles with
    more chunks than that came back cut, and the cut articles lost chunks. The limit is
    lowered here so that a few articles reach it."""
    client, index = engines
    name = _flat_collection(client)
    tier = ArticleTier(index, 1 << 30, "cpu", DENSE_DIM)
    monkeypatch.setattr(tier_module, "_FETCH_LIMIT", 5)
    try:
        tier.load(ServedIndex(name, MODEL))
        client.insert(name, _rows([f"long{i}" for i in range(4)], seed=15, chunks=3))
        tier.apply([f"long{i}" for i in range(4)])
        assert _view(tier).live == 12
    finally:
        client.drop_collection(name)


class _CountingReads(ArticleTier):
    reads = 0

    def _read_all(self, collection: str):  # type: ignore[no-untyped-def]
        self.reads += 1
        return super()._read_all(collection)


def test_a_collection_over_the_budget_is_read_once(engines, kafka_bootstrap: str) -> None:
    """Left to Milvus means left: the follower once read the whole collection again on every
    poll (about ten times a second), since a tier that holds nothing still wanted it."""
    client, index = engines
    name = _flat_collection(client)
    client.insert(name, _rows([f"c{i}" for i in range(50)], seed=16))
    tier = _CountingReads(index, 64 * 1024, "cpu", DENSE_DIM)
    tier, follower = _follow(index, kafka_bootstrap, f"indexed-{uuid.uuid4().hex[:8]}", tier)
    try:
        asyncio.run(follower.hold(ServedIndex(name, MODEL)))
        time.sleep(2)
        assert tier.reads == 1
        assert tier.view_for(MODEL) is None
    finally:
        follower.close()
        client.drop_collection(name)
