"""The article topics, created by whichever service touches them first.

A Kafka broker that auto-creates topics would give ``articles`` one partition and cap the
ingest at one worker, so publishers and workers both create it explicitly, with the
configured partition count, before their first send or poll.
"""

from __future__ import annotations

from chatda.broker.kafka import ensure_topics


def ensure_article_topics(bootstrap: str, topics: list[str], partitions: int) -> None:
    """Create any of ``topics`` that is missing with ``partitions`` partitions each.

    The dead-letter topic gets the articles topic's partition count: its records keep the
    original key, so one article's failures stay in order too.
    """
    ensure_topics(bootstrap, dict.fromkeys(topics, partitions))
