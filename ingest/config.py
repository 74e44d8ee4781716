"""Everything one ingest worker needs to know, resolved once from settings and CLI options.

Topic, group and alias are parameters rather than settings lookups so tests, benchmarks and a
re-index can run a worker against their own names next to the production one. ``group_id`` is
the base name: the worker consumes as ``<group_id>.<collection>`` (``chatda.storage.index_models``).
A re-index replay has no dead-letter topic: the live workers dead-lettered those records already.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from chatda.settings import Settings


@dataclass(frozen=True)
class WorkerConfig:
    bootstrap: str
    milvus_uri: str | None
    data_dir: Path
    topic: str
    dead_letter_topic: str | None
    indexed_topic: str
    """Where each written batch's post ids are announced (API replicas' article tiers)."""
    group_id: str
    alias: str
    partitions: int
    batch_size: int
    chunk_max_tokens: int
    overlap_sentences: int
    max_text_chars: int
    poll_timeout_ms: int = 500

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> WorkerConfig:
        """Settings, with every override that is not None taking precedence."""
        if not settings.kafka_bootstrap:
            raise ValueError("no Kafka broker configured (set CHATDA_KAFKA_BOOTSTRAP)")
        config = cls(
            bootstrap=settings.kafka_bootstrap,
            milvus_uri=settings.milvus_uri,
            data_dir=settings.data_dir,
            topic=settings.articles_topic,
            dead_letter_topic=settings.dead_letter_topic,
            indexed_topic=settings.articles_indexed_topic,
            group_id=settings.ingest_group_id,
            alias=settings.articles_alias,
            partitions=settings.article_partitions,
            batch_size=settings.ingest_batch_size,
            chunk_max_tokens=settings.chunk_max_tokens,
            overlap_sentences=settings.chunk_overlap_sentences,
            max_text_chars=settings.max_text_chars,
        )
        return replace(config, **{k: v for k, v in overrides.items() if v is not None})
