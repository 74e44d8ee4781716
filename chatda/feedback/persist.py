"""Feedback records into the SQL store: decode what parses, store what the database accepts.

A record that does not parse, or that the store refuses, is logged and skipped: one bad
producer must not stall the topic. An outage is raised instead, so the caller (the feedback
consumer service, ``feedback_consumer``) does not commit the offsets of a batch not stored.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from pydantic import ValidationError
from sqlalchemy.exc import (
    DataError,
    DBAPIError,
    IntegrityError,
    SQLAlchemyError,
    StatementError,
)

from chatda.feedback.events import FeedbackRecord
from chatda.feedback.store import FeedbackStore
from chatda.json_input import JSONDecodeError, loads

log = logging.getLogger(__name__)


def decode(values: Iterable[bytes | None]) -> list[FeedbackRecord]:
    """The records that parse; the rest are logged and dropped.

    JSON goes through ``chatda.json_input``, the one decoder for untrusted JSON, so this door
    refuses exactly what the API and the ingest worker refuse.
    """
    records = []
    for value in values:
        try:
            records.append(FeedbackRecord.model_validate(loads(value or b"")))
        except (JSONDecodeError, ValidationError) as exc:
            log.warning("skipping a feedback record that does not parse: %s", exc)
    return records


def _refused(exc: SQLAlchemyError) -> bool:
    """Whether the database refused the data (a value or constraint), not the connection.

    A ``StatementError`` that is no ``DBAPIError`` failed while binding a value, before the
    database saw it; a ``DataError`` or ``IntegrityError`` is the database rejecting a row.
    Anything else (``OperationalError``: the database is away or locked) is an outage.
    """
    if isinstance(exc, (DataError, IntegrityError)):
        return True
    return isinstance(exc, StatementError) and not isinstance(exc, DBAPIError)


def persist(store: FeedbackStore, values: Iterable[bytes | None]) -> int:
    """Store one polled batch; returns how many events were new.

    The batch is one transaction. If the store refuses it for its data, the events are
    stored one by one and each one refused is logged and skipped: otherwise the consumer
    would crash on that batch, restart, read it again and crash again, and no later event
    would ever be stored. An outage is raised, so the batch is not committed.
    """
    records = decode(values)
    try:
        return store.save(records)
    except SQLAlchemyError as exc:
        if not _refused(exc):
            raise
    stored = 0
    for record in records:
        try:
            stored += store.save([record])
        except SQLAlchemyError as exc:
            if not _refused(exc):
                raise
            reason = getattr(exc, "orig", exc)  # the database's words, without the row's values
            log.warning("skipping feedback event %s the store refuses: %s", record.event_id, reason)
    return stored
