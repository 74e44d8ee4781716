"""The tier's own thread: loads what the alias serves and applies announced writes, in order.

One thread does both, so a load and the writes around it never interleave: the consumer's
position is fixed before a load reads Milvus, announcements that arrive during the load wait
in the broker, and are applied to the new collection once it is held. A failed load or apply
is retried (a Milvus restart, a broker hiccup); failed announcements are kept until applied.
Only an outage keeps them: an id that can never be fetched is dropped where it is read
(``announcements.decode``) or skipped by the tier while Milvus answers (``ArticleTier.apply``),
so no one id holds back the others.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from concurrent.futures import Future

from kafka import KafkaConsumer

from chatda.broker.kafka import ensure_topics
from chatda.search.tier import announcements
from chatda.search.tier.tier import ArticleTier
from chatda.storage.index_models import ServedIndex

log = logging.getLogger(__name__)

_POLL_MS = 100
_RETRY_S = 1.0


class TierFollower:
    def __init__(self, tier: ArticleTier, bootstrap: str, topic: str, partitions: int = 1) -> None:
        self.tier = tier
        self.bootstrap = bootstrap
        self.topic = topic
        self.partitions = partitions
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="chatda-tier", daemon=True)
        self._lock = threading.Lock()
        self._waiting: list[Future[None]] = []
        self._pending: set[str] = set()
        self._retry_at = 0.0

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    async def hold(self, served: ServedIndex) -> None:
        """Have the tier hold ``served``; returns after the first attempt to load it."""
        done: Future[None] = Future()
        with self._lock:
            self.tier.wanted = served
            self._waiting.append(done)
        await asyncio.wrap_future(done)

    def _run(self) -> None:
        consumer = None
        while not self._stop.is_set():
            if consumer is None:
                consumer = self._connect()
            if consumer is None:  # nothing loads before the position is fixed: say so, wait
                self._release_waiting()
                self._stop.wait(_RETRY_S)
                continue
            self._load_if_wanted()
            self._collect(consumer)
            self._apply_pending()
        if consumer is not None:
            consumer.close()

    def _release_waiting(self) -> None:
        with self._lock:
            waiting, self._waiting = self._waiting, []
        for done in waiting:
            done.set_result(None)

    def _connect(self) -> KafkaConsumer | None:
        try:
            ensure_topics(self.bootstrap, {self.topic: self.partitions})
            return announcements.follow_from_end(self.bootstrap, self.topic)
        except Exception as exc:  # the broker is down: search keeps going to Milvus meanwhile
            log.warning("article tier cannot follow %s yet: %s", self.topic, exc)
            return None

    def _load_if_wanted(self) -> None:
        wanted = self.tier.wanted
        if (
            wanted is not None
            and self.tier.needs_load(wanted)
            and time.monotonic() >= self._retry_at
        ):
            try:
                self.tier.load(wanted)
                self._pending.clear()  # the load read every article's current rows
            except Exception as exc:
                log.warning("article tier could not load %s: %s", wanted.collection, exc)
                self._retry_at = time.monotonic() + _RETRY_S
        self._release_waiting()

    def _collect(self, consumer: KafkaConsumer) -> None:
        try:
            batches = consumer.poll(timeout_ms=_POLL_MS)
        except Exception as exc:
            log.warning("article tier lost %s: %s", self.topic, exc)
            self._stop.wait(_RETRY_S)
            return
        for records in batches.values():
            for record in records:
                self._pending.update(announcements.decode(record.value))

    def _apply_pending(self) -> None:
        if not self._pending or time.monotonic() < self._retry_at:
            return
        pending = set(self._pending)
        try:
            self.tier.apply(pending)
        except Exception as exc:  # Milvus restarting: keep the ids, try again shortly
            log.warning("article tier could not apply %d articles: %s", len(pending), exc)
            self._retry_at = time.monotonic() + _RETRY_S
            return
        self._pending -= pending
