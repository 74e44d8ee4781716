"""The feedback consumer process: settings, the SQL store, signals, then the consume loop.

Run it as ``chatda feedback-consumer`` or ``python -m feedback_consumer.main`` (settings from
the environment, as the API).
"""

from __future__ import annotations

import signal
import threading

from prometheus_client import start_http_server

from chatda.db.engine import make_engine, upgrade
from chatda.feedback.store import FeedbackStore
from chatda.logs import configure_logging
from chatda.settings import get_settings
from feedback_consumer.consume import run


def main() -> None:
    """Consume until SIGINT/SIGTERM; exits at once when no broker is configured (the API then
    writes feedback to SQL itself and there is nothing to consume)."""
    settings = get_settings()
    configure_logging(settings)
    if not settings.kafka_bootstrap:
        raise SystemExit("CHATDA_KAFKA_BOOTSTRAP is not set: the API writes feedback to SQL")
    engine = make_engine(settings.sql_url)
    upgrade(engine)
    if settings.feedback_metrics_port:
        start_http_server(settings.feedback_metrics_port, addr=settings.metrics_host)
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
            dead_letter_topic=settings.events_dead_letter_topic,
            partitions=settings.events_partitions,
        )
    finally:
        engine.dispose()


if __name__ == "__main__":
    main()
