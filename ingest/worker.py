"""The ingest worker: a Kafka consumer-group member that keeps Milvus in step with ``articles``.

One loop: poll a batch → decode and validate every record → keep the newest message per
article, drop versions older than the index → chunk, embed (the whole batch at once), Kiwi
terms → upsert rows and delete surplus chunks in Milvus → dead-letter the poison records →
commit the offsets. The commit comes last, so a crash anywhere before it redelivers the batch,
and the redelivery rewrites the same rows under the same ids: exactly-once in effect.

The worker writes the collection the alias serves, encodes with that collection's model, and
consumes as that collection's group. When a re-index moves the alias, the worker leaves the
old group before its next batch, loads the new model if it differs, and joins the new group,
which the re-index left exactly where its replay stopped.

Failures are split in two. A record that can never be indexed (bad bytes, bad JSON, schema,
size, or anything ``prepare`` raises for it) is a poison record: dead-lettered, its offset
committed, the batch goes on. Milvus or Kafka being unavailable is an infrastructure failure:
nothing is committed, the batch is retried with backoff while the consumer stays in its group
(partitions paused; ``chatda.broker.retry``), and it is abandoned if those partitions move to
another worker.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from kafka import KafkaConsumer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from kafka.errors import KafkaError
from pymilvus import MilvusClient
from pymilvus.exceptions import MilvusException

from chatda.articles.topics import ensure_article_topics
from chatda.broker.dead_letter import DeadLetters, PoisonRecord
from chatda.broker.kafka import commit_batch, fetched_lag, make_consumer, make_producer
from chatda.broker.retry import retry_in_group
from chatda.models.encoder import Encoder
from chatda.search.tier.announcements import Announcer
from chatda.storage.index_models import ingest_group
from chatda.storage.milvus_client import connect
from chatda.text.morphemes import Morphemes, default_morphemes
from ingest import metrics
from ingest.config import WorkerConfig
from ingest.decode import decode_article, isolated
from ingest.pipeline import Pipeline, PreparedArticle
from ingest.plan import Decoded, newest_per_post, split_stale
from ingest.sink import ArticleSink, batch_rows

logger = logging.getLogger(__name__)

INFRASTRUCTURE_ERRORS = (MilvusException, KafkaError)
_LATENCY_SAMPLES = 100_000
_ALIAS_CHECK_S = 1.0

EncoderLoader = Callable[[str], Encoder]


@dataclass(frozen=True)
class BatchResult:
    records: int
    indexed: int
    deleted: int
    stale: int
    dead_letters: int
    chunks: int


@dataclass
class WorkerStats:
    """Running totals of one worker, for logs and the benchmark (Prometheus has the rest)."""

    batches: int = 0
    records: int = 0
    chunks: int = 0
    first_batch_at: float | None = None
    last_commit_at: float | None = None
    latencies_s: deque[float] = field(default_factory=lambda: deque(maxlen=_LATENCY_SAMPLES))


class IngestWorker:
    """One consumer-group member; run several (processes or hosts) to share the partitions.

    ``stats`` and ``assignment`` (the partitions held after the last poll) are there for
    logs, the benchmark and tests; Prometheus gets the rest through ``ingest.metrics``.
    ``encoder`` is the model of a first collection; ``load_encoder`` loads another one by ref
    when the alias serves (or moves to) a collection of another model.
    """

    def __init__(
        self,
        config: WorkerConfig,
        encoder: Encoder,
        *,
        morphemes: Morphemes | None = None,
        milvus: MilvusClient | None = None,
        load_encoder: EncoderLoader | None = None,
    ) -> None:
        self.config = config
        self.model_version = encoder.ref
        self.load_encoder = load_encoder
        self.group_id: str | None = None
        self.pipeline = Pipeline(
            encoder,
            morphemes or default_morphemes(),
            config.chunk_max_tokens,
            config.overlap_sentences,
            config.max_text_chars,
        )
        self.sink = ArticleSink(milvus or connect(config.milvus_uri, config.data_dir), config.alias)
        self.stats = WorkerStats()
        self._producer = make_producer(config.bootstrap)
        self.dead_letters = (
            DeadLetters(self._producer, config.dead_letter_topic)
            if config.dead_letter_topic
            else None
        )
        self.announcer = Announcer(self._producer, config.indexed_topic)
        self.assignment: set[TopicPartition] = set()

    @property
    def collection(self) -> str | None:
        return self.sink.collection

    def run(self, stop: threading.Event) -> None:
        """Consume until ``stop`` is set; the batch in hand is finished and committed first."""
        cfg = self.config
        topics = [t for t in (cfg.topic, cfg.dead_letter_topic, cfg.indexed_topic) if t]
        try:
            ensure_article_topics(cfg.bootstrap, topics, cfg.partitions)
            while not stop.is_set():
                self._follow_alias()
                assert self.group_id is not None
                consumer = make_consumer(
                    cfg.bootstrap, self.group_id, [cfg.topic], max_poll_records=cfg.batch_size
                )
                logger.info(
                    "ingest worker started topic=%s group=%s alias=%s collection=%s model=%s",
                    cfg.topic,
                    self.group_id,
                    cfg.alias,
                    self.collection,
                    self.model_version,
                )
                try:
                    self._consume(consumer, stop)
                finally:
                    consumer.close()
                    self.assignment = set()
        finally:
            self._producer.close()
            logger.info(
                "ingest worker stopped group=%s records=%d chunks=%d",
                self.group_id,
                self.stats.records,
                self.stats.chunks,
            )

    def _follow_alias(self) -> None:
        """Resolve the alias: the collection to write, its model (loaded if new), its group."""
        served = self.sink.resolve(self.model_version)
        assert served.model is not None
        if served.model != self.model_version:
            if self.load_encoder is None:
                raise RuntimeError(
                    f"alias {self.config.alias!r} serves model {served.model}, this worker has "
                    f"{self.model_version} and no way to load another"
                )
            logger.info("ingest worker loading model %s for %s", served.model, served.collection)
            self.pipeline.encoder = self.load_encoder(served.model)
            self.model_version = served.model
        self.group_id = ingest_group(self.config.group_id, served.collection)

    def _consume(self, consumer: KafkaConsumer, stop: threading.Event) -> None:
        """Consume until ``stop`` is set or the alias moves to another collection.

        A batch polled after the alias moved is left uncommitted in the old group: the new
        collection's group delivers it again, embedded with the new model.
        """
        checked = time.monotonic()
        while not stop.is_set():
            polled = consumer.poll(timeout_ms=self.config.poll_timeout_ms)
            self.assignment = set(consumer.assignment())
            records = [r for batch in polled.values() for r in batch]
            if records or time.monotonic() - checked > _ALIAS_CHECK_S:
                checked = time.monotonic()
                if self.sink.alias_moved():
                    logger.info(
                        "ingest alias %s moved; leaving %s", self.config.alias, self.group_id
                    )
                    return
            if records and self._process_until_written(consumer, records, stop):
                self._commit(consumer, records)
            metrics.observe_lag(fetched_lag(consumer))

    def process(self, records: Sequence[ConsumerRecord]) -> BatchResult:
        """Apply one batch to Milvus and the dead-letter topic; commits nothing.

        Raises only infrastructure errors; every per-record failure is dead-lettered.
        """
        started = time.monotonic()
        if self.stats.first_batch_at is None:
            self.stats.first_batch_at = started
        poison: list[tuple[ConsumerRecord, PoisonRecord]] = []
        decoded: list[Decoded] = []
        for record in records:
            try:
                decoded.append(isolated("decode", self._decode, record))
            except PoisonRecord as exc:
                poison.append((record, exc))
        newest, superseded = newest_per_post(decoded)
        indexed = self.sink.indexed(item.message.post_id for item in newest)
        current, stale = split_stale(newest, {p: i.updated_at for p, i in indexed.items()})

        prepared: list[PreparedArticle] = []
        delete_ids: list[str] = []
        applied: list[Decoded] = []
        for item in current:
            message = item.message
            held = indexed.get(message.post_id)
            if message.op == "delete":
                if held is not None:
                    delete_ids.extend(held.chunk_ids_from(message.post_id, 0))
                applied.append(item)
                continue
            try:
                article = isolated("pipeline", self.pipeline.prepare, message)
            except PoisonRecord as exc:
                logger.exception("ingest prepare failed post_id=%s", message.post_id)
                poison.append((item.record, exc))
                continue
            prepared.append(article)
            applied.append(item)
            if held is not None:
                delete_ids.extend(held.chunk_ids_from(message.post_id, len(article.chunks)))

        rows = batch_rows(prepared, self.pipeline.embed(prepared), self.model_version)
        self.sink.write(rows, delete_ids)
        # after the write, so a replica fetching these ids reads them; a failed send fails
        # the batch, which is written again (idempotent) and announced again
        self.announcer.announce(item.message.post_id for item in applied)
        if poison and self.dead_letters is not None:
            self.dead_letters.send(poison)

        result = BatchResult(
            records=len(records),
            indexed=len(prepared),
            deleted=len(applied) - len(prepared),
            stale=len(stale) + len(superseded),
            dead_letters=len(poison),
            chunks=len(rows),
        )
        self._observe(result, applied, poison, time.monotonic() - started)
        return result

    def _decode(self, record: ConsumerRecord) -> Decoded:
        message = decode_article(record.key, record.value, self.config.max_text_chars)
        return Decoded(record, message)

    def _observe(
        self,
        result: BatchResult,
        applied: Sequence[Decoded],
        poison: Sequence[tuple[ConsumerRecord, PoisonRecord]],
        seconds: float,
    ) -> None:
        now_ms = time.time() * 1000
        for item in applied:
            latency = max(now_ms - item.record.timestamp, 0.0) / 1000
            metrics.PUBLISH_TO_SEARCHABLE.observe(latency)
            self.stats.latencies_s.append(latency)
        for _, error in poison:
            metrics.DEAD_LETTERS.labels(error.reason).inc()
        for outcome, count in (
            ("indexed", result.indexed),
            ("deleted", result.deleted),
            ("stale", result.stale),
            ("dead_letter", result.dead_letters),
        ):
            metrics.RECORDS.labels(outcome).inc(count)
        metrics.STALE.inc(result.stale)
        metrics.CHUNKS.inc(result.chunks)
        metrics.BATCH_SECONDS.observe(seconds)
        self.stats.batches += 1
        self.stats.records += result.records
        self.stats.chunks += result.chunks
        logger.info(
            "ingest batch records=%d indexed=%d deleted=%d stale=%d dead_letter=%d chunks=%d "
            "seconds=%.2f",
            result.records,
            result.indexed,
            result.deleted,
            result.stale,
            result.dead_letters,
            result.chunks,
            seconds,
        )

    def _process_until_written(
        self, consumer: KafkaConsumer, records: Sequence[ConsumerRecord], stop: threading.Event
    ) -> bool:
        """Process the batch, retrying infrastructure failures in the group; False when it was
        abandoned (``chatda.broker.retry``: partitions paused while backing off, the batch
        dropped and rewound if a rebalance moves them). A retry reloads the collection first
        (a restarted Milvus comes back with it released) and sends only the dead letters not
        acknowledged yet; the memory of those ends with the batch.
        """
        try:
            result = retry_in_group(
                consumer,
                records,
                lambda retrying: self._attempt(records, retrying),
                stop,
                outages=INFRASTRUCTURE_ERRORS,
                on_retry=_count_retry,
                label="ingest",
            )
            return result is not None
        finally:
            if self.dead_letters is not None:
                self.dead_letters.settle()

    def _attempt(self, records: Sequence[ConsumerRecord], retrying: bool) -> BatchResult:
        if retrying:
            self.sink.load()
        return self.process(records)

    def _commit(self, consumer: KafkaConsumer, records: Sequence[ConsumerRecord]) -> None:
        if commit_batch(consumer, records, "ingest"):
            self.stats.last_commit_at = time.monotonic()


def _count_retry(exc: Exception, delay: float) -> None:
    metrics.MILVUS_RETRIES.inc()
    logger.warning("ingest batch failed, retrying in %.1fs: %s", delay, exc)
