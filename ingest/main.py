"""The ingest worker process: its signals, metrics port and first encoder, then the loop.

``chatda ingest`` only parses its options and calls :func:`main`; everything a worker process
does before its first poll lives here, next to the worker it starts, so the CLI stays a
dispatcher and a deployment that runs the worker another way starts it the same way.
"""

from __future__ import annotations

import signal
import sys
import threading
from dataclasses import replace
from typing import Any

from chatda.settings import get_settings


def _stop_on_signals() -> threading.Event:
    """An event SIGTERM and SIGINT set: the worker finishes its batch, commits and returns."""
    stop = threading.Event()

    def request_stop(signum: int, _: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    return stop


def main(
    *,
    topic: str | None = None,
    group: str | None = None,
    alias: str | None = None,
    dead_letter_topic: str | None = None,
    batch_size: int | None = None,
    chunk_max_tokens: int | None = None,
    metrics_port: int | None = None,
    dead_letters: bool = True,
) -> None:
    """Run one worker until SIGTERM/SIGINT; ``None`` options fall back to the settings.

    Options that make no valid worker config end the process with status 2 and the reason on
    stderr. ``dead_letters=False`` only counts poison records (a re-index replay: the live
    workers dead-lettered them already).
    """
    # Installed before the slow imports and model load so an early SIGTERM is a clean exit too.
    stop = _stop_on_signals()

    from prometheus_client import start_http_server

    from chatda.models.encoder import encoder_loader
    from chatda.models.registry import ModelRegistry
    from chatda.storage.index_models import served_index
    from chatda.storage.milvus_client import connect
    from ingest.config import WorkerConfig
    from ingest.worker import IngestWorker

    settings = get_settings()
    try:
        config = WorkerConfig.from_settings(
            settings,
            topic=topic,
            group_id=group,
            alias=alias,
            dead_letter_topic=dead_letter_topic,
            batch_size=batch_size,
            chunk_max_tokens=chunk_max_tokens,
        )
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from exc
    if not dead_letters:
        config = replace(config, dead_letter_topic=None)
    if metrics_port:
        start_http_server(metrics_port, addr=settings.metrics_host)
    registry = ModelRegistry(settings.models_dir)
    load_encoder = encoder_loader(registry, settings)

    # the model of the collection the alias serves; the serving model only for a first start
    milvus = connect(config.milvus_uri, config.data_dir)
    served = served_index(milvus, config.alias, registry)
    first = served.model if served and served.model else None
    encoder = (
        load_encoder(first)
        if first
        else load_encoder(f"{settings.model_name}@{settings.model_version or ''}")
    )
    IngestWorker(config, encoder, milvus=milvus, load_encoder=load_encoder).run(stop)
