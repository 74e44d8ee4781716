"""What the article index holds for given articles: their version and chunk numbers.

One read for every process that must know what is searchable: the ingest worker's version check
before a write, and the outbox reconciler's confirmation of accepted articles. Reads use Strong
consistency, so a write just acknowledged is seen (real Milvus defaults to Bounded staleness).
Chunk ``n`` of article ``p`` is always row ``p#n`` (:func:`chunk_id`), which makes ingest
idempotent.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from pymilvus import MilvusClient

from chatda.storage.filters import quote

# Milvus caps one query's result at 16384 rows. Groups of 64 articles stay under it while an
# article has fewer than 256 chunks, which a 20000-character body at 256 tokens never reaches.
_QUERY_GROUP = 64
_QUERY_LIMIT = 16384
_STRONG = "Strong"


def chunk_id(post_id: str, n: int) -> str:
    return f"{post_id}#{n}"


@dataclass(frozen=True, slots=True)
class IndexedPost:
    """What the index holds for one article right now."""

    updated_at: int
    chunk_nos: frozenset[int]

    def chunk_ids_from(self, post_id: str, first: int) -> list[str]:
        """Ids of this article's chunks numbered ``first`` and up: the surplus of a shrink."""
        return [chunk_id(post_id, n) for n in sorted(self.chunk_nos) if n >= first]


def indexed_posts(
    client: MilvusClient, collection: str, post_ids: Iterable[str]
) -> dict[str, IndexedPost]:
    """Version and chunk numbers of every given article present in ``collection``."""
    unique = sorted(set(post_ids))
    versions: dict[str, int] = {}
    numbers: dict[str, set[int]] = defaultdict(set)
    for start in range(0, len(unique), _QUERY_GROUP):
        group = unique[start : start + _QUERY_GROUP]
        rows = client.query(
            collection,
            filter=f"post_id in [{', '.join(quote(p) for p in group)}]",
            output_fields=["post_id", "chunk_no", "updated_at"],
            limit=_QUERY_LIMIT,
            consistency_level=_STRONG,
        )
        for row in rows:
            post_id, updated = row["post_id"], int(row["updated_at"])
            versions[post_id] = max(versions.get(post_id, updated), updated)
            numbers[post_id].add(int(row["chunk_no"]))
    return {p: IndexedPost(v, frozenset(numbers[p])) for p, v in versions.items()}
