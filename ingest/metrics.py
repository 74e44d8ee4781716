"""Prometheus metrics of the ingest worker (``chatda ingest --metrics-port``).

Records and chunks are counters, so Prometheus derives the per-second rates (throughput). Lag
is kept per partition as well as in total: one stuck partition hides in a sum the others keep
low. The latency histogram is the number a product owner cares about: seconds from the moment
a publisher's record reached Kafka (its timestamp) until it was written to Milvus and
therefore searchable.
"""

from __future__ import annotations

from collections.abc import Mapping

from prometheus_client import Counter, Gauge, Histogram

RECORDS = Counter(
    "chatda_ingest_records_total",
    "Article records consumed and settled, by outcome",
    ["outcome"],  # indexed | deleted | stale | dead_letter
)
CHUNKS = Counter("chatda_ingest_chunks_total", "Chunks embedded and written to Milvus")
DEAD_LETTERS = Counter(
    "chatda_ingest_dead_letters_total", "Records sent to the dead-letter topic", ["reason"]
)
STALE = Counter(
    "chatda_ingest_stale_total", "Messages skipped because the index already had a newer version"
)
LAG = Gauge("chatda_ingest_consumer_lag", "Records on this worker's partitions not yet consumed")
PARTITION_LAG = Gauge(
    "chatda_ingest_partition_lag",
    "Records not yet consumed on one partition this worker holds",
    ["topic", "partition"],
)
MILVUS_RETRIES = Counter(
    "chatda_ingest_write_retries_total", "Batches retried after a Milvus or Kafka failure"
)
BATCH_SECONDS = Histogram(
    "chatda_ingest_batch_seconds",
    "Wall time of one poll batch from decode to Milvus acknowledgement",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 40, 80),
)
PUBLISH_TO_SEARCHABLE = Histogram(
    "chatda_ingest_publish_to_searchable_seconds",
    "Kafka record timestamp to Milvus write acknowledged",
    buckets=(0.1, 0.25, 0.5, 1, 2, 3, 5, 7.5, 10, 15, 20, 30, 60, 120, 300),
)


def observe_lag(per_partition: Mapping[tuple[str, int], int]) -> None:
    """Set the lag of each partition held now, and their sum; partitions this worker no longer
    holds (a rebalance moved them) are dropped, so their new owner's figure is the only one."""
    PARTITION_LAG.clear()
    for (topic, partition), lag in per_partition.items():
        PARTITION_LAG.labels(topic=topic, partition=str(partition)).set(lag)
    LAG.set(sum(per_partition.values()))
