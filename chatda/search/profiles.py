"""SLA profiles: which sources a search may use, how deep, how they fuse, and how long it may take.

A client picks a profile by name instead of tuning knobs per request, so latency promises and
ranking weights are decided in one place. The built-in profiles below are the defaults; the
``profiles`` setting (JSON or YAML text) and ``profiles_file`` are deep-merged over them by
name, so an operator overrides one number without restating a whole profile, and may add new
profiles. An invalid configuration fails the process at start-up, never a request.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from chatda.search import fusion
from chatda.search.fusion import Normalization
from chatda.search.hits import ArticleHit

PROFILE_NAME_PATTERN = r"^[a-z][a-z0-9_-]{0,31}$"
MAX_DEPTH = 1000
MAX_BUDGET_MS = 60_000


class SourceName(StrEnum):
    SUGGEST = "suggest"
    INTENTS = "intents"
    DENSE = "dense"
    BM25 = "bm25"


DOCUMENT_LEGS = (SourceName.DENSE, SourceName.BM25)

DEFAULT_DEPTH = {
    SourceName.SUGGEST: 5,
    SourceName.INTENTS: 5,
    SourceName.DENSE: 40,
    SourceName.BM25: 40,
}
"""Candidates per source when a profile does not say: suggestions, intents, chunks per leg."""


class Fusion(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    method: Literal["rrf", "weighted"] = "rrf"
    k: float = Field(default=60.0, gt=0, le=10_000, description="RRF rank offset")
    normalization: Normalization = Field(default="minmax", description="weighted only")
    weights: dict[str, float] = Field(default_factory=dict, description="per document leg")

    @model_validator(mode="after")
    def _weights_in_range(self) -> Fusion:
        for leg, weight in self.weights.items():
            if leg not in DOCUMENT_LEGS:
                raise ValueError(f"weights: unknown leg {leg!r}; legs are dense and bm25")
            if not 0 <= weight <= 100:
                raise ValueError(f"weight of {leg} must be within [0, 100]")
        return self


class Thresholds(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    intent_margin: float = Field(
        default=0.0, ge=-1, le=1, description="added to each intent's own threshold"
    )
    dense_min: float | None = Field(default=None, ge=-1, le=1, description="min cosine")
    bm25_min: float | None = Field(default=None, ge=0, description="min BM25 score")


class Profile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    budget_ms: int = Field(ge=1, le=MAX_BUDGET_MS)
    sources: list[SourceName] = Field(min_length=1)
    depth: dict[SourceName, int] = Field(default_factory=dict)
    fusion: Fusion = Field(default_factory=Fusion)
    thresholds: Thresholds = Field(default_factory=Thresholds)
    documents: Literal["auto", "milvus"] = Field(
        default="auto",
        description="auto: the in-memory article tier when it holds the served collection, "
        "else Milvus; milvus: always Milvus (ANN, for corpora past the tier's budget)",
    )

    @model_validator(mode="after")
    def _consistent(self) -> Profile:
        if len(set(self.sources)) != len(self.sources):
            raise ValueError("sources must not repeat")
        for source, depth in self.depth.items():
            if not 1 <= depth <= MAX_DEPTH:
                raise ValueError(f"depth of {source} must be within [1, {MAX_DEPTH}]")
        legs = [s for s in self.sources if s in DOCUMENT_LEGS]
        missing = [leg.value for leg in legs if leg.value not in self.fusion.weights]
        if missing:
            raise ValueError(f"fusion.weights must name every document leg; missing {missing}")
        if legs and not any(self.fusion.weights[leg.value] > 0 for leg in legs):
            raise ValueError("at least one document leg needs a positive weight")
        return self

    def depth_of(self, source: SourceName) -> int:
        return self.depth.get(source, DEFAULT_DEPTH[source])

    def weight_of(self, leg: SourceName) -> float:
        return self.fusion.weights.get(leg.value, 0.0)

    def fuse(self, legs: Mapping[SourceName, Sequence[ArticleHit]]) -> list[tuple[str, float]]:
        """Articles of the given document legs fused as this profile says, best first."""
        weights = {leg.value: self.weight_of(leg) for leg in legs}
        if self.fusion.method == "rrf":
            scores = fusion.rrf(
                {leg.value: [a.post_id for a in hits] for leg, hits in legs.items()},
                weights,
                self.fusion.k,
            )
        else:
            scores = fusion.weighted(
                {leg.value: {a.post_id: a.score for a in hits} for leg, hits in legs.items()},
                weights,
                self.fusion.normalization,
            )
        return fusion.ranked(scores)


DEFAULT_PROFILES: dict[str, dict[str, Any]] = {
    "instant": {
        "budget_ms": 30,
        "sources": ["suggest", "intents"],
        "depth": {"suggest": 5, "intents": 3},
    },
    # Weighted min-max 0.6/0.4 was the best or tied-best fusion on both sets measured (the demo
    # articles, where dense leads, and KorQuAD dev, where BM25 leads); RRF leaning to dense lost
    # to BM25 alone on KorQuAD. Numbers: BENCHMARKS.md.
    "default": {
        "budget_ms": 150,
        "sources": ["intents", "dense", "bm25"],
        "depth": {"intents": 5, "dense": 40, "bm25": 40},
        "fusion": {
            "method": "weighted",
            "normalization": "minmax",
            "weights": {"dense": 0.6, "bm25": 0.4},
        },
    },
    "deep": {
        "budget_ms": 800,
        "sources": ["intents", "dense", "bm25"],
        "depth": {"intents": 10, "dense": 200, "bm25": 200},
        "fusion": {
            "method": "weighted",
            "normalization": "minmax",
            "weights": {"dense": 0.6, "bm25": 0.4},
        },
    },
}


class ProfileError(ValueError):
    """The profiles configuration cannot be used; raised at start-up."""


def _merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Mappings merge key by key; any other value (lists included) replaces the base's."""
    merged = dict(base)
    for key, value in override.items():
        current = merged.get(key)
        if isinstance(current, Mapping) and isinstance(value, Mapping):
            merged[key] = _merge(current, value)
        else:
            merged[key] = value
    return merged


def _parse(text: str, source: str) -> dict[str, Any]:
    try:
        data = yaml.safe_load(text)  # JSON is YAML, so one parser serves both
    except yaml.YAMLError as exc:
        raise ProfileError(f"{source}: not valid JSON/YAML: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise ProfileError(f"{source}: expected a mapping of profile name to profile")
    return data


def load_profiles(text: str | None = None, file: Path | None = None) -> dict[str, Profile]:
    """The built-in profiles, then ``file``, then ``text`` merged over them, all validated."""
    raw: dict[str, Any] = {name: dict(p) for name, p in DEFAULT_PROFILES.items()}
    layers = []
    if file is not None:
        try:
            layers.append(_parse(Path(file).read_text(encoding="utf-8"), str(file)))
        except OSError as exc:
            raise ProfileError(f"cannot read profiles file {file}: {exc}") from exc
    if text:
        layers.append(_parse(text, "profiles setting"))
    for layer in layers:
        raw = _merge(raw, layer)
    profiles: dict[str, Profile] = {}
    for name, body in raw.items():
        if not isinstance(name, str) or re.fullmatch(PROFILE_NAME_PATTERN, name) is None:
            raise ProfileError(f"profile name {name!r} must match {PROFILE_NAME_PATTERN}")
        try:
            profiles[name] = Profile.model_validate(body)
        except ValidationError as exc:
            raise ProfileError(f"profile {name!r}: {exc}") from exc
    return profiles
