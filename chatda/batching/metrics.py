"""Prometheus metrics of the dynamic batcher, shared by every batcher in the process."""

from prometheus_client import Counter, Histogram

BATCH_SIZE = Histogram(
    "chatda_batch_size", "texts per model pass", buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256)
)
BATCH_TOKENS = Histogram(
    "chatda_batch_tokens",
    "padded tokens per model pass",
    buckets=(64, 256, 1024, 2048, 4096, 8192, 16384, 32768),
)
QUEUE_WAIT = Histogram(
    "chatda_batch_queue_wait_seconds",
    "time from submission to the start of the pass",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
COMPUTE = Histogram(
    "chatda_batch_compute_seconds",
    "model pass plus post-steps",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
REJECTED = Counter("chatda_batch_rejected_total", "requests refused or dropped", ["reason"])
