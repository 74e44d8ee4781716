"""Feedback records into the SQL store: decode what parses, store what the database accepts.

A record that does not parse (``json``, ``schema``), or an event the store refuses for its data
(``store``), is a ``PoisonRecord``: returned with its Kafka record so the caller (the feedback
consumer service, ``feedback_consumer``) dead-letters it before committing, rather than
dropping it. One bad producer must not stall the topic, nor lose what it sent. An outage is
raised instead, so the caller does not commit the offsets of a batch not stored.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from kafka.consumer.fetcher import ConsumerRecord
from pydantic import ValidationError
from sqlalchemy.exc import (
    DataError,
    DBAPIError,
    IntegrityError,
    SQLAlchemyError,
    StatementError,
)

from chatda.broker.dead_letter import PoisonRecord
from chatda.feedback.events import FeedbackRecord
from chatda.feedback.store import FeedbackStore
from chatda.input_errors import error_summary
from chatda.json_input import JSONDecodeError, loads

log = logging.getLogger(__name__)

Poison = list[tuple[ConsumerRecord, PoisonRecord]]


@dataclass(frozen=True)
class Persisted:
    """What one batch came to: events new to the store, and the records it could not use."""

    stored: int
    poison: Poison


def decode_event(value: bytes | None) -> FeedbackRecord:
    """The event of one record's value; raises ``PoisonRecord`` (``json`` or ``schema``).

    JSON goes through ``chatda.json_input``, the one decoder for untrusted JSON, so this door
    refuses exactly what the API and the ingest worker refuse.
    """
    if value is None:
        raise PoisonRecord("schema", "record has no value")
    try:
        data = loads(value)
    except JSONDecodeError as exc:
        raise PoisonRecord("json", f"{exc.msg} at line {exc.lineno} column {exc.colno}") from exc
    try:
        return FeedbackRecord.model_validate(data)
    except ValidationError as exc:
        raise PoisonRecord("schema", error_summary(exc)) from exc


def _refused(exc: SQLAlchemyError) -> bool:
    """Whether the database refused the data (a value or constraint), not the connection.

    A ``StatementError`` that is no ``DBAPIError`` failed while binding a value, before the
    database saw it; a ``DataError`` or ``IntegrityError`` is the database rejecting a row.
    Anything else (``OperationalError``: the database is away or locked) is an outage.
    """
    if isinstance(exc, (DataError, IntegrityError)):
        return True
    return isinstance(exc, StatementError) and not isinstance(exc, DBAPIError)


Decoded = list[tuple[ConsumerRecord, FeedbackRecord]]


def decode_batch(records: Sequence[ConsumerRecord]) -> tuple[Decoded, Poison]:
    """Each record's event, and the records that do not parse (logged once, here): a batch an
    outage holds back is decoded once however often its store is retried."""
    events: Decoded = []
    poison: Poison = []
    for record in records:
        try:
            events.append((record, decode_event(record.value)))
        except PoisonRecord as exc:
            log.warning("feedback record %s does not parse: %s", _where(record), exc)
            poison.append((record, exc))
    return events, poison


def store_events(store: FeedbackStore, events: Decoded, poison: Poison) -> Persisted:
    """Store decoded events; returns how many were new and ``poison`` with the refused ones.

    The batch is one transaction. If the store refuses it for its data, the events are
    stored one by one and each one refused becomes a ``store`` poison record: otherwise the
    consumer would crash on that batch, restart, read it again and crash again, and no later
    event would ever be stored. An outage is raised, so the batch is not committed.
    """
    poison = list(poison)
    try:
        return Persisted(store.save([event for _, event in events]), poison)
    except SQLAlchemyError as exc:
        if not _refused(exc):
            raise
    stored = 0
    for record, event in events:
        try:
            stored += store.save([event])
        except SQLAlchemyError as exc:
            if not _refused(exc):
                raise
            reason = getattr(exc, "orig", exc)  # the database's words, without the row's values
            log.warning("the store refuses feedback event %s: %s", event.event_id, reason)
            poison.append((record, PoisonRecord("store", str(reason))))
    return Persisted(stored, poison)


def _where(record: ConsumerRecord) -> str:
    return f"{record.topic}:{record.partition}@{record.offset}"
