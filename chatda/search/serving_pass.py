"""The batcher post-step of a search: intents and article chunks scored in the embedding pass.

The reference design's serving idea: the query batch is embedded once, and in the same pass,
on the same device, scored against every intent hint and every article chunk; only each
query's top results leave the device. A ``ServingPass`` binds one catalog snapshot and one
tier view, so every request in a batch that shares them is scored together, and a request
reads exactly one state of both.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from chatda.catalog.snapshot import CatalogSnapshot, IntentScore, MatchContext
from chatda.search.tier.view import DocumentHits, DocumentQuery, TierView


@dataclass(frozen=True)
class PassContext:
    intents: MatchContext | None
    documents: DocumentQuery | None


@dataclass(frozen=True)
class PassResult:
    intents: list[IntentScore]
    documents: DocumentHits | None


class ServingPass:
    def __init__(self, catalog: CatalogSnapshot | None, articles: TierView | None) -> None:
        self.catalog = catalog
        self.articles = articles

    def __call__(
        self, embeddings: torch.Tensor, contexts: Sequence[PassContext]
    ) -> list[PassResult]:
        intents: list[list[IntentScore]] = [[] for _ in contexts]
        if self.catalog is not None:
            wanted = [i for i, c in enumerate(contexts) if c.intents is not None]
            if wanted:
                scored = self.catalog(
                    embeddings[wanted],
                    [contexts[i].intents for i in wanted],  # type: ignore[misc]
                )
                for i, scores in zip(wanted, scored, strict=True):
                    intents[i] = scores
        documents: list[DocumentHits | None] = [None] * len(contexts)
        if self.articles is not None:
            wanted = [i for i, c in enumerate(contexts) if c.documents is not None]
            if wanted:
                hits = self.articles.score(
                    embeddings[wanted],
                    [contexts[i].documents for i in wanted],  # type: ignore[misc]
                )
                for i, found in zip(wanted, hits, strict=True):
                    documents[i] = found
        return [PassResult(i, d) for i, d in zip(intents, documents, strict=True)]


class ServingPasses:
    """One ``ServingPass`` per (snapshot, view) pair, so concurrent requests share the object
    the batcher groups by; only the latest few pairs are kept."""

    def __init__(self, keep: int = 4) -> None:
        self.keep = keep
        self._passes: dict[tuple[int, int], ServingPass] = {}

    def of(self, catalog: CatalogSnapshot | None, articles: TierView | None) -> ServingPass:
        key = (id(catalog), id(articles))
        found = self._passes.get(key)
        if found is None or found.catalog is not catalog or found.articles is not articles:
            found = self._passes[key] = ServingPass(catalog, articles)
            while len(self._passes) > self.keep:
                self._passes.pop(next(iter(self._passes)))
        return found
