"""Reading articles by their first chunk (``chunk_no == 0``): the row that carries an
article's title and opening, which jobs look articles up by."""

from __future__ import annotations

from typing import Any

from pymilvus import MilvusClient

from chatda.storage.filters import quote

_GROUP = 256  # post ids per query, so a long list never becomes one huge filter expression


def first_chunks(
    client: MilvusClient, collection: str, post_ids: list[str], fields: list[str]
) -> list[dict[str, Any]]:
    """The first chunk's ``fields`` (and ``post_id``) of each of ``post_ids`` that exists."""
    rows: list[dict[str, Any]] = []
    for start in range(0, len(post_ids), _GROUP):
        group = ", ".join(quote(p) for p in post_ids[start : start + _GROUP])
        rows += client.query(
            collection,
            filter=f"chunk_no == 0 and post_id in [{group}]",
            output_fields=["post_id", *fields],
        )
    return rows
