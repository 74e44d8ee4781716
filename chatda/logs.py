"""Structured logging for every chatda process: key=value on a terminal, JSON in production.

Every record, chatda's own (structlog) and foreign ones (uvicorn, kafka, pymilvus), leaves
through the one handler set up here, so two rules hold for all of them:

* An exception is one plain traceback, never local variables. structlog's ConsoleRenderer
  defaults to Rich tracebacks with ``show_locals=True`` when Rich is installed (it is, through
  typer), and a request handler's locals hold its headers, so every unhandled error printed
  the caller's ``Authorization: Bearer …``. JSON mode renders the same plain text into an
  ``exception`` field (without it, JSONRenderer printed only the exception's repr).
* The rendered line, traceback included, passes ``chatda.redaction.Redactor``: configured
  secret values and URL passwords become ``***`` whatever logged them.

Libraries that install handlers of their own (pymilvus does, on import, with propagation off)
would bypass both rules: their loggers are handed back to the root handler here.
"""

from __future__ import annotations

import logging
import sys
from typing import TextIO

import pymilvus  # noqa: F401  (its import installs its handlers: do it before taking them back)
import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from chatda.redaction import Redactor
from chatda.settings import Settings


class _ClosedSocketNoise(logging.Filter):
    """kafka-python (3.0.12, the latest release) logs an ERROR with a traceback when a client
    it is closing still polls its socket; every short-lived admin client (lag checks) does
    this. Nothing failed: drop it. Three shapes, each a task of the closed connection:

    * the transport says "(closed)";
    * the selector's task fails registering the closed socket (file descriptor -1);
    * the transport's read task, already scheduled, hands bytes to the protocol that closing
      detached (``None.data_received``): ``chatda up`` showed this traceback on the console
      now and then while it polled indexing progress;
    * cancelling a task meets its coroutine still running ("Error closing coroutine for
      cancelled task", ``ValueError: generator already executing``): the task is dropped
      either way. ``chatda up`` showed it once in four CI runs on a loaded box, while its
      short-lived clients polled indexing progress (the exact path inside kafka-python was
      not pinned down).
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno != logging.ERROR:
            return True
        if "(closed)" in record.getMessage():
            return False
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, ValueError) and (
            "file descriptor: -1" in str(exc)
            or (
                "generator already executing" in str(exc)
                and record.getMessage() == "Error closing coroutine for cancelled task"
            )
        ):
            return False
        return not (
            isinstance(exc, AttributeError) and exc.name == "data_received" and exc.obj is None
        )


class _ProbeAccessLines(logging.Filter):
    """uvicorn's access line for a probe (``/healthz``, ``/readyz``, ``/metrics``): a kubelet,
    Prometheus or ``chatda up`` asks every few seconds, and these lines buried the requests
    people make. A probe's failure shows in its answer and in ``chatda_dependency_up``."""

    PATHS = frozenset({"/healthz", "/readyz", "/metrics"})

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if not isinstance(args, tuple) or len(args) < 3:
            return True
        return str(args[2]).split("?", 1)[0] not in self.PATHS


class _RedactRendered:
    """The formatter's last step: the rendered line, as a string, through the redactor."""

    def __init__(self, redactor: Redactor) -> None:
        self.redactor = redactor

    def __call__(self, _: WrappedLogger, __: str, rendered: EventDict | str) -> str:
        return self.redactor(str(rendered))


class _CurrentStderr(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is when a record is emitted, as the standard library's
    last-resort handler does. A command run in-process (a test's CliRunner) swaps stderr for a
    buffer it closes afterwards; a handler holding that buffer failed every later record with
    "I/O operation on closed file"."""

    def __init__(self) -> None:
        super().__init__()

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _value: object) -> None:
        pass


def configure_logging(settings: Settings) -> None:
    """Route every logger of the process through one handler on stderr, at
    ``settings.log_level``, JSON when ``settings.log_json``, masking ``settings``' secrets.

    It takes the settings whole, not a level and a flag, so no caller can set logging up
    without the secrets it must mask.
    """
    json = settings.log_json
    renderer: Processor = (
        structlog.processors.JSONRenderer(ensure_ascii=False)
        if json
        else structlog.dev.ConsoleRenderer(
            colors=sys.stderr.isatty(), exception_formatter=structlog.dev.plain_traceback
        )
    )
    # JSON has no exception formatter of its own: turn exc_info into the plain traceback text
    exceptions: list[Processor] = [structlog.processors.format_exc_info] if json else []
    shared: list[Processor] = [
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
    handler = _CurrentStderr()
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                *exceptions,
                renderer,
                _RedactRendered(Redactor(settings.secret_values())),
            ],
        )
    )
    for noisy in ("kafka.net.transport", "kafka.net.selector"):
        logging.getLogger(noisy).addFilter(_ClosedSocketNoise())
    logging.getLogger("uvicorn.access").addFilter(_ProbeAccessLines())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    for logger in logging.root.manager.loggerDict.values():
        if isinstance(logger, logging.Logger) and logger.handlers:
            logger.handlers.clear()
            logger.propagate = True
    root.setLevel(settings.log_level.upper())
    for noisy in ("kafka", "httpx", "urllib3", "sentence_transformers", "transformers", "alembic"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
