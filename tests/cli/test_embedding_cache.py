"""The catalog's on-disk embedding cache: a second API process over the same data dir embeds no
catalog text the first one embedded, with the same model; counted in encoder passes."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np

from chatda.batching.batcher import DynamicBatcher
from chatda.catalog.embedding_cache import EmbeddingCache, model_key
from chatda.catalog.file_format import parse_catalog
from chatda.catalog.service import CatalogService
from chatda.catalog.snapshot import Fusion
from chatda.catalog.store import CatalogStore
from chatda.db.engine import make_engine, upgrade
from chatda.models.encoder import Encoder
from chatda.settings import Settings
from chatda.text.morphemes import default_morphemes

CATALOG = """\
version: 1
intents:
  - id: 1
    name: 송금
    service_id: 10
    hints: [다른 계좌나 사용자에게 돈을 보내는 기능, 이체, 계좌 송금]
  - id: 2
    parent_id: 1
    name: 해외송금
    service_id: 11
    hints: [외국에 있는 계좌로 돈 보내기, 달러 송금하기]
  - id: 3
    name: 환전
    service_id: 20
    hints: [원화를 외화로 바꾸기, 여행 경비 환전]
"""


async def build_once(store: CatalogStore, encoder: Encoder, cache: EmbeddingCache) -> np.ndarray:
    batcher = DynamicBatcher(encoder, max_batch_size=64)
    await batcher.start()
    try:
        service = CatalogService(
            store, batcher, default_morphemes(), 0.9, Fusion.from_settings(Settings()), 3.0, cache
        )
        await service.refresh()
        return service.snapshot.matrix.cpu().numpy()
    finally:
        await batcher.close()


def test_a_restart_embeds_no_catalog_text_again(tmp_path: Path, encoder: Encoder) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'store.db'}")
    upgrade(engine)
    store = CatalogStore(engine)
    store.import_intents(parse_catalog(CATALOG, "catalog.yaml"))

    first = EmbeddingCache.in_data_dir(tmp_path)
    cold = asyncio.run(build_once(store, encoder, first))
    assert first.hits == 0 and first.misses == cold.shape[0] > 5

    second = EmbeddingCache.in_data_dir(tmp_path)  # a new process: nothing in memory
    warm = asyncio.run(build_once(store, encoder, second))
    assert second.hits == cold.shape[0] and second.misses == 0
    np.testing.assert_array_equal(cold, warm)


def test_vectors_are_kept_per_model(tmp_path: Path, encoder: Encoder) -> None:
    cache = EmbeddingCache.in_data_dir(tmp_path)
    cache.put(encoder, "query", {"송금": np.ones(encoder.dim, dtype=np.float32)})
    assert set(cache.get(encoder, "query", ["송금", "환전"])) == {"송금"}
    assert cache.get(encoder, "passage", ["송금"]) == {}  # kind is part of the key

    class OtherModel:
        ref = encoder.ref
        manifest = encoder.manifest.model_copy(update={"version": "other"})
        backend = encoder.backend
        device = encoder.device
        dim = encoder.dim

    assert model_key(OtherModel()) != model_key(encoder)  # type: ignore[arg-type]
    assert cache.get(OtherModel(), "query", ["송금"]) == {}  # type: ignore[arg-type]
