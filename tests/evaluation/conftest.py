"""One ``chatda eval`` CLI run for the intents and documents tests: the environment of a fresh
machine (the test model, a private data dir, no engines configured), the corpus and queries
written as JSONL, the command invoked, and its ``--json`` result read back."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from chatda.settings import get_settings
from cli.main import app

EvalRun = Callable[[str, list[dict], list[dict]], dict]
"""``(mode, corpus rows, query rows) -> the result object`` of one ``chatda eval``."""


def _write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    return path


@pytest.fixture
def run_eval(
    monkeypatch: pytest.MonkeyPatch, models_dir: Path, tmp_path: Path
) -> Iterator[EvalRun]:
    monkeypatch.setenv("CHATDA_MODELS_DIR", str(models_dir))
    monkeypatch.setenv("CHATDA_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CHATDA_DEVICE", "cpu")
    monkeypatch.setenv("CHATDA_CPU_THREADS", "1")
    # no engines configured: the documents evaluation starts its own, as on a fresh machine
    monkeypatch.delenv("CHATDA_KAFKA_BOOTSTRAP", raising=False)
    monkeypatch.delenv("CHATDA_MILVUS_URI", raising=False)

    def run(mode: str, corpus: list[dict], queries: list[dict]) -> dict:
        get_settings.cache_clear()  # the test's own environment, set before this call
        out = tmp_path / "result.json"
        args = [
            "eval",
            "--mode",
            mode,
            "--corpus",
            str(_write_jsonl(tmp_path / "corpus.jsonl", corpus)),
            "--queries",
            str(_write_jsonl(tmp_path / "queries.jsonl", queries)),
            "--json",
            str(out),
        ]
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0, result.output
        return json.loads(out.read_text("utf-8"))

    yield run
    get_settings.cache_clear()
