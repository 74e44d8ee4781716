"""Reading a collection in batches: Milvus's query iterator, always closed.

Every whole-collection read (the tier's load, suggestion titles, the re-index copy and its
checks) goes through :func:`scan`, so the iterator is closed on every path, an early exit
included (use it under ``contextlib.closing`` when the loop may stop before the end).
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from typing import Any

from pymilvus import MilvusClient


def scan(
    client: MilvusClient,
    collection: str,
    fields: Sequence[str],
    filter: str = "",
    batch_size: int = 1000,
    limit: int = -1,
) -> Generator[list[dict[str, Any]], None, None]:
    """The rows matching ``filter`` (all by default), ``fields`` of each, a batch at a time;
    at most ``limit`` rows (-1: every one)."""
    iterator = client.query_iterator(
        collection,
        batch_size=batch_size,
        limit=limit,
        filter=filter,
        output_fields=list(fields),
    )
    try:
        while batch := iterator.next():
            yield batch
    finally:
        iterator.close()
