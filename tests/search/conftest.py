"""Search fixtures: a small article corpus in milvus-lite and one API app over it per session.

Rows are built as the ingest worker builds them (``tests.search.corpus``). One app serves every
API test module, since building one loads the model and embeds the catalog; ``bare_client`` is
the same app with neither Milvus nor Kafka configured.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pymilvus import MilvusClient

from chatda.broker.kafka import make_producer
from chatda.models.encoder import Encoder
from chatda.search.tier.announcements import Announcer
from chatda.settings import Settings
from chatda.storage.articles_schema import create_articles_collection, ensure_alias
from query.app import create_app
from tests.infra.samples import HOSTILE_CATEGORIES
from tests.search.corpus import Article, article_rows

ADMIN_TOKEN = "search-test-admin"
CHUNK_TOKENS = 96  # small, so the longer articles below span several chunks


ARTICLES = [
    Article(
        "fx-fee",
        "해외송금 수수료 아끼는 법",
        "해외송금을 보낼 때는 송금 수수료와 환율 우대를 함께 봐야 합니다. 전신료와 중계 은행 "
        "수수료가 따로 붙기 때문에 보내는 금액이 작을수록 수수료 비중이 커집니다. "
        "여러 번 나눠 보내기보다 한 번에 모아서 보내면 전신료를 아낄 수 있습니다. "
        "받는 사람의 영문 이름과 은행 코드가 틀리면 송금이 반송되고 수수료를 다시 냅니다.",
        "송금",
        "돈 보내기",
        ["해외송금", "수수료"],
        datetime(2026, 1, 10, tzinfo=UTC),
    ),
    Article(
        "parking",
        "파킹통장 고르는 법",
        "파킹통장은 돈을 잠시 넣어 두는 수시입출금 통장입니다. 광고의 최고 금리보다 높은 "
        "금리가 적용되는 한도를 먼저 확인하세요. 한도를 넘는 금액에는 낮은 금리가 붙습니다.",
        "저축",
        "통장 가이드",
        ["파킹통장", "금리"],
        datetime(2026, 2, 1, tzinfo=UTC),
    ),
    Article(
        "savings",
        "적금 이자가 예금보다 적은 이유",
        "적금은 매달 나눠 넣기 때문에 같은 금리라도 받는 이자가 예금의 절반 정도입니다. "
        "첫 달에 넣은 돈만 일 년 내내 이자를 받고 마지막 달에 넣은 돈은 한 달 치만 받습니다.",
        "저축",
        "",
        ["적금", "예금"],
        datetime(2026, 3, 1, tzinfo=UTC),
    ),
    Article(
        "exchange",
        "여행 전에 환전 싸게 하는 방법",
        "환전은 은행 앱에서 환율 우대를 받아 신청하고 공항 지점에서 찾으면 가장 쌉니다. "
        "공항 환전소에서 바로 바꾸면 우대가 거의 없어 손해입니다.",
        "환전",
        "",
        ["환전", "여행"],
        datetime(2026, 4, 1, tzinfo=UTC),
    ),
    Article(
        "emergency",
        "비상금은 몇 달치 생활비를 모아야 할까",
        "비상금은 보통 석 달에서 여섯 달치 생활비를 모아 두라고 합니다. 월급이 일정하지 "
        "않다면 더 넉넉하게 준비하고, 바로 꺼낼 수 있는 통장에 두세요.",
        "저축",
        "통장 가이드",
        ["비상금"],
        datetime(2025, 12, 1, tzinfo=UTC),
    ),
    Article(
        "card-fee",
        "신용카드 연회비 돌려받는 법",
        "신용카드 연회비는 발급 후 일정 기간 안에 해지하면 남은 기간만큼 돌려받을 수 "
        "있습니다. 카드사 앱의 해지 메뉴에서 환급 예상 금액을 먼저 확인하세요.",
        "카드",
        "",
        ["신용카드", "연회비"],
        datetime(2026, 5, 1, tzinfo=UTC),
    ),
    *[
        Article(f"hostile-{i}", "기타 문서", "기타 문서 본문입니다.", category, tags=[category])
        for i, category in enumerate(HOSTILE_CATEGORIES)
    ],
]

CATALOG_YAML = """\
version: 1
intents:
  - id: 1
    name: 송금
    hints: [돈 보내기, 계좌이체, 송금하기]
    areas: [SEARCH, RECO, SUGGEST]
  - id: 2
    parent_id: 1
    name: 해외송금
    hints: [외국으로 돈 보내기, 해외로 돈 보내는 방법]
    areas: [SEARCH, SUGGEST]
  - id: 3
    name: 환전
    hints: [달러 바꾸기, 환전 신청]
    areas: [SEARCH, SUGGEST]
  - id: 4
    name: 송금 내역
    hints: [이체 기록 보기]
    areas: [SEARCH, SUGGEST]
  - id: 5
    name: 계좌 개설
    hints: [통장 만들기]
    areas: [SEARCH]
  - id: 6
    name: 송곳 대출
    hints: [비공개 상품]
    open: false
    areas: [SEARCH, SUGGEST]
