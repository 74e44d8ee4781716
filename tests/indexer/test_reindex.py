"""Blue-green re-index against the real broker, milvus-lite, model and API.

One module-wide scene: a live ingest worker (thread) and an API process (TestClient) over a
private topic and alias. A second model version is registered (the base weights hard-linked
under another version), so the re-index moves the index to another model and the test can see
the API and the worker follow it. Tests run in order: the swap under load, then a rollback,
then an interrupted build, each starting from the state the previous one left.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pymilvus import MilvusClient

from chatda.articles.message import ArticleMessage
from chatda.articles.progress import wait_until_indexed
from chatda.articles.publisher import Publisher
from chatda.db.engine import make_engine, upgrade
from chatda.models.encoder import Encoder, encoder_loader
from chatda.models.registry import ModelNotFound, ModelRegistry, ModelVersion
from chatda.settings import Settings, get_settings
from chatda.storage.articles_schema import alias_target, list_article_collections
from chatda.storage.index_models import collection_model, ingest_group
from indexer import history
from indexer.collections import rollback
from indexer.reindex import build_alias
from indexer.reindex_job import run_guarded
from indexer.scheduler import run_named_job
from ingest.worker import IngestWorker
from query.app import create_app
from tests.fixtures.model import link_model
from tests.ingest.helpers import (
    REPO,
    TEST_CHUNK_TOKENS,
    TEST_MAX_TEXT_CHARS,
    Names,
    WorkerThread,
    chunk_counts,
    code,
    expected_chunks,
    sample_article,
    worker_config,
)
from tests.search.conftest import make_settings, wait_until_ready

PREFIX = "rx"
FIRST = 40


@pytest.fixture(scope="module")
def second_model(models_dir: Path, base_model: ModelVersion) -> Iterator[str]:
    """``e5-small-ko@reindex-<tag>``: the base weights under another version (hard links),
    removed from the session registry after the module."""
    registry = ModelRegistry(models_dir)
    manifest = link_model(registry, base_model, f"reindex-{uuid.uuid4().hex[:6]}")
    yield manifest.ref
    shutil.rmtree(registry.get(manifest.name, manifest.version).path)


@pytest.fixture(scope="module")
def names() -> Names:
    return Names.fresh("reindex")


@pytest.fixture(scope="module")
def env(
    kafka_bootstrap: str, milvus_uri: str, models_dir: Path, names: Names, tmp_path_factory
) -> Iterator[dict[str, str]]:
    """The operator's environment: what `chatda index reindex` and its replay child read."""
    data = tmp_path_factory.mktemp("reindex")
    values = {
        "CHATDA_DATA_DIR": str(data),
        "CHATDA_MODELS_DIR": str(models_dir),
        "CHATDA_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "CHATDA_MILVUS_URI": milvus_uri,
        "CHATDA_ARTICLES_TOPIC": names.topic,
        "CHATDA_DEAD_LETTER_TOPIC": names.dead_letter_topic,
        "CHATDA_ARTICLES_ALIAS": names.alias,
        "CHATDA_INGEST_GROUP_ID": names.group_id,
        "CHATDA_CHUNK_MAX_TOKENS": str(TEST_CHUNK_TOKENS),
        "CHATDA_MAX_TEXT_CHARS": str(TEST_MAX_TEXT_CHARS),
        "CHATDA_DEVICE": "cpu",
        "CHATDA_CPU_THREADS": "1",
    }
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    get_settings.cache_clear()
    yield values
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    get_settings.cache_clear()


@pytest.fixture(scope="module")
def settings(env: dict[str, str]) -> Settings:
    return get_settings()


@pytest.fixture(scope="module")
def milvus(milvus_uri: str) -> Iterator[MilvusClient]:
    client = MilvusClient(uri=milvus_uri)
    yield client
    client.close()


@pytest.fixture(scope="module")
def live_worker(
    settings: Settings, encoder: Encoder, names: Names, models_dir: Path
) -> Iterator[WorkerThread]:
    config = worker_config(
        settings.kafka_bootstrap, settings.milvus_uri, settings.data_dir, names, batch_size=16
    )
    cpu = settings.model_copy(update={"device": "cpu", "cpu_threads": 1})
    load = encoder_loader(ModelRegistry(models_dir), cpu)
    with WorkerThread(IngestWorker(config, encoder, load_encoder=load)) as running:
        yield running


@pytest.fixture(scope="module")
def publisher(settings: Settings) -> Iterator[Publisher]:
    assert settings.kafka_bootstrap
    with Publisher(settings.kafka_bootstrap, settings.articles_topic, 4) as p:
        yield p


