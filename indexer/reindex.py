"""Blue-green re-index: a new collection built beside the live one, then one alias move.

Search and ingest keep running on the live collection throughout. The build:

1. Removes what an interrupted earlier build left (the collection behind the build alias).
2. Records the offsets the live collection's consumer group has committed: everything before
   them is in the live collection, everything from them on may not be.
3. Creates the new collection (named and tagged with the target model) behind the build alias,
   and seeds its own consumer group with those offsets.
4. Copies every row of the live collection, re-embedding each chunk with the target model and
   re-tokenising it for BM25 (chunk boundaries are kept).
5. Replays the topic from the recorded offsets into the new collection with a real ingest
   worker (a child process, group ``<ingest group>.<new collection>``) until it has caught up.
   Rows the copy read half-updated, and every update published since step 2, are applied
   again; the ingest's version guard keeps a replayed older version from overwriting a newer
   copied one. Replay, not dual-write: ingest workers never need to know a build is running,
   and a build that dies leaves nothing behind in them.
6. Verifies: every article no record since step 2 touched has the same version and chunk count
   in both collections; known queries (article titles) find their article at top-1 at least as
   often in the new collection (with the new model) as in the live one (with its model).
7. Moves the alias in one atomic alter. The ingest workers see it before their next batch and
   join the new collection's group, which continues exactly where the replay stopped; the API
   processes load the new query model and re-embed the catalog, then switch.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pymilvus import MilvusClient
from pymilvus.exceptions import MilvusException
from tqdm import tqdm

from chatda.broker.kafka import committed_lag, committed_offsets, keys_between, seed_offsets
from chatda.broker.kafka import end_offsets as topic_end_offsets
from chatda.evaluation.metrics import mrr_at, recall_at
from chatda.models.encoder import Encoder
from chatda.search.articles import ArticleIndex
from chatda.search.hits import collapse
from chatda.storage.article_rows import STORED_FIELDS, ArticleChunk, chunk_rows
from chatda.storage.articles_schema import (
    alias_target,
    collection_name,
    create_articles_collection,
    ensure_alias,
)
from chatda.storage.filters import quote
from chatda.storage.first_chunks import first_chunks
from chatda.storage.index_models import ingest_group, served_index
from chatda.text.chunker import embed_text
from chatda.text.morphemes import Morphemes

log = logging.getLogger(__name__)

BUILD_SUFFIX = "__build"
_SWAP_TRIES = 3
_SWAP_BACKOFF_S = 2.0
_POLL_S = 0.5
_SEARCH_TIMEOUT_S = 10.0
_RANK_DEPTH = 10

EncoderLoader = Callable[[str], Encoder]


class ReindexError(RuntimeError):
    """The re-index cannot go on; the live alias is untouched."""


@dataclass(frozen=True)
class ReindexOptions:
    bootstrap: str
    milvus_uri: str
    data_dir: Path
    models_dir: Path
    topic: str
    alias: str
    base_group: str
    copy_batch: int = 256
    sample_queries: int = 50
    max_top1_drop: float = 0.0
    catchup_timeout_s: float = 600.0
    force: bool = False


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


@dataclass
class ReindexReport:
    live: str
    built: str
    model_from: str
    model_to: str
    removed_interrupted: list[str]
    rows: int
    copy_s: float
    replayed_from: dict[int, int]
    total_s: float
    verification: Verification

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.copy_s if self.copy_s else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "rows_per_s": round(self.rows_per_s, 1)}

    def summary(self) -> str:
        v = self.verification
        quality = ", ".join(
            f"{leg} top-1 {v.live[leg].top1}/{v.live[leg].queries} → "
            f"{v.built[leg].top1}/{v.built[leg].queries}"
            for leg in v.live
        )
        return (
            f"{self.live} ({self.model_from}) → {self.built} ({self.model_to}): "
            f"{self.rows} rows in {self.copy_s:.1f}s ({self.rows_per_s:.0f} rows/s), "
            f"{v.articles} articles checked ({v.exempt} updated during the build); {quality}"
        )


def build_alias(alias: str) -> str:
    """The alias a build in progress sits behind: how the next run finds an interrupted one."""
    return f"{alias}{BUILD_SUFFIX}"


def remove_interrupted(client: MilvusClient, alias: str) -> list[str]:
    """Drop the collection an interrupted build left behind its build alias, and the alias.

    Must run while holding the re-index job's run guard: then no build is in progress, and
    whatever the build alias points at is a leftover. The serving collection is never dropped.
    """
    building = build_alias(alias)
    target = alias_target(client, building)
    if target is None:
        return []
    client.drop_alias(building)
    if target == alias_target(client, alias):
        return []
    client.drop_collection(target)
    log.warning("reindex removed the interrupted build %s", target)
    return [target]


def _fresh_name(client: MilvusClient, model_ref: str) -> str:
    while True:  # names have one-second resolution
        name = collection_name(model_ref, datetime.now(UTC))
        if not client.has_collection(name):
            return name
        time.sleep(0.2)


def _batches(client: MilvusClient, collection: str, size: int) -> Iterator[list[dict[str, Any]]]:
    iterator = client.query_iterator(
        collection, batch_size=size, filter="", output_fields=list(STORED_FIELDS)
    )
    try:
        while batch := iterator.next():
            yield batch
    finally:
        iterator.close()


def row_count(client: MilvusClient, collection: str) -> int:
    (row,) = client.query(
        collection, filter="", output_fields=["count(*)"], consistency_level="Strong"
    )
    return int(row["count(*)"])


def copy_collection(
    client: MilvusClient,
    source: str,
    target: str,
    encoder: Encoder,
    morphemes: Morphemes,
    batch_size: int,
) -> int:
    """Every row of ``source`` into ``target``, re-embedded and re-tokenised; returns rows."""
    total = row_count(client, source)
    copied = 0
    with tqdm(total=total, unit="row", desc=f"re-embedding into {target}") as bar:
        for batch in _batches(client, source, batch_size):
            texts = [embed_text(row["title"], row["text"]) for row in batch]
            vectors = encoder.encode(texts, "passage")
            terms = morphemes.terms_batch(texts)
            chunks = [
                ArticleChunk.stored(row, " ".join(words))
                for row, words in zip(batch, terms, strict=True)
            ]
            rows = chunk_rows(chunks, vectors, encoder.ref)
            client.upsert(target, rows)
            copied += len(rows)
            bar.update(len(rows))
    return copied


def _articles(client: MilvusClient, collection: str) -> dict[str, tuple[int, int]]:
    """post_id → (version, chunk count)."""
    counts: Counter[str] = Counter()
    versions: dict[str, int] = {}
    iterator = client.query_iterator(
        collection, batch_size=1000, filter="", output_fields=["post_id", "updated_at"]
    )
    try:
        while batch := iterator.next():
            for row in batch:
                counts[row["post_id"]] += 1
                versions[row["post_id"]] = max(versions.get(row["post_id"], 0), row["updated_at"])
    finally:
        iterator.close()
    return {p: (versions[p], n) for p, n in counts.items()}


def known_queries(client: MilvusClient, collection: str, post_ids: list[str]) -> dict[str, str]:
    """post_id → its title, for the titles no other article shares: a title two articles carry
    names neither, and which one ranks first would be a coin toss, not a quality signal."""
    rows = first_chunks(client, collection, post_ids, ["title"])
    titles = {row["post_id"]: row["title"] for row in rows if row["title"].strip()}
    if not titles:
        return {}
    wanted = ", ".join(quote(t) for t in set(titles.values()))
    carriers = Counter(
        row["title"]
        for row in client.query(
            collection, filter=f"chunk_no == 0 and title in [{wanted}]", output_fields=["title"]
        )
    )
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
        for leg, hits in (
            (
                "dense",
                index.dense(
                    vector.tolist(), _RANK_DEPTH * 4, "", {}, _SEARCH_TIMEOUT_S, collection
                ),
            ),
            (
                "bm25",
                index.bm25(
                    morphemes.joined(title), _RANK_DEPTH * 4, "", {}, _SEARCH_TIMEOUT_S, collection
                ),
            ),
        ):
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
    """Compare the build with the live collection (see the module docstring, step 6).

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


