"""Re-index step 6: is the build as good as the live collection, before the alias moves?

Two checks. Every article that no record published since the handoff touched must have the same
version and chunk count in both collections (the copy and the replay lost or duplicated
nothing). Known queries, titles that name exactly one article, must find their article at top-1
at least as often in the build (with the target model) as in the live collection (with its
model), on both document legs: a model that ranks worse is caught before users see it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from pymilvus import MilvusClient

from chatda.evaluation.metrics import mrr_at, recall_at
from chatda.models.encoder import Encoder
from chatda.search.articles import ArticleIndex
from chatda.search.hits import collapse
from chatda.storage.first_chunks import first_chunks
from chatda.storage.scan import scan
from chatda.text.morphemes import Morphemes

_SEARCH_TIMEOUT_S = 10.0
_RANK_DEPTH = 10


@dataclass
class LegQuality:
    queries: int = 0
    top1: int = 0
    mrr: float = 0.0

    @property
    def top1_rate(self) -> float:
        return self.top1 / self.queries if self.queries else 0.0


@dataclass
class Verification:
    articles: int = 0
    exempt: int = 0
    mismatched: list[str] = field(default_factory=list)
    live: dict[str, LegQuality] = field(default_factory=dict)
    built: dict[str, LegQuality] = field(default_factory=dict)

    def problems(self, max_top1_drop: float) -> list[str]:
        found = []
        if self.mismatched:
            found.append(
                f"{len(self.mismatched)} articles differ in version or chunk count "
                f"(e.g. {', '.join(self.mismatched[:5])})"
            )
        for leg, live in self.live.items():
            built = self.built[leg]
            if built.top1_rate < live.top1_rate - max_top1_drop:
                found.append(
                    f"{leg}: known queries at top-1 fell from {live.top1}/{live.queries} "
                    f"to {built.top1}/{built.queries}"
                )
        return found


def _articles(client: MilvusClient, collection: str) -> dict[str, tuple[int, int]]:
    """post_id → (version, chunk count)."""
    counts: Counter[str] = Counter()
    versions: dict[str, int] = {}
    for batch in scan(client, collection, ["post_id", "updated_at"]):
        for row in batch:
            counts[row["post_id"]] += 1
            versions[row["post_id"]] = max(versions.get(row["post_id"], 0), row["updated_at"])
    return {p: (versions[p], n) for p, n in counts.items()}


def known_queries(client: MilvusClient, collection: str, post_ids: list[str]) -> dict[str, str]:
    """post_id → its title, for the titles no other article shares: a title two articles carry
    names neither, and which one ranks first would be a coin toss, not a quality signal.

    The carriers are counted by reading every first chunk's title, not by a filter on the
    titles: a title is the publisher's text, and a filter value cannot be any text (``quote``
    refuses over 256 characters and characters such as U+E000), so a filter made one accepted
    article fail every re-index. The read costs one row per article, less than the version
    check's read of every chunk.
    """
    rows = first_chunks(client, collection, post_ids, ["title"])
    titles = {row["post_id"]: row["title"] for row in rows if row["title"].strip()}
    wanted = set(titles.values())
    carriers: Counter[str] = Counter()
    for batch in scan(client, collection, ["title"], filter="chunk_no == 0") if wanted else ():
        carriers.update(row["title"] for row in batch if row["title"] in wanted)
    return {p: t for p, t in titles.items() if carriers[t] == 1}


def _quality(
    index: ArticleIndex,
    collection: str,
    encoder: Encoder,
    morphemes: Morphemes,
    queries: dict[str, str],
) -> dict[str, LegQuality]:
    """Top-1 and MRR@10 of known queries (title → its article) on both document legs."""
    titles = list(queries.values())
    vectors = encoder.encode(titles, "query")
    legs = {"dense": LegQuality(), "bm25": LegQuality()}
    for (post_id, title), vector in zip(queries.items(), vectors, strict=True):
        found = {
            "dense": index.dense(
                vector.tolist(), _RANK_DEPTH * 4, "", {}, _SEARCH_TIMEOUT_S, collection
            )
        }
        terms = morphemes.joined(title)
        if terms:  # a title BM25 can match nothing of ("★★★") is skipped, as a search skips it
            found["bm25"] = index.bm25(
                terms, _RANK_DEPTH * 4, "", {}, _SEARCH_TIMEOUT_S, collection
            )
        for leg, hits in found.items():
            ranked = [a.chunk.post_id for a in collapse(hits)][:_RANK_DEPTH]
            quality = legs[leg]
            quality.queries += 1
            quality.top1 += int(recall_at(ranked, {post_id}, 1))
            quality.mrr += mrr_at(ranked, {post_id}, _RANK_DEPTH)
    for quality in legs.values():
        quality.mrr = round(quality.mrr / quality.queries, 4) if quality.queries else 0.0
    return legs


def verify(
    client: MilvusClient,
    index: ArticleIndex,
    live: str,
    built: str,
    live_encoder: Encoder,
    built_encoder: Encoder,
    morphemes: Morphemes,
    touched_since: Callable[[], set[str]],
    sample: int,
) -> Verification:
    """Compare the build with the live collection (module docstring).

    ``touched_since`` names the articles of every record published since the handoff; it is
    called after both collections were read, so whatever either had applied is covered.
    """
    old, new = _articles(client, live), _articles(client, built)
    touched = touched_since()
    stable = sorted(p for p in old.keys() | new.keys() if p not in touched)
    result = Verification(articles=len(stable), exempt=len(touched & (old.keys() | new.keys())))
    result.mismatched = [p for p in stable if old.get(p) != new.get(p)]
    step = max(1, len(stable) // max(sample, 1))
    sampled = [p for p in stable[::step][:sample] if p in old and p in new]
    queries = known_queries(client, live, sampled)
    result.live = _quality(index, live, live_encoder, morphemes, queries)
    result.built = _quality(index, built, built_encoder, morphemes, queries)
    return result
