"""Opening a Milvus connection, and the one place where backend differences are reconciled.

chatda runs on milvus-lite locally and on real Milvus in production. They speak the same
protocol but differ in two ways the search code must not care about:

* BM25 scores: milvus-lite returns them negated (best hit first, most negative), real Milvus
  returns them positive. ``ScoreConvention`` turns both into "positive, higher is better".
* Filter templating (``filter_params``): real Milvus (2.5+) supports ``{name}`` placeholders,
  milvus-lite 3.2 rejects them at parse time. ``Backend.filter_templates`` tells
  ``chatda.storage.filters`` which form to build.

The backend is detected once from the server version string: milvus-lite answers
``GetVersion`` with ``milvus_lite-<version>``, Milvus with ``v2.x.y``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from pymilvus import MilvusClient

logger = logging.getLogger(__name__)

LITE_VERSION_PREFIX = "milvus_lite"


def embedded_db_path(data_dir: Path) -> Path:
    """Where the embedded milvus-lite database lives (a directory, despite the .db suffix)."""
    return Path(data_dir) / "milvus" / "chatda.db"


def connect(uri: str | None, data_dir: Path) -> MilvusClient:
    """A client for ``uri``, or for an embedded milvus-lite under ``data_dir`` when uri is None.

    The embedded form passes a ``*.db`` path to pymilvus, which starts milvus-lite's gRPC server
    on a thread of *this* process; milvus-lite locks the path, so a second process opening the
    same data dir fails. Use ``MilvusLiteServer`` and a uri when several processes share it.
    """
    if uri:
        logger.info("milvus connect uri=%s", uri)
        return MilvusClient(uri=uri)
    path = embedded_db_path(data_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    logger.info("milvus connect embedded path=%s", path)
    return MilvusClient(str(path))


class Backend(StrEnum):
    MILVUS_LITE = "milvus-lite"
    MILVUS = "milvus"

    @property
    def bm25_negated(self) -> bool:
        return self is Backend.MILVUS_LITE

    @property
    def filter_templates(self) -> bool:
        return self is Backend.MILVUS


def detect_backend(client: MilvusClient) -> Backend:
    version = str(client.get_server_version())
    backend = Backend.MILVUS_LITE if version.startswith(LITE_VERSION_PREFIX) else Backend.MILVUS
    logger.info("milvus backend version=%s backend=%s", version, backend)
    return backend


@dataclass(frozen=True)
class ScoreConvention:
    """How raw search scores of one backend map onto chatda's "higher is better" scores."""

    backend: Backend

    @classmethod
    def from_client(cls, client: MilvusClient) -> ScoreConvention:
        return cls(detect_backend(client))

    def bm25_score(self, raw: float) -> float:
        """A BM25 hit's distance as a positive relevance score (higher is better)."""
        return -raw if self.backend.bm25_negated else raw
