"""The ``retrain`` job: click pairs from the SQL store → ``chatda train retrieval`` → the gate.

Real parts throughout: the SQL store, milvus-lite over a small corpus, a short real training
run in its own process, and ``chatda model promote``. The registry is private (the base
weights hard-linked), so the trained version never lands in the shared one.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pymilvus import MilvusClient
from sqlalchemy import Engine, insert

from chatda.db.tables import search_events
from chatda.models.encoder import Encoder
from chatda.models.registry import ModelRegistry, ModelVersion
from chatda.settings import get_settings
from chatda.storage.articles_schema import create_articles_collection, ensure_alias
from indexer.history import recent_runs
from indexer.scheduler import run_named_job
from tests.fixtures.model import link_model
from tests.indexer.conftest import job_store
from tests.search.conftest import ARTICLES
from tests.search.corpus import article_rows

SERVING = "live"
CLICKS = [
    ("해외로 돈 보낼 때 수수료", "fx-fee"),
    ("파킹통장 금리 한도", "parking"),
    ("적금 이자가 적은 이유", "savings"),
    ("적금 이자 계산", "savings"),
    ("송금 수수료 아끼기", "fx-fee"),
    ("송금", "intent:1"),  # an intent click: no article behind it, not a training pair
]


@pytest.fixture
def registry(tmp_path: Path, base_model: ModelVersion) -> ModelRegistry:
    registry = ModelRegistry(tmp_path / "models")
    link_model(registry, base_model, SERVING)
    registry.set_serving(base_model.manifest.name, SERVING)
    return registry


@pytest.fixture
def alias(milvus_uri: str, encoder: Encoder) -> Iterator[str]:
    client = MilvusClient(uri=milvus_uri)
    suffix = uuid.uuid4().hex[:8]
    name = f"articles__retraintest_{suffix}__20260101T000000"
    create_articles_collection(client, name, encoder.ref)
    client.insert(name, article_rows(encoder, ARTICLES, 96))
    ensure_alias(client, f"retrain_{suffix}", name)
    yield f"retrain_{suffix}"
    client.drop_alias(f"retrain_{suffix}")
    client.drop_collection(name)
    client.close()


@pytest.fixture
def training_data(tmp_path: Path) -> Path:
    """A few lines in the shape of the shared datasets that retrieval training reads besides
    the clicks, so the test runs wherever the shared data is not."""
    root = tmp_path / "training-data"
    chat = root / "korean_chatbot_data" / "ChatbotData.csv"
    chat.parent.mkdir(parents=True)
    chat.write_text(
        "Q,A,label\n환전은 어디서 해?,은행이나 앱에서 할 수 있어요.,0\n"
        "적금 들까?,목표가 있다면 좋아요.,0\n이체가 안 돼,한도를 확인해 보세요.,0\n",
        encoding="utf-8",
    )
    bill = root / "konlpy_corpus" / "kobill" / "1.txt"
    bill.parent.mkdir(parents=True)
    bill.write_text(
        "전자금융거래법 일부개정법률안\n전자금융거래의 안전성을 높인다. 이용자의 권리를 보호한다. "
        "위반 시 과태료를 부과한다.",
        encoding="utf-8",
    )
    klue = root / "klue" / "klue-nli-v1.1_dev.json"
    klue.parent.mkdir(parents=True)
    klue.write_text(
        json.dumps(
            [
                {"premise": p, "hypothesis": h, "gold_label": label}
                for p, h, label in [
                    ("카드 결제가 승인되었다.", "결제가 되었다.", "entailment"),
                    ("카드 결제가 승인되었다.", "결제가 거절되었다.", "contradiction"),
                ]
            ],
            ensure_ascii=False,
        ),
        encoding="utf-8",
    )
    kornli = root / "kornli"
    kornli.mkdir()
    for split in ("dev", "test"):
        (kornli / f"xnli.{split}.ko.tsv").write_text(
            "sentence1\tsentence2\tgold_label\n"
            "통장을 새로 만들었다.\t계좌를 개설했다.\tentailment\n"
            "통장을 새로 만들었다.\t계좌를 해지했다.\tcontradiction\n",
            encoding="utf-8",
        )
    return root


@pytest.fixture
def engine(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    registry: ModelRegistry,
    milvus_uri: str,
    training_data: Path,
) -> Iterator[Engine]:
    with job_store(
        monkeypatch,
        tmp_path,
        models_dir=str(registry.root),
        milvus_uri=milvus_uri,
        device="cpu",
        cpu_threads="1",
        retrain_min_pairs="5",
        retrain_args=f"--max-steps 2 --skip-eval --max-pairs 32 --data-dir {training_data}",
    ) as engine:
        yield engine


def add_clicks(engine: Engine, clicks: list[tuple[str, str]]) -> None:
    now = datetime.now(UTC)
    rows = [
        {
            "event_id": str(uuid.uuid4()),
            "type": "click",
            "query_id": str(uuid.uuid4()),
            "query": query,
            "known_query": True,
            "shown": None,
            "clicked_id": clicked,
            "position": 1,
            "dwell_ms": None,
            "received_at": now,
        }
        for query, clicked in clicks
    ]
    with engine.begin() as conn:
        conn.execute(insert(search_events), rows)


def test_too_few_clicks_skip_without_training(engine: Engine, registry: ModelRegistry) -> None:
    add_clicks(engine, CLICKS[:3])
    result = run_named_job("retrain", trigger="manual")
    assert result["status"] == "ok"
    assert result["detail"] == "skipped: 3 click pairs, fewer than 5"
    assert [v.manifest.version for v in registry.versions()] == [SERVING]


def test_clicks_train_a_version_that_the_gate_keeps_out_of_serving(
    engine: Engine, registry: ModelRegistry, alias: str, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setenv("CHATDA_ARTICLES_ALIAS", alias)
    get_settings.cache_clear()
    add_clicks(engine, CLICKS)
    result = run_named_job("retrain", trigger="manual")
    assert result["status"] == "ok", result
    (trained,) = [v for v in registry.versions() if v.manifest.version != SERVING]
    assert trained.manifest.parent == f"{trained.manifest.name}@{SERVING}"
    assert trained.manifest.ref in result["detail"]
    # trained with --skip-eval: no evaluation, so promotion must refuse and serving stays put
    assert "not promoted" in result["detail"] and "no evaluation" in result["detail"]
    assert registry.serving_version(trained.manifest.name) == SERVING
    (export,) = (tmp_path / "retrain").glob("clicks-*.jsonl")
    pairs = [json.loads(line) for line in export.read_text(encoding="utf-8").splitlines()]
    assert len(pairs) == 5  # the intent click has no article
    by_query = {p["query"]: p["positive"] for p in pairs}
    assert by_query["파킹통장 금리 한도"].startswith("파킹통장 고르는 법")
    assert recent_runs(engine, "retrain")[0]["status"] == "ok"