"""

TEST_PROFILES = """\
patient:
  budget_ms: 1500
  sources: [intents, dense, bm25]
  depth: {intents: 5, dense: 40, bm25: 40}
  fusion: {method: rrf, k: 60, weights: {dense: 1.0, bm25: 0.6}}
patient-milvus:  # the same, with the document legs always in Milvus (legs can be swapped)
  budget_ms: 1500
  sources: [intents, dense, bm25]
  depth: {intents: 5, dense: 40, bm25: 40}
  fusion: {method: rrf, k: 60, weights: {dense: 1.0, bm25: 0.6}}
  documents: milvus
strict:
  budget_ms: 1500
  sources: [intents, dense, bm25]
  fusion: {weights: {dense: 1.0, bm25: 0.6}}
  thresholds: {intent_margin: 0.5, dense_min: 0.999, bm25_min: 1000}
everything:
  budget_ms: 5000
  sources: [suggest, intents, dense, bm25]
  fusion: {method: weighted, normalization: max, weights: {dense: 0.5, bm25: 0.5}}
"""


@pytest.fixture(scope="session")
def corpus_rows(encoder: Encoder) -> list[dict[str, Any]]:
    return article_rows(encoder, ARTICLES, CHUNK_TOKENS)


@pytest.fixture(scope="session")
def articles_alias(
    milvus_uri: str, corpus_rows: list[dict[str, Any]], encoder: Encoder
) -> Iterator[str]:
    """A private alias over a collection holding the corpus (other suites use their own)."""
    client = MilvusClient(uri=milvus_uri)
    suffix = uuid.uuid4().hex[:8]
    name = f"articles__searchtest_{suffix}__20260101T000000"
    alias = f"search_{suffix}"
    create_articles_collection(client, name, encoder.ref)
    client.insert(name, corpus_rows)
    ensure_alias(client, alias, name)
    yield alias
    client.drop_alias(alias)
    client.drop_collection(name)
    client.close()


def wait_until_ready(client: TestClient, titles: bool, timeout_s: float = 120) -> None:
    """Until the catalog is loaded, the suggestion index holds it (and titles, if asked), and
    the process is ready (/readyz: the article tier holds the served collection, if any)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        health = client.get("/healthz").json()
        index = client.get("/v1/suggest", params={"q": ""}).json()["index"]
        if (
            health["catalog"]["ready"]
            and index["catalog_version"] is not None
            and (index["titles"] > 0 or not titles)
            and client.get("/readyz").status_code == 200
        ):
            return
        time.sleep(0.1)
    raise TimeoutError("the app did not become ready")


def make_settings(data_dir: Path, models_dir: Path, **overrides: Any) -> Settings:
    catalog = data_dir / "catalog.yaml"
    catalog.write_text(CATALOG_YAML, encoding="utf-8")
    defaults: dict[str, Any] = {
        "data_dir": data_dir,
        "models_dir_override": models_dir,
        "device": "cpu",
        "catalog_file": catalog,
        "admin_token": ADMIN_TOKEN,
        "profiles": TEST_PROFILES,
        "suggest_min_query_searches": 2,
    }
    return Settings(**(defaults | overrides))


@pytest.fixture(scope="session")
def search_client(
    models_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
    milvus_uri: str,
    articles_alias: str,
    kafka_bootstrap: str,
) -> Iterator[TestClient]:
    """The app with every engine: Milvus over the corpus, Kafka for feedback."""
    settings = make_settings(
        tmp_path_factory.mktemp("search-api"),
        models_dir,
        milvus_uri=milvus_uri,
        articles_alias=articles_alias,
        kafka_bootstrap=kafka_bootstrap,
        events_topic=f"search-events-{uuid.uuid4().hex[:8]}",
        articles_indexed_topic=f"articles-indexed-{uuid.uuid4().hex[:8]}",
    )
    with TestClient(create_app(settings)) as client:
        wait_until_ready(client, titles=True)
        yield client


def announce_written(client: TestClient, post_ids: list[str], timeout_s: float = 20) -> None:
    """Say what a test wrote to Milvus directly, as the ingest worker does after its writes,
    and wait until the app's article tier has applied it."""
    state = client.app.state.chatda  # type: ignore[attr-defined]
    tier, settings = state.search.tier, state.settings
    before = tier.version
    producer = make_producer(settings.kafka_bootstrap)
    try:
        Announcer(producer, settings.articles_indexed_topic).announce(post_ids)
    finally:
        producer.close()
    deadline = time.monotonic() + timeout_s
    while tier.version == before:
        if time.monotonic() > deadline:
            raise TimeoutError(f"the article tier did not apply {post_ids}")
        time.sleep(0.05)


@pytest.fixture(scope="session")
def bare_client(models_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """The app with neither Milvus nor Kafka configured: SQL feedback, no document legs."""
    settings = make_settings(tmp_path_factory.mktemp("search-bare"), models_dir)
    with TestClient(create_app(settings)) as client:
        wait_until_ready(client, titles=False)
        yield client