def swap(client: MilvusClient, alias: str, collection: str) -> None:
    """Move the alias, retrying a Milvus hiccup; ReindexError (alias untouched) if it stays."""
    for attempt in range(1, _SWAP_TRIES + 1):
        try:
            ensure_alias(client, alias, collection)
            return
        except MilvusException as exc:
            log.warning("reindex swap attempt %d failed: %s", attempt, exc)
            if attempt == _SWAP_TRIES:
                raise ReindexError(
                    f"Milvus refused the alias move to {collection} ({exc}); nothing was "
                    "swapped, the live collection still serves; run the re-index again"
                ) from exc
            time.sleep(_SWAP_BACKOFF_S * attempt)


class ReplayWorker:
    """``chatda ingest`` as a child process writing the build, dead letters off (the live
    workers already dead-lettered those records); it dies with its parent (PDEATHSIG), so a
    killed re-index leaves no orphan writing into a collection the next run removes."""

    def __init__(self, options: ReindexOptions, log_path: Path) -> None:
        env = {
            **os.environ,
            "CHATDA_KAFKA_BOOTSTRAP": options.bootstrap,
            "CHATDA_MILVUS_URI": options.milvus_uri,
            "CHATDA_DATA_DIR": str(options.data_dir),
            "CHATDA_MODELS_DIR": str(options.models_dir),
        }
        argv = [
            sys.executable, "-m", "cli.main", "ingest",
            "--topic", options.topic,
            "--group", options.base_group,
            "--alias", build_alias(options.alias),
            "--no-dead-letters",
        ]  # fmt: skip
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = log_path.open("ab")
        self.process = subprocess.Popen(
            argv, env=env, stdout=self._log, stderr=subprocess.STDOUT, preexec_fn=_die_with_parent
        )

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        if self.alive():
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()