@pytest.fixture(scope="module")
def api(settings: Settings, models_dir: Path, names: Names) -> Iterator[TestClient]:
    (settings.data_dir / "api").mkdir(exist_ok=True)
    app_settings = make_settings(
        settings.data_dir / "api",
        models_dir,
        milvus_uri=settings.milvus_uri,
        articles_alias=names.alias,
        index_follow_s=0.5,
        # the article tier follows what the live worker announces
        kafka_bootstrap=settings.kafka_bootstrap,
        articles_indexed_topic=f"{names.topic}-indexed",
    )
    with TestClient(create_app(app_settings)) as client:
        wait_until_ready(client, titles=False)
        yield client


@pytest.fixture(scope="module")
def published(
    live_worker: WorkerThread,
    publisher: Publisher,
    settings: Settings,
    milvus: MilvusClient,
    names: Names,
) -> dict[str, ArticleMessage]:
    messages = [sample_article(i, PREFIX) for i in range(FIRST)]
    publisher.publish_many(messages)
    settle(settings, milvus, names)
    return {m.post_id: m for m in messages}


def settle(settings: Settings, milvus: MilvusClient, names: Names) -> None:
    assert settings.kafka_bootstrap
    wait_until_indexed(
        settings.kafka_bootstrap, milvus, names.group_id, names.alias, names.topic, timeout_s=300
    )


class Traffic:
    """Publishes new articles and updates, and searches, on two threads until stopped."""

    def __init__(self, api: TestClient, publisher: Publisher, start: int) -> None:
        self.api = api
        self.publisher = publisher
        self.next = start
        self.sent: dict[str, ArticleMessage] = {}
        self.statuses: list[int] = []
        self.leg_failures: list[dict] = []
        self.models: set[str] = set()
        self.paths: set[str] = set()
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._publish, daemon=True),
            threading.Thread(target=self._search, daemon=True),
        ]

    def __enter__(self) -> Traffic:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)

    def _publish(self) -> None:
        while not self._stop.wait(0.3):
            message = sample_article(self.next, PREFIX)
            self.publisher.publish(message)
            self.sent[message.post_id] = message
            self.next += 1

    def _search(self) -> None:
        rng = random.Random(7)
        while not self._stop.wait(0.05):
            word = code(rng.randrange(FIRST))
            response = self.api.get("/v1/search", params={"q": word, "profile": "everything"})
            self.statuses.append(response.status_code)
            if response.status_code == 200:
                sources = response.json()["sources"]
                bad = {k: v for k, v in sources.items() if v["status"] != "ok"}
                if bad:
                    self.leg_failures.append(bad)
                self.paths.add(sources["dense"]["path"])
            self.models.add(self.api.get("/healthz").json()["model"])


