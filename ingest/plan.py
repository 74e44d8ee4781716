"""Which messages of a poll batch to apply: newest per article, never older than the index.

Kafka keeps one article's versions in order on its partition, but publishers can still send
an old version late (a replayed feed, a retried job). ``updated_at`` is the version, so an
article's content only ever moves forward, and redelivering a batch after a crash changes
nothing (equal versions are applied again, with identical content).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from kafka.consumer.fetcher import ConsumerRecord

from chatda.articles.message import ArticleMessage


@dataclass(frozen=True, slots=True)
class Decoded:
    """A record and its message, with the version numbers planning compares.

    The numbers are computed here, when the worker decodes the record (isolated per record),
    so that the batch-wide steps below work on plain numbers and cannot fail for one record.
    """

    record: ConsumerRecord
    message: ArticleMessage
    version: float = field(init=False)
    updated_epoch: int = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "version", self.message.updated_at.timestamp())
        object.__setattr__(self, "updated_epoch", self.message.updated_epoch)


def newest_per_post(items: Iterable[Decoded]) -> tuple[list[Decoded], list[Decoded]]:
    """``(newest, superseded)``: one message per post_id, the latest ``updated_at`` winning.

    Ties go to the later offset, the order in which the publisher sent them.
    """
    newest: dict[str, Decoded] = {}
    superseded: list[Decoded] = []
    for item in items:
        post_id = item.message.post_id
        current = newest.get(post_id)
        if current is None:
            newest[post_id] = item
        elif _version(item) >= _version(current):
            superseded.append(current)
            newest[post_id] = item
        else:
            superseded.append(item)
    return list(newest.values()), superseded


def split_stale(
    items: Iterable[Decoded], indexed_updated_at: Mapping[str, int]
) -> tuple[list[Decoded], list[Decoded]]:
    """``(current, stale)``: stale messages are older than what the index already holds.

    Compared in whole seconds, the index's unit; an equal version is applied, which makes a
    redelivered record a no-op instead of a loss.
    """
    current: list[Decoded] = []
    stale: list[Decoded] = []
    for item in items:
        indexed = indexed_updated_at.get(item.message.post_id)
        if indexed is not None and item.updated_epoch < indexed:
            stale.append(item)
        else:
            current.append(item)
    return current, stale


def _version(item: Decoded) -> tuple[float, int]:
    return item.version, item.record.offset