def _die_with_parent() -> None:
    import ctypes

    pr_set_pdeathsig = 1
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def _wait_caught_up(options: ReindexOptions, group: str, replay: ReplayWorker) -> None:
    deadline = time.monotonic() + options.catchup_timeout_s
    while committed_lag(options.bootstrap, group, options.topic) > 0:
        if not replay.alive():
            raise ReindexError(
                f"the replay worker exited with {replay.process.returncode}; see its log"
            )
        if time.monotonic() > deadline:
            raise ReindexError(
                f"the replay did not catch up within {options.catchup_timeout_s:.0f}s"
            )
        time.sleep(_POLL_S)


def reindex(
    options: ReindexOptions,
    client: MilvusClient,
    target_ref: str,
    load_encoder: EncoderLoader,
    morphemes: Morphemes,
) -> ReindexReport:
    """Build, verify and swap (module docstring). Must run under the job's run guard.

    ``load_encoder`` must raise for a model that is not registered: the caller resolves the
    target before anything is built, so a missing model refuses at once.
    """
    started = time.monotonic()
    removed = remove_interrupted(client, options.alias)
    served = served_index(client, options.alias)
    if served is None or served.model is None:
        raise ReindexError(
            f"alias {options.alias!r} serves no collection of a known model; nothing to "
            "re-index (the first ingest worker creates it)"
        )
    built_encoder = load_encoder(target_ref)
    live_encoder = built_encoder if served.model == target_ref else load_encoder(served.model)
    live_group = ingest_group(options.base_group, served.collection)
    handoff = committed_offsets(options.bootstrap, live_group, options.topic)

    built = _fresh_name(client, target_ref)
    create_articles_collection(client, built, target_ref)
    ensure_alias(client, build_alias(options.alias), built)
    build_group = ingest_group(options.base_group, built)
    seed_offsets(options.bootstrap, build_group, options.topic, handoff)
    log.info("reindex %s → %s from offsets %s", served.collection, built, handoff)

    copy_started = time.monotonic()
    rows = copy_collection(
        client, served.collection, built, built_encoder, morphemes, options.copy_batch
    )
    copy_s = time.monotonic() - copy_started

    replay = ReplayWorker(options, options.data_dir / "logs" / f"reindex-{built}.log")
    index = ArticleIndex.over(client, options.alias)
    try:
        _wait_caught_up(options, build_group, replay)

        def touched_since() -> set[str]:
            now = topic_end_offsets(options.bootstrap, options.topic)
            keys = keys_between(options.bootstrap, options.topic, handoff, now)
            return {key.decode("utf-8", "replace") for key in keys}

        verification = verify(
            client,
            index,
            served.collection,
            built,
            live_encoder,
            built_encoder,
            morphemes,
            touched_since,
            options.sample_queries,
        )
        problems = verification.problems(options.max_top1_drop)
        if problems and not options.force:
            raise ReindexError(
                "verification failed, alias not moved: "
                + "; ".join(problems)
                + " (the build stays for inspection until the next run; --force swaps anyway)"
            )
        swap(client, options.alias, built)
    finally:
        replay.stop()
    client.drop_alias(build_alias(options.alias))
    report = ReindexReport(
        live=served.collection,
        built=built,
        model_from=served.model,
        model_to=target_ref,
        removed_interrupted=removed,
        rows=rows,
        copy_s=round(copy_s, 2),
        replayed_from=handoff,
        total_s=round(time.monotonic() - started, 2),
        verification=verification,
    )
    log.info("reindex done: %s", report.summary())
    return report
