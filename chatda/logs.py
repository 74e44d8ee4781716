"""Structured logging for every chatda process: key=value on a terminal, JSON in production."""

from __future__ import annotations

import logging
import sys

import structlog


class _ClosedSocketNoise(logging.Filter):
    """kafka-python logs an ERROR with a traceback when a client it is closing still polls its
    socket; every short-lived admin client (lag checks) does this. Nothing failed: drop it."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.levelno == logging.ERROR and "(closed)" in record.getMessage())


def configure_logging(level: str = "INFO", json: bool = False) -> None:
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer(ensure_ascii=False)
        if json
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler()
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    logging.getLogger("kafka.net.transport").addFilter(_ClosedSocketNoise())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("kafka", "httpx", "urllib3", "sentence_transformers", "transformers", "alembic"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
