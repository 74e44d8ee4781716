"""A milvus-lite gRPC server as a child process, for setups with more than one Milvus client.

milvus-lite holds a file lock on its data dir, so only one process may open it. When the API,
the indexer and tests must share one local Milvus, they talk to this server over the Milvus
protocol instead, exactly as they would to Milvus standalone. The process is
``chatda.storage.milvus_lite_main`` (milvus-lite's server with Milvus's keepalive policy), not
``milvus-lite server``, whose policy drops idle pymilvus connections.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import sys
from pathlib import Path

from pymilvus import MilvusClient

from chatda.process import (
    LocalServer,
    ManagedProcess,
    ensure_port_free,
    free_port,
    port_accepts,
)

logger = logging.getLogger(__name__)

_START_TIMEOUT_S = 60.0


class MilvusLiteServer(LocalServer):
    """``milvus-lite server`` on 127.0.0.1 over ``data_dir``; a context manager.

    ``start()`` returns once a pymilvus client can list collections. Collections come back
    released after a restart: call ``load_collection`` before searching. Stopping sends SIGINT,
    which milvus-lite handles by draining requests and closing the data dir cleanly (SIGTERM
    would kill it without that; its WAL still keeps acknowledged writes).
    """

    def __init__(
        self, data_dir: Path, port: int | None = None, log_path: Path | None = None
    ) -> None:
        self.data_dir = Path(data_dir)
        self.host = "127.0.0.1"
        self.port = port if port is not None else free_port(self.host)
        self.log_path = log_path
        self._process: ManagedProcess | None = None

    @property
    def uri(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def start(self) -> MilvusLiteServer:
        if self._process is not None:
            raise RuntimeError(f"milvus-lite already running at {self.uri}")
        ensure_port_free(self.host, self.port, "milvus-lite")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        process = ManagedProcess(
            "milvus-lite",
            [
                sys.executable,
                "-m",
                "chatda.storage.milvus_lite_main",
                "--data-dir",
                str(self.data_dir),
                "--host",
                self.host,
                "--port",
                str(self.port),
            ],
            log_path=self.log_path,
            stop_signal=signal.SIGINT,
        )
        process.start(self._answers, _START_TIMEOUT_S)
        self._process = process
        logger.info("milvus-lite up uri=%s data_dir=%s pid=%s", self.uri, self.data_dir, self.pid)
        return self

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None:
            process.stop()

    def _answers(self) -> bool:
        if not port_accepts(self.host, self.port):
            return False
        try:
            client = MilvusClient(uri=self.uri, timeout=5)
        except Exception:  # any connect failure just means "not yet"
            return False
        try:
            client.list_collections()
            return True
        except Exception:
            return False
        finally:
            with contextlib.suppress(Exception):
                client.close()
