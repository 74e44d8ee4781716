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

A restart is the third difference: Milvus standalone loads its collections again by itself,
milvus-lite comes back with every collection released, and searches then fail with "collection
not loaded" forever (the gRPC channel itself reconnects on its own). ``Reloader`` loads such a
collection again, once, in the background, so search recovers by itself on both backends.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from pymilvus import MilvusClient
from pymilvus.exceptions import MilvusException

logger = logging.getLogger(__name__)

LITE_VERSION_PREFIX = "milvus_lite"
COLLECTION_NOT_LOADED = 101
"""Milvus' ``ErrCollectionNotLoaded`` code; milvus-lite answers a released collection the same."""
_LOAD_TIMEOUT_S = 120.0


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


def ping(client: MilvusClient, timeout_s: float) -> bool:
    """Whether the server answers a trivial call within ``timeout_s`` (readiness checks)."""
    try:
        client.get_server_version(timeout=timeout_s)
    except Exception:  # unreachable, timed out, refused: all mean "not now"
        return False
    return True


class Reloader:
    """Loads a collection again when a search found it released (a restarted milvus-lite).

    ``released(exc, ...)`` tells the caller whether its failure was that; if so it has started
    one background load of the collection (never two at once for one name), and the caller
    reports the source unavailable for now rather than waiting for the load.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loading: set[str] = set()

    def released(self, exc: BaseException, client: MilvusClient, collection: str) -> bool:
        if not (isinstance(exc, MilvusException) and exc.code == COLLECTION_NOT_LOADED):
            return False
        with self._lock:
            if collection in self._loading:
                return True
            self._loading.add(collection)
        threading.Thread(
            target=self._load, args=(client, collection), name="milvus-reload", daemon=True
        ).start()
        return True

    def _load(self, client: MilvusClient, collection: str) -> None:
        logger.warning(
            "milvus collection %s is released (server restarted?): loading it", collection
        )
        try:
            client.load_collection(collection, timeout=_LOAD_TIMEOUT_S)
            logger.info("milvus collection %s loaded again", collection)
        except Exception as exc:  # the next search that finds it released tries again
            logger.warning("loading milvus collection %s failed: %s", collection, exc)
        finally:
            with self._lock:
                self._loading.discard(collection)
