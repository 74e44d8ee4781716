"""``chatda publish FILE.jsonl``: valid lines reach Kafka, invalid ones are named and counted."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from chatda.articles.message import ArticleMessage
from chatda.settings import get_settings
from cli import ingest_commands
from tests.ingest.helpers import read_topic, sample_article, unique


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, kafka_bootstrap: str, tmp_path: Path) -> Iterator[str]:
    topic = unique("articles-cli")
    monkeypatch.setenv("CHATDA_KAFKA_BOOTSTRAP", kafka_bootstrap)
    monkeypatch.setenv("CHATDA_ARTICLES_TOPIC", topic)
    monkeypatch.setenv("CHATDA_DATA_DIR", str(tmp_path))
    get_settings.cache_clear()
    yield topic
    get_settings.cache_clear()


def test_publish_skips_and_counts_invalid_lines(
    env: str, kafka_bootstrap: str, tmp_path: Path
) -> None:
    good = [sample_article(i, "cli") for i in range(3)]
    lines = [
        good[0].to_wire(),
        b'{"post_id": "cli-broken", ',
        good[1].to_wire(),
        b"",
        json.dumps({**good[2].model_dump(mode="json"), "post_id": "bad id"}).encode(),
        b'{"post_id": "cli-latin1", "title": "caf\xe9"}',
        good[2].to_wire(),
    ]
    path = tmp_path / "articles.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")

    result = CliRunner().invoke(ingest_commands.app, ["publish", str(path)])
    assert result.exit_code == 1, result.output
    assert "line 2:" in result.output and "line 5: post_id" in result.output
    assert "line 6:" in result.output
    assert "published 3 articles; 3 invalid lines skipped" in result.output
    records = read_topic(kafka_bootstrap, env, 3)
    assert sorted(ArticleMessage.model_validate_json(r.value).post_id for r in records) == [
        m.post_id for m in good
    ]


def test_publish_of_a_clean_file_exits_zero(env: str, tmp_path: Path) -> None:
    path = tmp_path / "articles.jsonl"
    path.write_bytes(sample_article(0, "cli").to_wire() + b"\n")
    result = CliRunner().invoke(ingest_commands.app, ["publish", str(path)])
    assert result.exit_code == 0, result.output
    assert "published 1 articles; 0 invalid lines skipped" in result.output
