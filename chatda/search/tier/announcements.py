"""Write announcements: ingest workers say which articles they wrote; every API replica follows.

After each Milvus write a worker sends the batch's ``post_id``s to ``articles-indexed`` and
waits for the broker's acknowledgement; a failed send fails the batch, which is retried (writes
are idempotent), so no write goes unannounced. Each API process reads the topic without a
consumer group (every replica must see every announcement), from its end at start-up: what
was written before is in the initial load (``ArticleTier.load`` reads the collection after
the consumer has fixed its position), and what comes after is announced. An announcement
carries ids, not rows: the replica fetches the rows Milvus holds now, so order, repeats and
delay between announcements never leave a replica with an old version.

Ids are checked where they are read: one that no article can have (empty, too long, a
character outside ``POST_ID_PATTERN``) is dropped with a warning naming it, so that whatever
else writes to the topic cannot hand the tier an id it would fail to fetch.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import orjson
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from chatda import json_input
from chatda.articles.message import is_post_id

log = logging.getLogger(__name__)

SEND_TIMEOUT_S = 10.0
_NAMED = 10
"""Dropped ids a warning names; a longer list is counted."""


def encode(post_ids: Iterable[str]) -> bytes:
    return orjson.dumps({"post_ids": sorted(set(post_ids))})


def decode(value: bytes | None) -> list[str]:
    """The ids of one announcement that an article can have; the rest are logged and dropped,
    and a malformed announcement is logged and read as none."""
    try:
        ids = json_input.loads(value or b"")["post_ids"]
    except (ValueError, KeyError, TypeError):
        ids = None
    if not isinstance(ids, list):
        log.warning("ignoring a malformed article announcement (%d bytes)", len(value or b""))
        return []
    valid = [i for i in ids if is_post_id(i)]
    if len(valid) < len(ids):
        dropped = [i for i in ids if not is_post_id(i)]
        log.warning(
            "ignoring %d ids no article can have in an article announcement: %s%s",
            len(dropped),
            ", ".join(repr(i)[:80] for i in dropped[:_NAMED]),
            f" and {len(dropped) - _NAMED} more" if len(dropped) > _NAMED else "",
        )
    return valid


class Announcer:
    """The ingest side: one call per written batch, after the write."""

    def __init__(self, producer: KafkaProducer, topic: str) -> None:
        self.producer = producer
        self.topic = topic

    def announce(self, post_ids: Iterable[str]) -> None:
        ids = list(post_ids)
        if ids:
            self.producer.send(self.topic, encode(ids)).get(timeout=SEND_TIMEOUT_S)


def follow_from_end(bootstrap: str, topic: str) -> KafkaConsumer:
    """A group-less consumer of every partition of ``topic``, positioned at its end now."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
    partitions = consumer.partitions_for_topic(topic) or {0}
    assigned = [TopicPartition(topic, p) for p in sorted(partitions)]
    consumer.assign(assigned)
    consumer.seek_to_end(*assigned)
    for partition in assigned:  # resolve the end offsets now, before the load reads Milvus
        consumer.position(partition)
    return consumer
