"""Evaluation files: corpus lines {"id","title","text"}, queries {"id","text","relevant"}."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ValidationError

T = TypeVar("T", bound=BaseModel)


class CorpusItem(BaseModel):
    id: str
    title: str
    text: str = ""


class EvalQuery(BaseModel):
    id: str
    text: str
    relevant: list[str] = []


class EvalClick(BaseModel):
    """A user's query and the corpus item they clicked in its answer: what the intent
    calibration learns from besides the hints (issue #27), given to an evaluation so the
    effect of clicks on the decision can be measured."""

    text: str
    clicked: str


def _coerce_ids(raw: dict) -> dict:
    if "id" in raw and not isinstance(raw["id"], str):
        raw["id"] = str(raw["id"])
    if "relevant" in raw and isinstance(raw["relevant"], list):
        raw["relevant"] = [str(r) for r in raw["relevant"]]
    return raw


def read_jsonl(path: Path, model: type[T]) -> list[T]:
    items: list[T] = []
    with path.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                items.append(model.model_validate(_coerce_ids(json.loads(line))))
            except (json.JSONDecodeError, ValidationError) as exc:
                raise ValueError(f"{path}:{n}: {exc}") from exc
    return items
