"""Every chunk of one collection in memory: vectors on the model's device, facets, texts, terms.

One writer (the tier's follower thread) appends and retires rows; readers take a ``TierView``
(``view()``), which fixes the row count and copies the small mutable parts (the live mask and
the document frequencies), so a request scores one consistent state while writes go on. An
article's new version is appended and its old rows retired, never overwritten; ``compacted``
rebuilds without the retired rows once they outnumber the live ones.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from chatda.search.tier.growing import GrowingArray
from chatda.search.tier.postings import Postings

ROW_FIELDS = [
    "chunk_id",
    "post_id",
    "chunk_no",
    "title",
    "text",
    "bm25_text",
    "dense",
    "category",
    "series",
    "tags",
    "published_at",
]
"""What the tier reads of each Milvus row."""

_ROW_OVERHEAD = 400
"""Bytes per row beyond vectors, texts and postings: the Python objects of ``ChunkText``."""


@dataclass(frozen=True, slots=True)
class ChunkText:
    """What a hit needs besides scores; only the top results are ever turned into hits."""

    chunk_id: str
    post_id: str
    chunk_no: int
    title: str
    text: str
    tags: tuple[str, ...]
    terms: tuple[str, ...]


class Codes:
    """A facet's values as small integers, so a filter is one ``isin`` over an int column."""

    def __init__(self) -> None:
        self.ids: dict[str, int] = {}
        self.values: list[str] = []

    def code(self, value: str) -> int:
        found = self.ids.get(value)
        if found is None:
            found = self.ids[value] = len(self.values)
            self.values.append(value)
        return found

    def known(self, values: Iterable[str]) -> np.ndarray:
        return np.array([self.ids[v] for v in values if v in self.ids], dtype=np.int32)


class ChunkColumns:
    def __init__(self, dim: int, device: str, collection: str, capacity: int = 1024) -> None:
        self.dim = dim
        self.device = device
        self.collection = collection
        self.dtype = torch.float16 if device.startswith("cuda") else torch.float32
        self.dense = torch.zeros((capacity, dim), dtype=self.dtype, device=device)
        self.published = GrowingArray(np.int64, capacity)
        self.category = GrowingArray(np.int32, capacity)
        self.series = GrowingArray(np.int32, capacity)
        self.doc_len = GrowingArray(np.float64, capacity)
        self.alive = GrowingArray(np.bool_, capacity)
        self.texts: list[ChunkText] = []
        self.terms = Postings()
        self.tags = Postings()
        self.categories = Codes()
        self.serieses = Codes()
        self.rows_of_post: dict[str, list[int]] = {}
        self.live = 0
        self.text_bytes = 0

    @property
    def size(self) -> int:
        return len(self.texts)

    @property
    def nbytes(self) -> int:
        """Memory held, approximately: what the memory budget is checked against."""
        columns = (
            self.published.nbytes
            + self.category.nbytes
            + self.series.nbytes
            + self.doc_len.nbytes
            + self.alive.nbytes
        )
        vectors = self.dense.shape[0] * self.dim * self.dense.element_size()
        return (
            vectors
            + columns
            + self.terms.nbytes
            + self.tags.nbytes
            + self.text_bytes
            + _ROW_OVERHEAD * self.size
        )

    def replace(self, post_ids: Iterable[str], rows: Sequence[Mapping[str, Any]]) -> None:
        """Make ``post_ids`` hold exactly ``rows`` (their current chunks; none: deleted)."""
        for post_id in post_ids:
            self._retire(post_id)
        self.append(rows)

    def append(self, rows: Sequence[Mapping[str, Any]]) -> None:
        if not rows:
            return
        start = self.size
        vectors = torch.as_tensor(
            np.asarray([r["dense"] for r in rows], dtype=np.float32), dtype=self.dtype
        )
        self._reserve(start + len(rows))
        self.dense[start : start + len(rows)] = vectors.to(self.device)
        texts = [
            ChunkText(
                row["chunk_id"],
                row["post_id"],
                int(row["chunk_no"]),
                row["title"],
                row["text"],
                tuple(row.get("tags") or ()),
                tuple(str(row["bm25_text"]).split()),
            )
            for row in rows
        ]
        for offset, text in enumerate(texts):
            self.text_bytes += 2 * (len(text.title) + len(text.text)) + 8 * len(text.terms)
            self.rows_of_post.setdefault(text.post_id, []).append(start + offset)
        self.texts.extend(texts)
        self.terms.add(start, [t.terms for t in texts])
        self.tags.add(start, [t.tags for t in texts])
        self.published.extend(np.array([int(r.get("published_at") or 0) for r in rows]))
        self.category.extend(
            np.array([self.categories.code(r.get("category") or "") for r in rows])
        )
        self.series.extend(np.array([self.serieses.code(r.get("series") or "") for r in rows]))
        self.doc_len.extend(np.array([len(t.terms) for t in texts]))
        self.alive.extend(np.ones(len(rows), dtype=np.bool_))
        self.live += len(rows)

    def _retire(self, post_id: str) -> None:
        for row in self.rows_of_post.pop(post_id, []):
            if self.alive.buffer[row]:
                self.alive.buffer[row] = False
                self.live -= 1
                self.terms.remove(self.texts[row].terms)
                self.tags.remove(self.texts[row].tags)

    def _reserve(self, rows: int) -> None:
        if rows > self.dense.shape[0]:
            grown = torch.zeros(
                (max(rows, 2 * self.dense.shape[0]), self.dim), dtype=self.dtype, device=self.device
            )
            grown[: self.size] = self.dense[: self.size]
            self.dense = grown

    @property
    def wasteful(self) -> bool:
        """Retired rows outnumber live ones: time to ``compacted``."""
        return self.size - self.live > max(1024, self.live)

    def compacted(self) -> ChunkColumns:
        """The same live chunks without the retired rows (a new object: views keep the old)."""
        fresh = ChunkColumns(self.dim, self.device, self.collection, max(1024, self.live))
        keep = np.flatnonzero(self.alive.view())
        dense = self.dense[: self.size][torch.as_tensor(keep, device=self.device)].float().cpu()
        fresh.append([self._row(int(i), dense[j]) for j, i in enumerate(keep)])
        return fresh

    def _row(self, row: int, vector: torch.Tensor) -> dict[str, Any]:
        text = self.texts[row]
        return {
            "chunk_id": text.chunk_id,
            "post_id": text.post_id,
            "chunk_no": text.chunk_no,
            "title": text.title,
            "text": text.text,
            "bm25_text": " ".join(text.terms),
            "dense": vector.numpy(),
            "category": self.categories.values[int(self.category.buffer[row])],
            "series": self.serieses.values[int(self.series.buffer[row])],
            "tags": list(text.tags),
            "published_at": int(self.published.buffer[row]),
        }
