"""The committed JSON Schema of ``ArticleMessage``, for publishers that are not in Python.

The file is generated from the pydantic model (``chatda articles schema --write``) and a test
fails when the two differ, so the published contract cannot drift from what the worker checks.
"""

from __future__ import annotations

import json
from pathlib import Path

from chatda.articles.message import ArticleMessage


def schema_path() -> Path:
    """Where the committed schema lives (shipped as package data)."""
    return Path(__file__).resolve().parents[1] / "schemas" / "article.schema.json"


def article_schema() -> dict[str, object]:
    """The JSON Schema (draft 2020-12) of one article message."""
    return ArticleMessage.model_json_schema()


def render_schema() -> str:
    """The schema file's exact text: stable key order, Korean kept readable, final newline."""
    return json.dumps(article_schema(), ensure_ascii=False, indent=2) + "\n"
