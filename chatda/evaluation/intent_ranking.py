"""Each method's intent ranking for `chatda eval --mode intents`, computed in the batcher's pass.

The evaluation reports dense, lexical and fused rankings and the served decision. Asking the
snapshot for every intent of every query (``everything=True``) gave all of that, but built a
scored object per intent per query in Python: on a 2,000-intent catalog that took longer than
the model itself (64 queries: 2.4 s of post-step against 1.9 s of model pass, and as much again
sorting the lists per method). The metrics read no deeper than :data:`RANK_DEPTH`, so this
post-step asks the snapshot for the served answer at that depth, exactly as the API does, and
adds the dense and lexical orders as tensors over the same batch, cut at the same depth.

Ties keep the meaning of the full rankings they replace: the dense and lexical orders are
stable sorts of the fused order, so intents equal on one method stay in their fused order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from chatda.catalog.snapshot import CatalogSnapshot, IntentScore, MatchContext
from chatda.evaluation.metrics import RANK_DEPTH


@dataclass(frozen=True)
class MethodRanks:
    """One query: the served answer (fused, best first) and the other methods' intent indexes."""

    served: list[IntentScore]
    dense: list[int]
    lexical: list[int]

    @property
    def fused(self) -> list[int]:
        return [s.index for s in self.served]


class MethodRanker:
    """A batcher post-step: the snapshot's own scoring, plus the dense and lexical orders.

    The dense, lexical and fused scores are the very tensors the snapshot cut its served answer
    from (``CatalogSnapshot.score``), so the orders agree with the served scores to the bit and
    the catalog is multiplied once per batch.
    """

    def __init__(self, snapshot: CatalogSnapshot, depth: int = RANK_DEPTH) -> None:
        self.snapshot = snapshot
        self.depth = depth

    def context(self, lexical: np.ndarray) -> MatchContext:
        """A query's context as the API builds it (no area), asking for the top ``depth``."""
        return MatchContext(lexical, None, self.depth)

    def __call__(
        self, embeddings: torch.Tensor, contexts: Sequence[MatchContext]
    ) -> list[MethodRanks]:
        served, scores = self.snapshot.score(embeddings, contexts)
        if scores is None:
            return [MethodRanks(s, [], []) for s in served]
        by_fused = torch.sort(scores.fused, dim=1, descending=True, stable=True).indices

        def top(values: torch.Tensor) -> list[list[int]]:
            in_fused_order = values.gather(1, by_fused)
            order = torch.sort(in_fused_order, dim=1, descending=True, stable=True).indices
            return by_fused.gather(1, order[:, : self.depth]).cpu().tolist()

        return [
            MethodRanks(s, d, lex)
            for s, d, lex in zip(served, top(scores.dense), top(scores.lexical), strict=True)
        ]
