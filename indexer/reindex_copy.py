"""Re-index step 4: every row of the live collection into the build, re-embedded with the target
model and re-tokenised for BM25. Chunk boundaries are kept: a chunk's stored text is embedded
exactly as ingest embedded it (title, line break, chunk), so only the model changes.
"""

from __future__ import annotations

from pymilvus import MilvusClient
from tqdm import tqdm

from chatda.models.encoder import Encoder
from chatda.storage.article_rows import STORED_FIELDS, ArticleChunk, chunk_rows
from chatda.storage.scan import scan
from chatda.text.chunker import embed_text
from chatda.text.morphemes import Morphemes


def row_count(client: MilvusClient, collection: str) -> int:
    (row,) = client.query(
        collection, filter="", output_fields=["count(*)"], consistency_level="Strong"
    )
    return int(row["count(*)"])


def copy_collection(
    client: MilvusClient,
    source: str,
    target: str,
    encoder: Encoder,
    morphemes: Morphemes,
    batch_size: int,
) -> int:
    """Every row of ``source`` into ``target``, re-embedded and re-tokenised; returns rows."""
    total = row_count(client, source)
    copied = 0
    with tqdm(total=total, unit="row", desc=f"re-embedding into {target}") as bar:
        for batch in scan(client, source, STORED_FIELDS, batch_size=batch_size):
            texts = [embed_text(row["title"], row["text"]) for row in batch]
            vectors = encoder.encode(texts, "passage")
            terms = morphemes.terms_batch(texts)
            chunks = [
                ArticleChunk.stored(row, " ".join(words))
                for row, words in zip(batch, terms, strict=True)
            ]
            rows = chunk_rows(chunks, vectors, encoder.ref)
            client.upsert(target, rows)
            copied += len(rows)
            bar.update(len(rows))
    return copied
