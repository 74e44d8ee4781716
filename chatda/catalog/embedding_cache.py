"""Catalog text embeddings kept on disk, so a restart does not embed the whole catalog again.

An API process embeds every intent name and hint before it can match (883 texts for the demo
catalog, ~30 s on a CPU), and did so on every start although neither the texts nor the model
had changed. The cache is one SQLite file in the data dir, keyed by (model, kind, text): the
model key holds the ref, a fingerprint of its manifest (a version registered again under the
same name gets a new one), the backend and the device kind, since int8 ONNX or fp16 CUDA
vectors differ from torch's fp32 ones. The cache is an optimisation only: any error reading
or writing it is logged and the texts are embedded as if it were empty.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import sqlite3
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from chatda.models.encoder import Encoder, Kind

log = logging.getLogger(__name__)

CACHE_FILE = Path("cache") / "embeddings.sqlite3"
_CHUNK = 500  # SQLite's bound-parameter limit is far above; keeps statements small


def model_key(encoder: Encoder) -> str:
    """What a cached vector is valid for: the same model files, backend and device kind."""
    fingerprint = hashlib.sha256(encoder.manifest.model_dump_json().encode()).hexdigest()[:16]
    device = encoder.device.split(":", 1)[0]
    return f"{encoder.ref}/{fingerprint}/{encoder.backend}/{device}"


class EmbeddingCache:
    """``get``/``put`` embeddings by (model, kind, text); ``hits`` and ``misses`` count texts."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.hits = 0
        self.misses = 0

    @classmethod
    def in_data_dir(cls, data_dir: Path) -> EmbeddingCache:
        return cls(Path(data_dir) / CACHE_FILE)

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=30)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(
            "CREATE TABLE IF NOT EXISTS embeddings (model TEXT NOT NULL, kind TEXT NOT NULL, "
            "text TEXT NOT NULL, vector BLOB NOT NULL, PRIMARY KEY (model, kind, text))"
        )
        return conn

    def get(self, encoder: Encoder, kind: Kind, texts: Sequence[str]) -> dict[str, np.ndarray]:
        """The cached vectors of ``texts`` (those not cached are absent)."""
        found: dict[str, np.ndarray] = {}
        key = model_key(encoder)
        try:
            with contextlib.closing(self._connect()) as conn, conn:
                for start in range(0, len(texts), _CHUNK):
                    chunk = list(texts[start : start + _CHUNK])
                    marks = ",".join("?" * len(chunk))
                    rows = conn.execute(
                        "SELECT text, vector FROM embeddings WHERE model = ? AND kind = ? "
                        f"AND text IN ({marks})",
                        (key, kind, *chunk),
                    )
                    for text, blob in rows:
                        vector = np.frombuffer(blob, dtype=np.float32)
                        if vector.shape == (encoder.dim,):
                            found[text] = vector.copy()
        except sqlite3.Error:
            log.warning(
                "embedding cache %s unreadable; embedding instead", self.path, exc_info=True
            )
            found = {}
        self.hits += len(found)
        self.misses += len(texts) - len(found)
        return found

    def put(self, encoder: Encoder, kind: Kind, vectors: Mapping[str, np.ndarray]) -> None:
        key = model_key(encoder)
        rows = [
            (key, kind, text, np.asarray(v, dtype=np.float32).tobytes())
            for text, v in vectors.items()
        ]
        try:
            with contextlib.closing(self._connect()) as conn, conn:
                conn.executemany("INSERT OR REPLACE INTO embeddings VALUES (?, ?, ?, ?)", rows)
        except sqlite3.Error:
            log.warning("embedding cache %s not written", self.path, exc_info=True)
