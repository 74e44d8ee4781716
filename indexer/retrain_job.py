"""The ``retrain`` job: clicks → query/document pairs → ``chatda train retrieval`` → promotion.

Training is its own process (train/ is a service of its own, never imported here): the job
exports the click pairs as the JSONL ``chatda train retrieval --feedback`` reads, runs it, and
asks ``chatda model promote`` to serve the new version, which refuses unless its KorQuAD
retrieval evaluation is at least the serving model's. A promoted model reaches the index
through the ``reindex`` job, which builds for the serving model when the alias has another.
"""

from __future__ import annotations

import json
import logging
import shlex
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from pymilvus import MilvusClient
from sqlalchemy import Engine

from chatda.feedback.store import FeedbackStore
from chatda.models.registry import ModelRegistry
from chatda.settings import Settings
from chatda.storage.first_chunks import first_chunks
from chatda.storage.milvus_client import connect
from chatda.text.chunker import embed_text

log = logging.getLogger(__name__)

JOB = "retrain"
_MAX_PAIRS = 100_000


def article_texts(client: MilvusClient, alias: str, post_ids: list[str]) -> dict[str, str]:
    """The first chunk of each article as the model read it (title + text)."""
    rows = first_chunks(client, alias, post_ids, ["title", "text"])
    return {r["post_id"]: embed_text(r["title"], r["text"]) for r in rows}


def export_pairs(settings: Settings, clicks: list[tuple[str, str]], path: Path) -> int:
    """Write the click pairs whose article is in the index; returns how many."""
    client = connect(settings.milvus_uri, settings.data_dir)
    try:
        texts = article_texts(client, settings.articles_alias, sorted({c for _, c in clicks}))
    finally:
        client.close()
    pairs = [(q, texts[c]) for q, c in clicks if c in texts]  # intent clicks have no article
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as out:
        for query, positive in pairs:
            out.write(json.dumps({"query": query, "positive": positive}, ensure_ascii=False))
            out.write("\n")
    return len(pairs)


def _chatda(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cli.main", *args], capture_output=True, text=True)


def retrain(settings: Settings, engine: Engine) -> str:
    """Train on the clicks if there are enough of them; the run's detail says what happened."""
    least = settings.retrain_min_pairs
    clicks = FeedbackStore(engine).click_pairs(_MAX_PAIRS)
    if len(clicks) < least:  # decided before the index is even opened
        return f"skipped: {len(clicks)} click pairs, fewer than {least}"
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    pairs_file = settings.data_dir / "retrain" / f"clicks-{stamp}.jsonl"
    count = export_pairs(settings, clicks, pairs_file)
    if count < least:
        return f"skipped: {count} click pairs on indexed articles, fewer than {least}"
    registry = ModelRegistry(settings.models_dir)
    before = {v.manifest.ref for v in registry.versions(settings.model_name)}
    trained = _chatda(
        "train", "retrieval", "--feedback", str(pairs_file), *shlex.split(settings.retrain_args)
    )
    if trained.returncode != 0:
        raise RuntimeError(f"chatda train retrieval failed: {trained.stderr[-2000:]}")
    new = sorted({v.manifest.ref for v in registry.versions(settings.model_name)} - before)
    if len(new) != 1:
        raise RuntimeError(f"expected one new model version, found {new}")
    promoted = _chatda("model", "promote", new[0])
    verdict = " ".join(promoted.stdout.split())
    if promoted.returncode != 0:
        return f"{count} click pairs → {new[0]}, not promoted: {verdict}"
    return f"{count} click pairs → {new[0]}: {verdict}"
