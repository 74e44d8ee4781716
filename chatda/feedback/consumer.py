"""The feedback consumer: records from the events topic into the SQL store.

Offsets are committed only after the batch is in SQL, so a crash replays records rather than
losing them, and the store's event-id uniqueness makes the replay harmless. A record that does
not parse, or that the store refuses, is logged and skipped: one bad producer must not stall
the topic.

Run it as ``python -m chatda.feedback.consumer`` (settings from the environment, as the API).
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Iterable

from pydantic import ValidationError
from sqlalchemy.exc import (
    DataError,
    DBAPIError,
    IntegrityError,
    SQLAlchemyError,
    StatementError,
)

from chatda.broker.kafka import make_consumer
from chatda.feedback.events import FeedbackRecord
from chatda.feedback.store import FeedbackStore
from chatda.json_input import JSONDecodeError, loads

log = logging.getLogger(__name__)

POLL_TIMEOUT_MS = 500


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


def run(
    bootstrap: str,
    topic: str,
    group_id: str,
    store: FeedbackStore,
    stop: threading.Event,
    max_poll_records: int = 500,
) -> None:
    """Consume until ``stop`` is set; commit each batch after it is stored."""
    consumer = make_consumer(bootstrap, group_id, [topic], max_poll_records=max_poll_records)
    try:
        while not stop.is_set():
            polled = consumer.poll(timeout_ms=POLL_TIMEOUT_MS)
            values = [record.value for batch in polled.values() for record in batch]
            if not values:
                continue
            stored = persist(store, values)
            consumer.commit()
            log.info("feedback: %d records, %d new events stored", len(values), stored)
    finally:
        consumer.close()


def main() -> None:
    from chatda.db.engine import make_engine, upgrade
    from chatda.logs import configure_logging
    from chatda.settings import get_settings

    settings = get_settings()
    configure_logging(settings)
    if not settings.kafka_bootstrap:
        raise SystemExit("CHATDA_KAFKA_BOOTSTRAP is not set: the API writes feedback to SQL")
    engine = make_engine(settings.sql_url)
    upgrade(engine)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    try:
        run(
            settings.kafka_bootstrap,
            settings.events_topic,
            settings.feedback_group_id,
            FeedbackStore(engine),
            stop,
        )
    finally:
        engine.dispose()


if __name__ == "__main__":
    main()
