"""Kafka record → ``ArticleMessage``, or a ``PoisonRecord`` saying why it can never be indexed.

Decoding is strict on purpose: invalid UTF-8 is rejected rather than repaired with U+FFFD
(as ``chatda.text.normalize.decode_wire`` would), because an article indexed with replacement
characters is silently wrong, while a dead-lettered one tells its publisher what to fix.

JSON goes through ``chatda.json_input``, the one decoder for untrusted JSON: the standard
library recurses once per nesting level, so a record of 100,000 ``[`` raised ``RecursionError``
and killed the worker. ``isolated`` is the second line: whatever else one record's step raises
stays with that record, so no single record can stop the worker.

The ``PoisonRecord`` reasons of an article: ``encoding``, ``json``, ``schema``, ``size``,
``key``, ``decode`` (anything else raised while decoding, validating or planning the record: a
defect to look into, the record may be fine) or ``pipeline`` (anything raised while chunking,
tokenizing or analysing it).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ParamSpec, TypeVar

from pydantic import ValidationError

from chatda.articles.message import SIZE_ERROR_TYPES, ArticleMessage
from chatda.broker.dead_letter import PoisonRecord
from chatda.input_errors import error_summary
from chatda.json_input import JSONDecodeError, loads

P = ParamSpec("P")
T = TypeVar("T")


def isolated(reason: str, step: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """``step(...)``, with any exception it raises turned into a ``PoisonRecord`` of ``reason``.

    Only for work on one record: an outage (Milvus, Kafka) must never go through here, or a
    retriable failure would be dead-lettered instead of retried.
    """
    try:
        return step(*args, **kwargs)
    except PoisonRecord:
        raise
    except Exception as exc:
        raise PoisonRecord(reason, repr(exc)) from exc


def decode_article(key: bytes | None, value: bytes | None, max_text_chars: int) -> ArticleMessage:
    """The validated message of one record; raises ``PoisonRecord``."""
    if value is None:
        raise PoisonRecord("schema", "record has no value")
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PoisonRecord("encoding", f"invalid UTF-8 at byte {exc.start}: {exc.reason}") from exc
    try:
        data = loads(text)
    except JSONDecodeError as exc:
        raise PoisonRecord("json", f"{exc.msg} at line {exc.lineno} column {exc.colno}") from exc
    try:
        message = ArticleMessage.model_validate(data, context={"max_text_chars": max_text_chars})
    except ValidationError as exc:
        size = any(error["type"] in SIZE_ERROR_TYPES for error in exc.errors())
        raise PoisonRecord("size" if size else "schema", error_summary(exc)) from exc
    if key != message.key:
        # A wrong key puts versions of one article on different partitions, where their order
        # (and so which version wins) is no longer defined.
        raise PoisonRecord("key", f"record key {key!r} is not the post_id {message.post_id!r}")
    return message
