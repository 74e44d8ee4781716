"""The real-time article ingest: Kafka ``articles`` → chunk, embed, BM25 terms → Milvus.

``ingest.worker.IngestWorker`` is the loop; the other modules are its steps, one job each.
Run it with ``chatda ingest`` (process start-up: ``ingest.main``).
"""
