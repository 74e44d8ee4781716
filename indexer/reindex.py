"""Blue-green re-index: a new collection built beside the live one, then one alias move.

Search and ingest keep running on the live collection throughout. The build (each step's
mechanism in its own module: ``reindex_copy``, ``reindex_replay``, ``reindex_verify``):

1. Removes what an interrupted earlier build left (the collection behind the build alias).
2. Records the offsets the live collection's consumer group has committed (the handoff):
   everything before them is in the live collection, everything from them on may not be.
3. Creates the new collection (named and tagged with the target model) behind the build alias,
   and seeds its own consumer group with the handoff.
4. Copies every row of the live collection, re-embedding each chunk with the target model and
   re-tokenising it for BM25 (chunk boundaries are kept).
5. Replays the topic from the handoff into the new collection with a real ingest worker (a
   child process, group ``<ingest group>.<new collection>``) until it has caught up.
6. Verifies: every article no record since step 2 touched has the same version and chunk count
   in both collections; known queries (article titles) find their article at top-1 at least as
   often in the new collection (with the new model) as in the live one (with its model).
7. Moves the alias in one atomic alter. The ingest workers see it before their next batch and
   join the new collection's group, which continues exactly where the replay stopped; the API
   processes load the new query model and re-embed the catalog, then switch.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pymilvus import MilvusClient
from pymilvus.exceptions import MilvusException

from chatda.models.encoder import Encoder
from chatda.search.articles import ArticleIndex
from chatda.storage.articles_schema import (
    alias_target,
    collection_name,
    create_articles_collection,
    ensure_alias,
)
from chatda.storage.index_models import ingest_group, served_index
from chatda.text.morphemes import Morphemes
from indexer.reindex_copy import copy_collection
from indexer.reindex_replay import Handoff, ReplayError, ReplayWorker, wait_caught_up
from indexer.reindex_verify import Verification, verify

log = logging.getLogger(__name__)

BUILD_SUFFIX = "__build"
_SWAP_TRIES = 3
_SWAP_BACKOFF_S = 2.0

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


def _start_replay(options: ReindexOptions, built: str) -> ReplayWorker:
    """The replay worker writing through the build alias (into ``built``), logging to the
    data dir's ``logs/reindex-<built>.log``."""
    return ReplayWorker(
        bootstrap=options.bootstrap,
        milvus_uri=options.milvus_uri,
        data_dir=options.data_dir,
        models_dir=options.models_dir,
        topic=options.topic,
        base_group=options.base_group,
        alias=build_alias(options.alias),
        log_path=options.data_dir / "logs" / f"reindex-{built}.log",
    )


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
    handoff = Handoff.record(options.bootstrap, options.topic, live_group)

    built = _fresh_name(client, target_ref)
    create_articles_collection(client, built, target_ref)
    ensure_alias(client, build_alias(options.alias), built)
    build_group = ingest_group(options.base_group, built)
    handoff.seed(build_group)
    log.info("reindex %s → %s from offsets %s", served.collection, built, handoff.offsets)

    copy_started = time.monotonic()
    rows = copy_collection(
        client, served.collection, built, built_encoder, morphemes, options.copy_batch
    )
    copy_s = time.monotonic() - copy_started

    replay = _start_replay(options, built)
    index = ArticleIndex.over(client, options.alias)
    try:
        try:
            wait_caught_up(
                replay, options.bootstrap, build_group, options.topic, options.catchup_timeout_s
            )
        except ReplayError as exc:
            raise ReindexError(str(exc)) from exc
        verification = verify(
            client,
            index,
            served.collection,
            built,
            live_encoder,
            built_encoder,
            morphemes,
            handoff.touched_since,
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
        replayed_from=handoff.offsets,
        total_s=round(time.monotonic() - started, 2),
        verification=verification,
    )
    log.info("reindex done: %s", report.summary())
    return report