def wait_for_model(api: TestClient, ref: str, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while api.get("/healthz").json()["model"] != ref:
        assert time.monotonic() < deadline, f"the API never switched to {ref}"
        time.sleep(0.2)


def assert_complete(
    milvus: MilvusClient, names: Names, encoder: Encoder, messages: dict[str, ArticleMessage]
) -> None:
    counts = chunk_counts(milvus, names.alias)
    missing = sorted(set(messages) - set(counts))
    assert not missing, f"{len(missing)} articles missing after the swap: {missing[:5]}"
    wrong = [p for p, m in messages.items() if counts[p] != expected_chunks(encoder, m)]
    assert not wrong, f"chunk counts differ for {wrong[:5]}"


def test_reindex_under_load_swaps_without_losing_anything(
    settings: Settings,
    api: TestClient,
    published: dict[str, ArticleMessage],
    live_worker: WorkerThread,
    publisher: Publisher,
    milvus: MilvusClient,
    names: Names,
    encoder: Encoder,
    second_model: str,
) -> None:
    live = alias_target(milvus, names.alias)
    wait_for_model(api, encoder.ref)
    engine = make_engine(settings.sql_url)
    upgrade(engine)
    with Traffic(api, publisher, FIRST) as traffic:
        report = run_guarded(settings, engine, second_model, force=False)
        wait_for_model(api, second_model)
        time.sleep(1.0)  # a few searches on the new model too
    engine.dispose()
    assert report is not None and report.live == live
    assert alias_target(milvus, names.alias) == report.built
    assert collection_model(milvus, report.built) == second_model
    assert report.rows > 0 and report.verification.articles >= FIRST - len(traffic.sent)
    assert not report.verification.mismatched
    assert traffic.sent, "nothing was published during the re-index"
    assert traffic.statuses and set(traffic.statuses) == {200}
    assert not traffic.leg_failures, traffic.leg_failures[:3]
    assert traffic.models == {encoder.ref, second_model}
    assert traffic.paths == {"memory"}  # the in-memory tier served throughout, swap included

    settle(settings, milvus, names)
    assert_complete(milvus, names, encoder, {**published, **traffic.sent})
    rows = milvus.query(
        names.alias, filter='post_id != ""', output_fields=["model_version"], limit=16384
    )
    assert {r["model_version"] for r in rows} == {second_model}
    assert live_worker.worker.model_version == second_model
    assert live_worker.worker.group_id == ingest_group(names.group_id, report.built)
    assert alias_target(milvus, build_alias(names.alias)) is None
    # the tier follows the new collection: the last article published is found through it
    last = max(traffic.sent.values(), key=lambda m: m.post_id)
    deadline = time.monotonic() + 30
    while True:
        body = api.get("/v1/search", params={"q": last.title, "profile": "everything"}).json()
        if last.post_id in {d["post_id"] for d in body["documents"]}:
            break
        assert time.monotonic() < deadline, "the tier never showed the last article"
        time.sleep(0.2)
    assert body["sources"]["dense"]["path"] == "memory"
    published.update(traffic.sent)


def test_rollback_restores_the_previous_index_and_catches_it_up(
    settings: Settings,
    api: TestClient,
    published: dict[str, ArticleMessage],
    live_worker: WorkerThread,
    publisher: Publisher,
    milvus: MilvusClient,
    names: Names,
    encoder: Encoder,
    models_dir: Path,
) -> None:
    before, after = rollback(milvus, ModelRegistry(models_dir), names.alias)
    assert collection_model(milvus, after) == encoder.ref
    late = sample_article(10_000, PREFIX)
    publisher.publish(late)
    published[late.post_id] = late
    wait_for_model(api, encoder.ref)
    settle(settings, milvus, names)
    # everything published while the newer build served is in the restored one as well
    assert_complete(milvus, names, encoder, published)
    assert live_worker.worker.model_version == encoder.ref
    hits = api.get("/v1/search", params={"q": code(3), "profile": "everything"}).json()
    assert hits["sources"]["dense"]["status"] == "ok"
    assert before in list_article_collections(milvus)


def test_missing_model_is_refused_before_anything_is_built(
    settings: Settings, milvus: MilvusClient, published: dict[str, ArticleMessage]
) -> None:
    collections = list_article_collections(milvus)
    engine = make_engine(settings.sql_url)
    upgrade(engine)
    with pytest.raises(ModelNotFound):
        run_guarded(settings, engine, "e5-small-ko@no-such-version", force=False)
    engine.dispose()
    assert list_article_collections(milvus) == collections


def test_interrupted_reindex_leaves_the_live_index_and_is_cleaned_up(
    settings: Settings,
    env: dict[str, str],
    api: TestClient,
    published: dict[str, ArticleMessage],
    milvus: MilvusClient,
    names: Names,
    encoder: Encoder,
    second_model: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    live = alias_target(milvus, names.alias)
    argv = [sys.executable, "-m", "cli.main", "index", "reindex", "--model", second_model]
    with (tmp_path / "reindex.log").open("wb") as log:
        proc = subprocess.Popen(argv, env={**os.environ, **env}, cwd=REPO, stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 180
        while alias_target(milvus, build_alias(names.alias)) is None:
            assert proc.poll() is None, (tmp_path / "reindex.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "the build never started"
            time.sleep(0.05)
        half_built = alias_target(milvus, build_alias(names.alias))
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert alias_target(milvus, names.alias) == live
    response = api.get("/v1/search", params={"q": code(5), "profile": "everything"})
    assert response.status_code == 200
    assert response.json()["sources"]["dense"]["status"] == "ok"

    # the killed run stops guarding the job once its heartbeat is stale
    monkeypatch.setattr(history, "STALE_AFTER", timedelta(seconds=2 * history.HEARTBEAT_S))
    engine = make_engine(settings.sql_url)
    upgrade(engine)
    deadline = time.monotonic() + 60
    while True:
        try:
            report = run_guarded(settings, engine, second_model, force=False)
            break
        except history.JobAlreadyRunning:
            assert time.monotonic() < deadline, "the killed run kept the job"
            time.sleep(1)
    runs = history.recent_runs(engine, "reindex")
    engine.dispose()
    assert report is not None and report.removed_interrupted == [half_built]
    assert not milvus.has_collection(half_built)
    assert alias_target(milvus, names.alias) == report.built
    assert [r["status"] for r in runs][:2] == ["ok", "abandoned"]
    wait_for_model(api, second_model)
    settle(settings, milvus, names)
    assert_complete(milvus, names, encoder, published)
    json.dumps(report.as_dict())  # the --json report serialises


def test_scheduled_job_builds_only_when_the_serving_model_is_not_indexed(
    settings: Settings,
    api: TestClient,
    published: dict[str, ArticleMessage],
    milvus: MilvusClient,
    names: Names,
    encoder: Encoder,
) -> None:
    """The alias serves the second model now while base is the promoted one: the job builds
    for base, and a second run finds nothing to do."""
    first = run_named_job("reindex", trigger="manual")
    assert first["status"] == "ok", first
    assert collection_model(milvus, alias_target(milvus, names.alias)) == encoder.ref
    wait_for_model(api, encoder.ref)
    second = run_named_job("reindex", trigger="manual")
    assert second == {
        "job": "reindex",
        "status": "ok",
        "detail": f"index already built with {encoder.ref}",
    }
    settle(settings, milvus, names)
    assert_complete(milvus, names, encoder, published)
